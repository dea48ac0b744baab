"""Command line: ``rsa-bias run``, ``sweep``, ``plot``, ``show``, ``causal``, ``compare``,
``validate``, ``demo``, ``brain``, the simplicity-bias verbs ``redshift``, ``spectral`` and
``init-gap`` (:mod:`rsa_bias.cli.simplicity`), ``extract`` (:mod:`rsa_bias.cli.own_model`),
``searchlight`` and ``alignment`` (:mod:`rsa_bias.cli.searchlight`)."""


from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rsa_bias.cli._args import (
    BRAIN_IMAGE_SIZES,
    _at_least,
    _check_folders,
    _grid_points,
    _image_size,
    _non_negative_int,
    _point_name,
    _resources,
    _seed,
    add_image_prep_arguments,
    image_prep_given,
    report,
    run_verb,
    set_threads,
)
from rsa_bias.cli.own_model import add_parsers as add_own_model_parsers
from rsa_bias.cli.searchlight import add_parsers as add_searchlight_parsers
from rsa_bias.cli.simplicity import add_parsers
from rsa_bias.config import ConfigError, load_config

#: What ``rsa-bias --help`` says first.
DESCRIPTION = ("Train networks on controlled multi-feature tasks and measure how the biases of "
               "learned representations distort RSA, CKA and encoding-model comparisons, "
               "network against network and network against brain. Each verb below runs one "
               "experiment or step; `rsa-bias VERB --help` lists its options.")


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.set)  # refuse a bad config before anything runs
    _check_folders(out=args.out)
    set_threads(args.threads)
    run = run_verb("complexity-bias", args.out, config=cfg, progress=not args.no_progress,
               keep_checkpoints=args.keep_checkpoints, figures=not args.no_figures,
               force=args.force, sequential=args.sequential)
    how = "one after another" if args.sequential or cfg.model.arch == "transformer" else \
        "as one batched ensemble"
    print(f"\n{cfg.name}: {len(cfg.seeds)} seeds, trained {how}")
    report(run.table, run.paths, run.elapsed_s)
    r2 = run.table["R2_mean"]
    if len(r2) >= 2:
        print(_ratio(r2))
    return 0


def _ratio(r2) -> str:
    """The line on the R² ratio of the first two features: a ratio only of positive R²."""
    (a, b), (ra, rb) = r2.index[:2], r2.iloc[:2]
    if ra > 0 and rb > 0:
        return f"R2 ratio {a}/{b} = {ra / rb:.2f}"
    name, value = (a, ra) if not ra > 0 else (b, rb)
    why = f"R2 {name} is NaN" if math.isnan(value) else f"R2 {name} = {value:.3f} <= 0"
    return f"R2 ratio {a}/{b}: undefined ({why})"


def cmd_sweep(args: argparse.Namespace) -> int:
    points = _grid_points(args.grid, args.one_at_a_time)
    for p in points:  # validate everything before training anything
        load_config(args.config, args.set + p)
    resources = _resources(args.resources)
    if resources and args.scheduler is None:
        raise ValueError("--resources needs --scheduler (local or a Dask scheduler address): "
                         "only Dask workers have resources")
    _check_folders(out=args.out)
    from rsa_bias.experiments.sweep import run_sweep

    df = run_sweep(args.config, args.out,
                   [(_point_name(p), args.set + p, dict(o.split("=", 1) for o in p))
                    for p in points],
                   jobs=args.jobs, scheduler=args.scheduler, figures=not args.no_figures,
                   force=args.force, one_at_a_time=args.one_at_a_time,
                   sequential=args.sequential, resources=resources, plot=args.plot,
                   progress=not args.no_progress)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rsa_bias.experiments import summary_table
    from rsa_bias.store import COMPLEXITY_BIAS_RESULTS, StoreError, read_results

    run = Path(args.run)
    if run.is_file():
        raise ValueError(f"{run} is a file; rsa-bias show takes the output folder of "
                         "`rsa-bias run` (the folder holding results.nc)")
    try:
        res = read_results(run / "results.nc", variables=COMPLEXITY_BIAS_RESULTS)
    except StoreError as exc:
        raise StoreError(f"{exc}; rsa-bias show reads the output folder of `rsa-bias run`"
                         ) from exc
    for layer in res.layer.values:
        print(summary_table(res, layer=str(layer)).to_string(float_format=lambda v: f"{v:.3f}"))
        print()
    print(json.dumps({k: v for k, v in res.attrs.items() if k != "config_json"}, indent=1))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rsa_bias.plotting import save_sweep_figures
    from rsa_bias.store import read_sweep

    path = Path(args.path)
    if path.is_dir():
        path = path / "sweep.nc"
    if not path.is_file():
        raise ValueError(f"{path} does not exist; rsa-bias plot takes the sweep.nc that "
                         "`rsa-bias sweep` writes, or the sweep folder holding it")
    _check_folders(out=args.out)
    for figure in save_sweep_figures(read_sweep(path), args.out or path.parent):
        print(figure)
    return 0


