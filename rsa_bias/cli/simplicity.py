"""The simplicity-bias verbs of the command line: ``rsa-bias redshift`` (random networks'
complexity, Neural Redshift), ``rsa-bias spectral`` (spectral bias over training) and
``rsa-bias init-gap`` (complexity at init against the representation gap after training)."""

from __future__ import annotations

import argparse

from rsa_bias.cli._args import _check_folders, _non_negative_int, report, run_verb, set_threads


def _start(args: argparse.Namespace, loader, name: str):
    """Load and check the config of ``args``, then run experiment ``name`` on it."""
    cfg = loader(args.config, args.set)
    _check_folders(out=args.out)
    set_threads(args.threads)
    return cfg, run_verb(name, args.out, config=cfg, progress=not args.no_progress,
                     figures=not args.no_figures)


def cmd_redshift(args: argparse.Namespace) -> int:
    from rsa_bias.config.redshift import load_redshift_config
    from rsa_bias.experiments.redshift import measure_agreement, variant_effect

    cfg, run = _start(args, load_redshift_config, "neural-redshift")
    mlp = run.results["mlp"]
    print(f"\n{cfg.name}: {mlp.sizes['network']} random MLPs in each of "
          f"{mlp['fourier_frequency'].size // mlp.sizes['network']} cells (plain MLPs: mean "
          "at the smallest scale and depth, over scales >= 10 and depths >= 3, and / ReLU)")
    report(run.table, run.paths, run.elapsed_s)
    if "plain" in mlp.variant.values and mlp.sizes["variant"] > 1:
        print("\nthe most complex plain cell of each activation, by variant:")
        print(variant_effect(mlp).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nSpearman between the measures over the cells:")
    print(measure_agreement(mlp).to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_spectral(args: argparse.Namespace) -> int:
    from rsa_bias.config.spectral import load_spectral_config

    cfg, run = _start(args, load_spectral_config, "spectral-bias")
    print(f"\n{cfg.name}: first step at which |f(k)| / A reaches {cfg.threshold} "
          f"({len(cfg.seeds)} repeats)")
    report(run.table, run.paths, run.elapsed_s)
    return 0


def cmd_init_gap(args: argparse.Namespace) -> int:
    from rsa_bias.config import load_config

    load_config(args.config, args.set)  # refuse a bad config before anything runs
    _check_folders(out=args.out)
    activations = [a.strip() for a in args.activations.split(",") if a.strip()]
    try:
        scales = [float(s) for s in args.scales.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--scales takes comma-separated numbers, got {args.scales!r}") \
            from None
    run = run_verb("init-gap", args.out, config=args.config, activations=activations,
               scales=scales, overrides=args.set, jobs=args.jobs,
               progress=not args.no_progress, figures=not args.no_figures)
    ds = run.results["init_gap"]
    print(f"\ncomplexity at init vs R² {ds.attrs['easy']} - R² {ds.attrs['hard']} at "
          f"{ds.attrs['layer']} ({ds.sizes['seed']} seeds; gap [95% interval over seeds])")
    report(run.table, run.paths, run.elapsed_s, index=False)
    return 0


def add_parsers(sub, overrides: dict) -> None:
    """Add the ``redshift``, ``spectral`` and ``init-gap`` verbs to the subparsers ``sub``.

    Parameters
    ----------
    sub : argparse subparsers action
        From ``ArgumentParser.add_subparsers``.
    overrides : dict
        The keyword arguments of every verb's ``--set`` option.
    """
    for name, func, what, example in (
            ("redshift", cmd_redshift, "complexity of random MLPs on a 2D grid (activation x "
             "variant x weight scale x depth) and of random Transformers' generations "
             "(Neural Redshift)", "models/redshift.toml"),
            ("spectral", cmd_spectral, "spectral bias: the iteration at which a ReLU MLP "
             "fits each frequency of a sum of sinusoids (Rahaman et al. 2019)",
             "models/spectral_bias.toml")):
        p = sub.add_parser(name, help=what)
        p.add_argument("config", help=f"the experiment's config, e.g. {example}")
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--set", **overrides)
        p.add_argument("--threads", type=_non_negative_int, default=0,
                       help="CPU threads of torch and numpy's BLAS (default: their choice)")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.add_argument("--no-figures", action="store_true", help="skip the figures")
        p.set_defaults(func=func)
    g = sub.add_parser("init-gap", help="train a complexity-bias config for every activation "
                                        "x init scale; relate each network's complexity at "
                                        "initialisation to its R² gap after training")
    g.add_argument("config", help="a complexity-bias MLP config, e.g. "
                                  "models/complexity_bias.toml")
    g.add_argument("--out", required=True, help="the sweep's output folder")
    g.add_argument("--activations", default="relu,tanh,sine",
                   help="comma-separated activations (default relu,tanh,sine)")
    g.add_argument("--scales", default="0.1,1,3",
                   help="comma-separated model.init_scale values (default 0.1,1,3)")
    g.add_argument("--set", **overrides)
    g.add_argument("--jobs", type=int, default=1, help="sweep points run in parallel")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-figures", action="store_true", help="skip the figure")
    g.set_defaults(func=cmd_init_gap)
