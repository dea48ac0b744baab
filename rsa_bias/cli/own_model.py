"""The command-line verb for a user's own model: ``rsa-bias extract`` reads the named modules
of any PyTorch model, defined in the user's Python file, on a folder of images, a ``.npy``
array or a shipped image set, into an activation file written batch by batch."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rsa_bias.cli._args import (
    _at_least,
    _non_negative_int,
    _seed,
    add_image_prep_arguments,
    image_prep_given,
    image_prep_of,
    report,
    set_threads,
)

REDUCTIONS = ("mean", "max", "flatten", "random_projection")


def _stimuli(spec: str):
    """(stimuli, stimulus_ids) of ``--stimuli``: a shipped set, a folder or a .npy file."""
    import numpy as np

    from rsa_bias.experiments.extraction import NAMED_STIMULI, named_stimuli
    from rsa_bias.store.images import read_array_stimuli

    if spec in NAMED_STIMULI:
        return named_stimuli(spec), None
    path = Path(spec)
    if path.is_dir():
        return path, None
    if path.suffix == ".npy":
        arr = read_array_stimuli(path)
        return arr, np.arange(len(arr))
    raise ValueError(f"--stimuli {spec!r} is neither a shipped set {list(NAMED_STIMULI)}, a "
                     "folder of images nor a .npy file")


def cmd_extract(args: argparse.Namespace) -> int:
    import torch

    from rsa_bias.experiments.extraction import extract_to_file, load_factory
    from rsa_bias.training.extract import module_layers

    set_threads(args.threads)
    model = load_factory(args.model)()
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{args.model} returned a {type(model).__name__}, not a "
                         "torch.nn.Module")
    if args.list_layers:
        print("\n".join(module_layers(model)))
        return 0
    if not args.layers or not args.stimuli or not args.out:
        raise ValueError("give --stimuli, --layers and --out (or --list-layers to see the "
                         "module paths)")
    if Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder; give the .nc file to write")
    try:
        model.to(torch.device(args.device))
    except (RuntimeError, AssertionError) as exc:  # a malformed name, or no such device here
        raise ValueError(f"--device {args.device!r} cannot be used here ({exc}); use cpu, or "
                         "cuda on a machine with a CUDA build of torch") from exc
    stimuli, ids = _stimuli(args.stimuli)
    t0 = time.perf_counter()
    path = extract_to_file(model, stimuli, args.out, layers=args.layers, stimulus_ids=ids,
                           batch_size=args.batch_size, reduction=args.reduction,
                           n_components=args.n_components, seed=args.seed,
                           channel_axis=args.channel_axis, output_index=args.output_index,
                           image_size=args.image_size, image_prep=image_prep_of(args),
                           read_batch=args.read_batch, read_workers=args.read_workers,
                           dtype=args.dtype, compression=args.compression,
                           progress=not args.no_progress, source=args.model)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, layers "
          f"{', '.join(args.layers)}) in {time.perf_counter() - t0:.1f} s")
    return 0


def _extract_for(args: argparse.Namespace, spec: str, layers: list[str], dataset) -> Path:
    """``OUT/activations.nc`` of the model ``spec`` on the dataset's images (``--stimuli``
    for your own recordings)."""
    import torch

    from rsa_bias.experiments.extraction import extract_to_file, load_factory

    stimuli_spec = args.stimuli or (args.dataset if args.dataset else None)
    if stimuli_spec is None:
        raise ValueError("with a model and --responses, give the stimuli the recordings saw "
                         "with --stimuli (a folder of images or a .npy array)")
    model = load_factory(spec)()
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    stimuli, ids = _stimuli(stimuli_spec)
    path = extract_to_file(model, stimuli, Path(args.out) / "activations.nc", layers=layers,
                           stimulus_ids=ids, image_size=args.image_size,
                           image_prep=image_prep_of(args),
                           progress=not args.no_progress, source=spec)
    print(f"extracted {', '.join(layers)} of {spec} on {stimuli_spec} into {path}")
    return path


def compare_to_dataset(args: argparse.Namespace) -> int:
    """``rsa-bias compare ACTIVATIONS.nc --dataset D --out FOLDER`` (or ``--responses
    FILE.csv --stimulus-column C``): the layers of an activation file against a shipped brain
    dataset or your own recordings, as a table, a results file and a figure."""
    from rsa_bias.cli._args import _check_folders
    from rsa_bias.experiments.own_vs_brain import brain_comparison_table, run_compare_to_brain

    if len(args.runs) != 1 or not args.out:
        raise ValueError("with --dataset or --responses, give one activation file and --out "
                         "FOLDER")
    if args.dataset and args.responses:
        raise ValueError("give --dataset (a shipped dataset) or --responses (your CSV), not "
                         "both")
    dataset = args.dataset
    if args.responses:
        from rsa_bias.brain import dataset_from_csv

        if not args.stimulus_column:
            raise ValueError("--responses needs --stimulus-column, the CSV column of the "
                             "stimulus ids")
        labels = args.feature_columns.split(",") if args.feature_columns else ()
        dataset = dataset_from_csv(args.responses, stimulus_column=args.stimulus_column,
                                   feature_columns=labels)
        dataset.attrs["dataset"] = Path(args.responses).stem
    if args.n_boot < 1:
        raise ValueError(f"--n-boot must be >= 1, got {args.n_boot}")
    layers = args.layers.split(",") if args.layers else None
    source = args.runs[0]
    model_given = ":" in source and not Path(source).exists()
    if not model_given and (image_prep_given(args) or args.image_size is not None):
        raise ValueError(f"{source} is an activation file: --image-size and the image options "
                         "(--image-prep, --crop-fraction, ...) apply only when a model "
                         "(FILE.py:FACTORY) is given in its place")
    if model_given and not layers:
        raise ValueError(f"{source} names a model: give the module paths to read with "
                         "--layers a,b,c (rsa-bias extract MODEL --list-layers lists them)")
    _check_folders(out=args.out)
    if model_given:  # a model and stimuli: extract first, into the output folder
        source = _extract_for(args, source, layers, dataset)
    paths = run_compare_to_brain(source, args.out, dataset=dataset, layers=layers,
                                 n_boot=args.n_boot, seed=args.seed)
    from rsa_bias.store import read_results

    table = brain_comparison_table(read_results(paths["results"]))
    report(table, paths, index=False)
    return 0


def add_parsers(sub) -> None:
    """Add the ``extract`` verb to the subparsers ``sub``.

    Parameters
    ----------
    sub : argparse subparsers action
        From ``ArgumentParser.add_subparsers``.
    """
    e = sub.add_parser("extract", help="read the named modules of your own PyTorch model on "
                                       "your stimuli into an activation file (batch by batch)")
    e.add_argument("model", help="FILE.py:FACTORY or module:FACTORY, a callable returning the "
                                 "torch.nn.Module (e.g. my_models.py:make_resnet)")
    e.add_argument("--stimuli", help="a folder of images, a .npy array (first axis: "
                                     "stimuli) or a shipped set: rsa92, v4")
    e.add_argument("--layers", nargs="+", help="module paths as named_modules() prints them, "
                                               "e.g. layer4.1.relu (see --list-layers)")
    e.add_argument("--out", help="the activation file to write (.nc)")
    e.add_argument("--list-layers", action="store_true",
                   help="print the model's module paths and exit")
    e.add_argument("--reduction", choices=REDUCTIONS, default="mean",
                   help="how a conv map (or sequence) becomes units (default mean)")
    e.add_argument("--n-components", type=_at_least(1), default=None,
                   help="units of the random projection (with --reduction random_projection)")
    e.add_argument("--seed", type=_seed, default=0, help="seed of the random projection")
    e.add_argument("--channel-axis", type=int, default=None,
                   help="the axis --reduction mean/max keeps (default 1 for (N, C, H, W, ...) "
                        "outputs, -1 for (N, T, D)); e.g. -1 for channels-last maps")
    e.add_argument("--output-index", type=_non_negative_int, default=0,
                   help="which element of a tuple output to read (default 0; "
                        "nn.MultiheadAttention and nn.LSTM return tuples)")
    e.add_argument("--batch-size", type=_at_least(1), default=64)
    e.add_argument("--read-batch", type=_at_least(1), default=1024,
                   help="images of a folder read from disk at a time (default 1024)")
    e.add_argument("--read-workers", type=_non_negative_int, default=None,
                   help="threads decoding a folder's images, the next --read-batch read "
                        "ahead while the model runs (default min(4, CPUs); 0: one thread, "
                        "no reading ahead)")
    e.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="how the activations are stored (default float32)")
    e.add_argument("--image-size", type=_at_least(1), default=None,
                   help="the side of the square images are fitted to, as --image-prep "
                        "says; a folder: default 224")
    add_image_prep_arguments(e)
    e.add_argument("--compression", type=int, choices=range(10), default=0,
                   help="zlib level of the stored activations (default 0: none)")
    e.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    e.add_argument("--threads", type=_non_negative_int, default=0,
                   help="CPU threads of torch and numpy's BLAS (default: their choice)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_extract)