def cmd_causal(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.set)
    _check_folders(out=args.out)
    set_threads(args.threads)
    run = run_verb("causal-checks", args.out, config=cfg, layer=args.layer,
               progress=not args.no_progress)
    print(f"\n{cfg.name}: causal checks at {run.table.attrs['layer']}, {len(cfg.seeds)} "
          "seeds (means [95% interval over seeds])")
    report(run.table, run.paths, run.elapsed_s)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    if args.dataset or args.responses:
        from rsa_bias.cli.own_model import compare_to_dataset

        return compare_to_dataset(args)
    if image_prep_given(args) or args.image_size is not None:
        raise ValueError("--image-size and the image options (--image-prep, --crop-fraction, "
                         "...) apply only to a model compared with --dataset or --responses")
    from rsa_bias.experiments.bias_suite import read_runs, runs_table

    files = [r for r in args.runs if Path(r).is_file() or ":" in r]
    if files:
        raise ValueError(f"{files[0]} is not a run folder; to score an activation file or a "
                         "model against brain data, add --dataset rsa92|v4 or --responses "
                         "FILE.csv")
    from rsa_bias.plotting import plot_runs, save_figure

    labels = args.labels.split(",") if args.labels else None
    layers = args.layers.split(",") if args.layers else None
    results = read_runs(args.runs, labels=labels)
    table = runs_table(results, layers=layers)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        _check_folders(out=str(Path(args.out).parent))
        print(save_figure(plot_runs(results, layers=layers), args.out))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from rsa_bias.config.kinds import load_any_config

    cfg, verb = load_any_config(args.config, args.set)
    print(json.dumps(cfg.to_dict(), indent=1))
    print(f"{args.config}: valid (run it with rsa-bias {verb})")
    device = str(getattr(getattr(cfg, "training", cfg), "device", "auto"))
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"note: device {device!r} needs CUDA, which this machine lacks: the run "
                  "refuses it here (use 'auto' to run on whatever is present)",
                  file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rsa_bias._api import choose
    from rsa_bias.experiments import list_experiments

    if args.list or args.name is None:
        for name, summary in list_experiments("demo").items():
            print(f"{name:14s} {summary}")
        if args.name is None and not args.list:
            print("rsa-bias demo NAME --out DIR runs one", file=sys.stderr)
        return 0
    choose(list_experiments("demo"), args.name, "demo")
    if args.out is None:
        raise ValueError("rsa-bias demo NAME needs --out DIR (where results.nc and the figures "
                         "go)")
    _check_folders(out=args.out, figures_dir=args.figures_dir)
    set_threads(args.threads)
    run = run_verb(args.name, args.out, seed=args.seed, quick=args.quick,
                   figures_dir=args.figures_dir)
    report(run.table, run.paths, run.elapsed_s)
    return 0


