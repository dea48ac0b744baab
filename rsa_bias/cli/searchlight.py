"""Brain-analysis verbs of the command line: ``rsa-bias searchlight`` maps where the shipped
Haxby slice tells faces from houses (a model-RDM searchlight, and the crossnobis face-house
distance per sphere); ``rsa-bias alignment`` scores how one-to-one random CNN units map onto
the V4 neurons (Higgins et al. 2021), beside simulated neurons with a known answer."""

from __future__ import annotations

import argparse
import time

from rsa_bias.cli._args import (
    _at_least,
    _check_folders,
    _image_size,
    _non_negative_int,
    _seed,
    held,
    report,
    set_threads,
)

RDM_METHODS = ("correlation", "euclidean", "sqeuclidean", "cosine", "mahalanobis",
               "crossnobis")
COMPARE_METHODS = ("spearman", "pearson", "kendall_tau_a", "kendall_tau_b", "rho_a",
                   "cosine")


def _radius(text: str) -> float:
    try:
        r = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a radius in mm, got {text!r}") from None
    if not 0 < r < 100:
        raise argparse.ArgumentTypeError(f"the radius must be in (0, 100) mm, got {r}")
    return r


def cmd_searchlight(args: argparse.Namespace) -> int:
    import numpy as np

    from rsa_bias.experiments.searchlight import run_haxby_searchlight
    from rsa_bias.store import read_results

    _check_folders(out=args.out)
    t0 = time.perf_counter()
    with held(args.out):
        paths = run_haxby_searchlight(args.out, radius_mm=args.radius_mm,
                                      rdm_method=args.rdm_method,
                                      compare_method=args.compare_method,
                                      progress=not args.no_progress)
    res = read_results(paths["results"])
    score = res["score"].sel(model="face_vs_house")
    best = int(np.nanargmax(score.values))
    print(f"{score.sizes['centre']} spheres of radius {args.radius_mm} mm; face-vs-house "
          f"model ({args.rdm_method} RDMs, {args.compare_method}): median "
          f"{float(score.median()):.3f}, peak {float(score.max()):.3f} at voxel "
          f"({int(res['i'][best])}, {int(res['j'][best])}, {int(res['k'][best])})")
    report(None, paths, time.perf_counter() - t0)
    return 0


def cmd_alignment(args: argparse.Namespace) -> int:
    from rsa_bias.experiments.alignment_v4 import run_alignment

    _check_folders(out=args.out)
    set_threads(args.threads)
    with held(args.out):
        table, paths, elapsed = run_alignment(
            args.out, seed=args.seed, image_size=args.image_size, n_perm=args.n_perm,
            n_boot=args.n_boot, n_jobs=args.jobs, trained=args.trained,
            progress=not args.no_progress)
    report(table, paths, elapsed, index=False)
    return 0


def add_parsers(sub) -> None:
    """Add the ``searchlight`` and ``alignment`` verbs to the subparsers ``sub``.

    Parameters
    ----------
    sub : argparse subparsers action
        From ``ArgumentParser.add_subparsers``.
    """
    s = sub.add_parser("searchlight", help="searchlight RSA on the shipped Haxby slice: where "
                                           "do local patterns tell faces from houses?")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--radius-mm", type=_radius, default=8.0,
                   help="sphere radius in mm (default 8)")
    s.add_argument("--rdm-method", choices=RDM_METHODS, default="correlation")
    s.add_argument("--compare-method", choices=COMPARE_METHODS, default="spearman")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_searchlight)
    a = sub.add_parser("alignment", help="unit-neuron alignment (Higgins et al. 2021) of the "
                                         "random CNNs with 50 V4 neurons, and on simulated "
                                         "neurons with a known answer")
    a.add_argument("--out", required=True, help="output folder")
    a.add_argument("--seed", type=_seed, default=0)
    a.add_argument("--image-size", type=_image_size, default=64,
                   help="pixels the V4 images are resized to (default 64)")
    a.add_argument("--n-perm", type=_at_least(1), default=50,
                   help="neuron permutations of the null (default 50)")
    a.add_argument("--n-boot", type=_at_least(1), default=100,
                   help="bootstrap replicates of the interval (default 100)")
    a.add_argument("--jobs", type=_at_least(1), default=1,
                   help="layers scored in parallel processes (default 1)")
    a.add_argument("--trained", action="store_true", help="also train and score the "
                                                           "Trifeature CNN")
    a.add_argument("--threads", type=_non_negative_int, default=0,
                   help="CPU threads of torch and numpy's BLAS (default: their choice)")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_alignment)
