"""Searchlight RDMs: rsa_bias.analysis.rsa.searchlight vs rsatoolbox's searchlight, side by side.

On the shipped Haxby slice (530 voxels, 8 categories, 12 runs; :func:`rsa_bias.brain.load_haxby`)
both compute the correlation RDM of every sphere of ``searchlight_spheres(mask, affine,
radius_mm=...)`` (the same spheres: ours are handed to rsatoolbox's
``get_searchlight_RDMs`` as its ``neighbors``, on the run-averaged patterns). The script checks
that the RDMs agree, then prints best-of-N times and their ratio, and the time of the
crossnobis searchlight with a noise precision estimated in each sphere from the GLM residuals
(rsatoolbox's searchlight has no crossnobis). Building the spheres and loading the data are not
timed (the spheres' time is printed apart).

``--synthetic N`` also times our correlation and crossnobis searchlights (and searchlight_rsa
with one model) on a cube of N random voxels at 3 mm (rsatoolbox is not run there).

Run: ``python benchmarks/bench_searchlight.py [--radius-mm 8] [--repeats 3] [--synthetic 0]``
(set ``OMP_NUM_THREADS`` to compare at a fixed thread count).
"""

from __future__ import annotations

import contextlib
import io
import os
import time

import numpy as np
from _timing import best_of, int_options

from rsa_bias.analysis.rsa import searchlight_rdms, searchlight_rsa, searchlight_spheres
from rsa_bias.brain import load_haxby


def _haxby(args) -> None:
    from rsatoolbox.util.searchlight import get_searchlight_RDMs

    ds = load_haxby()
    mask = np.zeros(tuple(ds.attrs["mask_shape"]), dtype=bool)
    mask[ds["i"].values, ds["j"].values, ds["k"].values] = True
    affine = np.reshape(ds.attrs["affine"], (4, 4))
    t_sph, sl = best_of(lambda: searchlight_spheres(mask, affine, radius_mm=args.radius_mm),
                        args.repeats)
    mean = ds["response"].mean("run")
    volume = np.zeros((mean.sizes["stimulus"], mask.size))
    volume[:, np.ravel_multi_index(sl.ijk.T, mask.shape)] = mean.values
    centres = np.ravel_multi_index(sl.ijk[sl.centres].T, mask.shape)
    neighbours = [np.ravel_multi_index(sl.ijk[sl.sphere(c)].T, mask.shape)
                  for c in range(len(sl))]
    events = np.arange(mean.sizes["stimulus"])

    def theirs():
        with contextlib.redirect_stderr(io.StringIO()):
            return get_searchlight_RDMs(volume, centres, neighbours, events,
                                        method="correlation", verbose=False).dissimilarities

    t_ours, ours = best_of(lambda: searchlight_rdms(ds["response"], spheres=sl,
                                                    chunk_size=10**6), args.repeats)
    t_par, par = best_of(lambda: searchlight_rdms(ds["response"], spheres=sl, chunk_size=64),
                         args.repeats)
    t_ref, ref = best_of(theirs, args.repeats)
    err = float(np.max(np.abs(ours.values - ref)))
    if err > 1e-8 or not np.array_equal(ours.values, par.values):
        raise SystemExit(f"results differ: max |difference| {err:.1e}")
    noise = {"residuals": ds["residual"], "dof": int(ds["residual_dof"].sum())}
    t_cn, _ = best_of(lambda: searchlight_rdms(ds["response"], spheres=sl, method="crossnobis",
                                               chunk_size=10**6, **noise), args.repeats)
    t_cnd, _ = best_of(lambda: searchlight_rdms(ds["response"], spheres=sl, method="crossnobis",
                                                noise_method="diag", chunk_size=10**6,
                                                **noise), args.repeats)
    sizes = sl.sizes
    print(f"Haxby slice: {len(sl)} spheres of {sizes.min()}-{sizes.max()} voxels (mean "
          f"{sizes.mean():.1f}), radius {args.radius_mm:g} mm, 8 stimuli, 12 runs "
          f"(best of {args.repeats}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")
    print(f"searchlight_spheres (KD-tree):               {t_sph * 1e3:8.2f} ms")
    print(f"rsa_bias correlation, one chunk:             {t_ours * 1e3:8.2f} ms   max |diff| vs "
          f"rsatoolbox {err:.1e}")
    print(f"rsa_bias correlation, chunks of 64 (threads): {t_par * 1e3:7.2f} ms")
    print(f"rsatoolbox get_searchlight_RDMs:             {t_ref * 1e3:8.2f} ms")
    print(f"ratio (rsatoolbox / rsa_bias): one chunk {t_ref / t_ours:.1f}x, "
          f"chunks {t_ref / t_par:.1f}x")
    print(f"rsa_bias crossnobis, shrinkage_diag precision per sphere: {t_cn * 1e3:8.2f} ms")
    print(f"rsa_bias crossnobis, diagonal precision:                  {t_cnd * 1e3:8.2f} ms")


def _synthetic(n: int) -> None:
    side = int(np.ceil(n ** (1 / 3)))
    mask = np.zeros(side**3, dtype=bool)
    mask[:n] = True
    mask = mask.reshape(side, side, side)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    sl = searchlight_spheres(mask, affine, radius_mm=6.0)
    t_sph = time.perf_counter() - t0
    x = rng.normal(size=(4, 40, n)).astype(np.float64)
    residuals = rng.normal(size=(200, n))
    model = np.abs(rng.normal(size=(40, 40)))
    model = model + model.T
    np.fill_diagonal(model, 0)
    print(f"\nsynthetic: {n} voxels (3 mm), {len(sl)} spheres of mean {sl.sizes.mean():.1f} "
          f"voxels (radius 6 mm), 40 stimuli, 4 runs; spheres {t_sph:.2f} s "
          f"({(sl.indices.nbytes + sl.indptr.nbytes) / 2**20:.0f} MiB)")
    for label, call in [
        ("correlation RDMs", lambda: searchlight_rdms(x, spheres=sl)),
        ("searchlight_rsa correlation + spearman", lambda: searchlight_rsa(x, model,
                                                                           spheres=sl)),
        ("crossnobis, diagonal precision", lambda: searchlight_rdms(
            x, spheres=sl, method="crossnobis", residuals=residuals, noise_method="diag")),
        ("crossnobis, shrinkage_diag per sphere", lambda: searchlight_rsa(
            x, model, spheres=sl, rdm_method="crossnobis", residuals=residuals)),
    ]:
        t0 = time.perf_counter()
        call()
        print(f"  {label:42s} {time.perf_counter() - t0:8.2f} s")


def main() -> None:
    p = int_options(__doc__, repeats=3, synthetic=0)
    p.add_argument("--radius-mm", type=float, default=8.0)
    args = p.parse_args()
    _haxby(args)
    if args.synthetic:
        _synthetic(args.synthetic)


if __name__ == "__main__":
    main()
