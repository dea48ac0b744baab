"""Argument types, output-folder checks, sweep grids and the shared running and reporting of
the command line (:mod:`rsa_bias.cli` and its verb modules)."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import os
from pathlib import Path

from rsa_bias.config import SEED_LIMIT, ConfigError

#: The ``--image-size`` range of ``rsa-bias brain``: the comparison CNN halves the image in
#: its 2 max-pooling steps (3 conv blocks), so 4 pixels is the smallest it takes; the
#: photographs are 175 and 112 pixels, so 512 leaves room to upsample without exhausting
#: memory.
BRAIN_IMAGE_SIZES = (4, 512)


def _non_negative_int(text: str) -> int:
    """argparse type of ``--threads``: an integer >= 0."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0: torch's choice), got {n}")
    return n


def held(out: str):
    """``out`` created and its ``.run.lock`` held (a context manager): a second command
    started on the same folder while this one runs stops at once, naming this process (it
    would train the same seeds again, or mix another config's files into this one's)."""
    from rsa_bias._lock import folder_lock

    Path(out).mkdir(parents=True, exist_ok=True)
    return folder_lock(out, "run")


def run_verb(name: str, out: str, **options):
    """Every verb that runs an experiment goes through the registry here, holding the
    folder (:func:`held`)."""
    from rsa_bias.experiments import run_experiment

    with held(out):
        return run_experiment(name, out, **options)


def report(table, paths, elapsed_s: float | None = None, *, index: bool = True) -> None:
    """Print a verb's summary table (if any), the files it wrote and (if given) its time."""
    if table is not None:
        print(table.to_string(index=index, float_format=lambda v: f"{v:.3f}"))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if elapsed_s is not None:
        print(f"total time: {elapsed_s:.1f} s")


def set_threads(n: int) -> None:
    """``--threads``: torch's CPU threads and the BLAS / OpenMP threads numpy and
    scikit-learn use (threadpoolctl), so ``--threads 1`` runs every computation on one
    thread (the same numbers run after run); 0 leaves both libraries' choice."""
    if n:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(n)
        threadpool_limits(n)


def _at_least(minimum: int):
    """argparse type of an integer option that must be >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {n}")
        return n
    return parse


def _seed(text: str) -> int:
    """argparse type of ``--seed``: an integer in [0, 2**32), the range numpy and torch take."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= n < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**32 - 1], got {n}")
    return n


def _image_size(text: str) -> int:
    """argparse type of ``--image-size``: pixels in :data:`BRAIN_IMAGE_SIZES`."""
    lo, hi = BRAIN_IMAGE_SIZES
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not lo <= n <= hi:
        raise argparse.ArgumentTypeError(
            f"must be {lo}..{hi} pixels, got {n} (the CNN pools the image twice, so it needs "
            f"at least {lo}; the photographs are 175 and 112 pixels)")
    return n