def cmd_brain(args: argparse.Namespace) -> int:
    _check_folders(out=args.out)
    set_threads(args.threads)
    run = run_verb("model-vs-brain", args.out, small=not args.full, seed=args.seed,
               image_size=args.image_size, progress=not args.no_progress)
    lo, hi = run.table.attrs["noise_ceiling"]
    print(f"human-IT noise ceiling (Spearman): {lo:.3f}-{hi:.3f}")
    report(run.table, run.paths, run.elapsed_s, index=False)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rsa-bias", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True)
    overrides = {"action": "append", "default": [], "metavar": "KEY=VALUE",
                 "help": "override a config value, e.g. --set training.steps=500 (repeatable)"}

    r = sub.add_parser("run", help="train all seeds of a config, analyse, write files and figures")
    r.add_argument("config", help="experiment config, e.g. models/complexity_bias.toml")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--set", **overrides)
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--no-figures", action="store_true", help="skip the figures")
    r.add_argument("--threads", type=_non_negative_int, default=0,
                   help="CPU threads of torch and numpy's BLAS (default: their choice; 1 is "
                        "fastest for small MLPs on a busy machine)")
    r.add_argument("--keep-checkpoints", action="store_true",
                   help="keep per-seed checkpoints after a successful run")
    r.add_argument("--force", action="store_true",
                   help="recompute even when --out holds a finished run of the same config "
                        "(by default that run is reused and only its figures are redrawn)")
    r.add_argument("--sequential", action="store_true",
                   help="train the seeds one after another instead of as one batched ensemble "
                        "(slower; the same numbers up to float32 rounding, to the bit for the "
                        "shipped MLP on a CPU)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("sweep", help="run a config over a grid of overrides")
    s.add_argument("config")
    s.add_argument("--out", required=True)
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a swept key and its values, e.g. --grid model.depth=2,4 (repeatable; "
                        "the runs are the product of all grids)")
    s.add_argument("--set", **overrides)
    s.add_argument("--one-at-a-time", action="store_true",
                   help="run the base config and each grid value alone instead of the product")
    s.add_argument("--jobs", type=int, default=1,
                   help="runs in parallel (local processes, one thread each)")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on Dask: 'local' for a LocalCluster of --jobs workers, or a "
                        "scheduler address such as tcp://host:8786 (workers need rsa_bias, "
                        "the config and the output folder at the same paths)")
    s.add_argument("--no-figures", action="store_true")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--plot", action="store_true",
                   help="also draw sweep_r2.png: R² per feature against each factor, with "
                        "95%% intervals over seeds (rsa-bias plot draws it later)")
    s.add_argument("--sequential", action="store_true",
                   help="train each point alone and its seeds one after another (by default "
                        "points that differ only in values, and all seeds, train as one "
                        "batched ensemble)")
    s.add_argument("--resources", default=None, metavar="NAME=N[,NAME=N]",
                   help="Dask worker resources each run needs, e.g. GPU=1: runs go only to "
                        "workers started with them (needs --scheduler)")
    s.add_argument("--force", action="store_true",
                   help="recompute every point (by default a rerun skips the finished ones)")
    s.set_defaults(func=cmd_sweep)

    sh = sub.add_parser("show", help="print the summary of a finished run")
    sh.add_argument("run", help="output folder of a run")
    sh.set_defaults(func=cmd_show)

    pl = sub.add_parser("plot", help="draw the R² of a sweep against its factors "
                                     "(sweep_r2.png), its learning curves per condition "
                                     "(learning_curves.png) and, for a sweep of a "
                                     "Transformer's output order, R² by position "
                                     "(position.png)")
    pl.add_argument("path", help="a sweep.nc, or the sweep folder holding one")
    pl.add_argument("--out", help="folder for the figures (default: next to sweep.nc)")
    pl.set_defaults(func=cmd_plot)

    ca = sub.add_parser("causal", help="train all seeds of a config, then the causal checks: "
                                       "steering, PCs needed, read-out reliance (causal.nc)")
    ca.add_argument("config", help="experiment config, e.g. models/complexity_bias.toml")
    ca.add_argument("--out", required=True, help="output folder")
    ca.add_argument("--set", **overrides)
    ca.add_argument("--layer", help="the layer checked (default: the last one)")
    ca.add_argument("--threads", type=_non_negative_int, default=0,
                    help="CPU threads of torch and numpy's BLAS (default: their choice)")
    ca.add_argument("--no-progress", action="store_true", help="no progress bars")
    ca.set_defaults(func=cmd_causal)

    c = sub.add_parser("compare", help="R² per feature of finished runs side by side "
                                       "(e.g. CNN vs ResNet), with 95%% intervals over seeds; "
                                       "with --dataset, an activation file against a brain "
                                       "dataset")
    c.add_argument("runs", nargs="+", help="output folders of `rsa-bias run`, or (with "
                                           "--dataset / --responses) one activation file of "
                                           "`rsa-bias extract` or a model FILE.py:FACTORY "
                                           "(with --layers)")
    c.add_argument("--dataset", choices=("rsa92", "v4"),
                   help="score the activation file's layers against human/monkey IT (rsa92) "
                        "or V4 neurons (v4); --out is then the output folder")
    c.add_argument("--responses", help="score the activation file's layers against your "
                                       "own recordings: a CSV, one row per stimulus, one "
                                       "column per neuron/voxel (with --stimulus-column)")
    c.add_argument("--stimulus-column", help="the CSV column of the stimulus ids")
    c.add_argument("--feature-columns", help="comma-separated CSV columns that label the "
                                             "stimuli (not responses)")
    c.add_argument("--stimuli", help="with a model (FILE.py:FACTORY in place of the file) and "
                                     "--responses: the images the recordings saw (a folder "
                                     "or a .npy array); with --dataset its own images")
    c.add_argument("--image-size", type=_at_least(1), default=None,
                   help="with a model: the side of the square the images are fitted to")
    add_image_prep_arguments(c, with_model="with a model: ")
    c.add_argument("--no-progress", action="store_true", help="with a model: no progress bar")
    c.add_argument("--n-boot", type=int, default=1000,
                   help="bootstrap replicates with --dataset / --responses (default 1000)")
    c.add_argument("--seed", type=_seed, default=0, help="seed of the bootstraps and folds")
    c.add_argument("--labels", help="comma-separated label per run (default: folder names)")
    c.add_argument("--layers", help="comma-separated layer per run (default: each run's "
                                    "last layer); with --dataset / --responses the layers to "
                                    "score (default: every layer of the file; required for a "
                                    "model)")
    c.add_argument("--out", help="also draw the figure into this PNG file; with --dataset / "
                                 "--responses the output folder")
    c.set_defaults(func=cmd_compare)

    v = sub.add_parser("validate", help="check a config and print it with all defaults")
    v.add_argument("config")
    v.add_argument("--set", **overrides)
    v.set_defaults(func=cmd_validate)

    d = sub.add_parser("demo", help="run a demonstration of how biases distort comparisons "
                                    "(--list lists them)")
    d.add_argument("name", nargs="?", help="demo name, e.g. loud-feature or lampinen")
    d.add_argument("--list", action="store_true", help="list the demos and what they show")
    d.add_argument("--out", help="output folder for results.nc (and figures)")
    d.add_argument("--figures-dir", help="folder for the PNG figures (default: --out)")
    d.add_argument("--seed", type=_seed, default=0,
                   help="seeds every random draw, 0..2**32-1 (default 0)")
    d.add_argument("--quick", action="store_true",
                   help="a tiny version that runs in seconds (for tests; numbers not meaningful)")
    d.add_argument("--threads", type=_non_negative_int, default=0,
                   help="CPU threads of torch and numpy's BLAS (default: their choice)")
    d.set_defaults(func=cmd_demo)

    b = sub.add_parser("brain", help="CNNs (random inits and trained on Trifeature images) vs "
                                     "human/monkey IT (92 images) and V4 (640 images)")
    b.add_argument("--out", required=True, help="output folder for the results and figures")
    b.add_argument("--full", action="store_true",
                   help="the full run (more training images and steps, 1000 bootstrap samples)")
    b.add_argument("--seed", type=_seed, default=0,
                   help="seeds every random draw, 0..2**32-1 (default 0)")
    lo, hi = BRAIN_IMAGE_SIZES
    b.add_argument("--image-size", type=_image_size, default=64,
                   help=f"pixels the brain stimuli are resized to, {lo}..{hi} (default 64)")
    b.add_argument("--threads", type=_non_negative_int, default=0,
                   help="CPU threads of torch and numpy's BLAS (default: their choice)")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=cmd_brain)
    add_parsers(sub, overrides)
    add_own_model_parsers(sub)
    add_searchlight_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, OSError) as exc:  # OSError: missing, folder, permission
        print(f"rsa-bias: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
