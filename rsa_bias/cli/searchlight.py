"""The searchlight verb of the command line: ``rsa-bias searchlight`` maps where the shipped
Haxby slice tells faces from houses (a model-RDM searchlight, and the crossnobis face-house
distance per sphere)."""

from __future__ import annotations

import argparse
import time

from rsa_bias.cli._args import _check_folders

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
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    print(f"total time: {time.perf_counter() - t0:.1f} s")
    return 0


def add_parsers(sub) -> None:
    """Add the ``searchlight`` verb to the subparsers ``sub``.

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