def _check_folders(**folders: str | None) -> None:
    """Check every output folder (``flag=path``; ``out`` is ``--out``), then create them.

    A folder that is empty, a file, under a file, or cannot be created is refused before
    anything runs.
    """
    for flag, path in folders.items():
        _check_folder(path, _flag(flag))
    for flag, path in folders.items():
        if path is not None:
            _make_folder(path, _flag(flag))


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _make_folder(path: str, flag: str) -> None:
    """Create the output folder ``path``, or say why it cannot be created."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"{flag} {path}: the output folder cannot be created "
                      f"({exc.strerror or exc}{_where(path)}); give a folder you can write "
                      "to") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OSError(f"{flag} {path}: the output folder cannot be written to (permission "
                      "denied); give a folder you can write to")


def _where(path: str) -> str:
    """Where a failed folder creation stopped: the nearest existing folder above ``path``."""
    parent = next((p for p in Path(path).parents if p.exists()), None)
    return f"; {parent} does not take new folders" if parent not in (None, Path(".")) else ""


def _check_folder(path: str | None, flag: str = "--out") -> None:
    """Refuse an output folder that is empty, a file, or lies under one, before anything
    runs."""
    if path is None:
        return
    if not path.strip():
        raise ValueError(f"{flag} is empty; give a folder (it is created if missing)")
    for p in (Path(path), *Path(path).parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == Path(path) else f"lies under {p}, which is a file"
                raise ValueError(f"{flag} {path} {what}, not a folder; give a folder (it is "
                                 "created if missing)")
            return


def _grid_points(grid: list[str], one_at_a_time: bool = False) -> list[list[str]]:
    """Override lists for a sweep: the product of all grids, or the base config plus
    each grid value on its own (``one_at_a_time``)."""
    axes, keys = [], []
    for item in grid:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"--grid {item!r} must look like section.key=v1,v2")
        key, values = item.split("=", 1)
        if key in keys:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one "
                              f"--grid {key}=v1,v2")
        keys.append(key)
        values = _split_values(values)
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ConfigError(f"--grid {key} lists {', '.join(twice)} more than once; give "
                              "each value once")
        axes.append([f"{key}={v}" for v in values])
    if one_at_a_time:
        return [[]] + [[value] for axis in axes for value in axis]
    return [list(p) for p in itertools.product(*axes)] if axes else [[]]


def _split_values(values: str) -> list[str]:
    """Split ``a,b,[1,2]`` on commas outside brackets."""
    out, depth, cur = [], 0, ""
    for ch in values:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def _point_name(point: list[str]) -> str:
    if not point:
        return "base"
    safe = "_".join(p.replace("=", "-") for p in point)
    safe = "".join(c if c.isalnum() or c in "-_." else "" for c in safe)[:100]
    digest = hashlib.sha1(" ".join(point).encode()).hexdigest()[:8]
    return f"{safe}_{digest}"


def _resources(text: str | None) -> dict[str, float] | None:
    """``--resources GPU=1,MEMORY=2e9`` -> ``{"GPU": 1.0, "MEMORY": 2e9}``."""
    if text is None:
        return None
    if not text.strip():
        raise ValueError("--resources is empty; give NAME=N, e.g. --resources GPU=1")
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = float("nan")
        if not name.strip() or not amount > 0 or amount == float("inf"):
            raise ValueError(f"--resources {text!r}: {item!r} must look like NAME=N with N > 0,"
                             " e.g. --resources GPU=1")
        out[name.strip()] = amount
    return out


def _rgb(text: str) -> tuple[float, float, float]:
    """argparse type of ``--mean`` / ``--std``: three comma-separated numbers (R,G,B)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers R,G,B, got {text!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected three finite numbers R,G,B, got {text!r}")
    return values  # type: ignore[return-value]


#: ``--crop-fraction`` not given (``None`` is a value: stretch).
_UNSET = object()


def _fraction_or_none(text: str) -> float | None:
    """argparse type of ``--crop-fraction``: a number, or ``none`` (stretch)."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1] or none, got "
                                         f"{text!r}") from None


def add_image_prep_arguments(parser: argparse.ArgumentParser, *, with_model: str = "") -> None:
    """``--image-prep``, ``--crop-fraction``, ``--resize-to``, ``--mean``, ``--std``,
    ``--upright``: how images become input (``with_model`` prefixes the help texts)."""
    from rsa_bias._image_prep import IMAGE_PREPS

    parser.add_argument("--image-prep", choices=sorted(IMAGE_PREPS), default=None,
                        help=f"{with_model}unit (default): stretch to the square, scale to "
                             "[-1, 1]; imagenet: torchvision's evaluation transform for its "
                             "pretrained weights (shorter side to size / 0.875, centre crop, "
                             "ImageNet mean and std)")
    parser.add_argument("--crop-fraction", type=_fraction_or_none, default=_UNSET,
                        help=f"{with_model}resize the shorter side to size / F and cut the "
                             "centre square (0.05 <= F <= 1; 1 keeps the whole shorter side; "
                             "none stretches); overrides the preset's")
    parser.add_argument("--resize-to", type=_at_least(1), default=None,
                        help=f"{with_model}the shorter side in pixels before the centre crop "
                             "(e.g. 342 for Inception v3's Resize(342) + CenterCrop(299)); in "
                             "place of --crop-fraction")
    parser.add_argument("--mean", type=_rgb, default=None,
                        help=f"{with_model}per-channel mean R,G,B on pixels / 255 (overrides "
                             "the preset's; write --mean=-0.5,0,0 for a leading minus)")
    parser.add_argument("--std", type=_rgb, default=None,
                        help=f"{with_model}per-channel standard deviation R,G,B (overrides the "
                             "preset's)")
    parser.add_argument("--upright", action="store_true",
                        help=f"{with_model}turn image files upright by their EXIF orientation "
                             "tag first (default: as stored, as torchvision's loader and "
                             "PsychoPy show them)")


def image_prep_given(args: argparse.Namespace) -> bool:
    """Whether any argument of :func:`add_image_prep_arguments` was given."""
    return (args.image_prep is not None or args.crop_fraction is not _UNSET
            or any(v not in (None, False) for v in (args.resize_to, args.mean, args.std,
                                                     args.upright)))


def image_prep_of(args: argparse.Namespace):
    """The :class:`~rsa_bias.networks.ImagePrep` of the arguments of
    :func:`add_image_prep_arguments` (the preset with any override)."""
    from dataclasses import replace

    from rsa_bias._image_prep import ImagePrep

    prep = ImagePrep.named(args.image_prep)
    changes = {k: v for k, v in (("resize_to", args.resize_to), ("mean", args.mean),
                                 ("std", args.std)) if v is not None}
    if args.crop_fraction is not _UNSET:
        changes["crop_fraction"] = args.crop_fraction
    elif args.resize_to is not None:
        changes["crop_fraction"] = None  # --resize-to in place of the preset's fraction
    if args.upright:
        changes["upright"] = True
    return replace(prep, **changes) if changes else prep
