"""Spearman RDM comparison: rsa_bias compare_rdms vs rsatoolbox.rdm.compare.

A stack of 100 RDMs over 1000 stimuli is compared with one RDM. rsatoolbox gets
prebuilt ``RDMs`` objects (vectors); rsa_bias gets labelled RDMs, timed both in
condensed form (the same vectors) and in square form (including the
upper-triangle extraction and id alignment). Building rsatoolbox's objects from
the square RDMs is timed separately. The results are checked to agree.

Run: ``python benchmarks/bench_compare.py [--stimuli 1000] [--rdms 100] [--repeats 2]``
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from _timing import best_of, int_options

from rsa_bias.analysis.rsa.compare import compare_rdms
from rsa_bias.analysis.rsa.rdms import condensed, squareform


def make_rdms(n_stim: int, n_rdms: int, seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    """Condensed RDMs: Euclidean distances of noisy copies of one 20-d embedding."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_stim, 20))
    i, j = np.triu_indices(n_stim, 1)
    vecs = np.empty((n_rdms + 1, i.size))
    for k in range(n_rdms + 1):
        e = base + rng.normal(size=base.shape)
        vecs[k] = np.sqrt(np.sum((e[i] - e[j]) ** 2, axis=1))
    coords = {"stimulus_i": ("pair", i), "stimulus_j": ("pair", j)}
    stack = xr.DataArray(vecs[:n_rdms], dims=("model", "pair"),
                         coords={**coords, "model": np.arange(n_rdms)})
    return stack, xr.DataArray(vecs[n_rdms], dims=("pair",), coords=coords)


def main() -> None:
    from rsatoolbox.rdm import RDMs, compare

    args = int_options(__doc__, stimuli=1000, rdms=100, repeats=2).parse_args()
    stack, one = make_rdms(args.stimuli, args.rdms)
    stack_sq, one_sq = squareform(stack), squareform(one)

    t_build, (rt_stack, rt_one) = best_of(
        lambda: (RDMs(stack_sq.values), RDMs(one_sq.values[None])), 1)
    t_ref, ref = best_of(lambda: compare(rt_stack, rt_one, method="spearman"), args.repeats)
    t_vec, ours = best_of(lambda: compare_rdms(stack, one, method="spearman"), args.repeats)
    t_sq, ours_sq = best_of(lambda: compare_rdms(stack_sq, one_sq, method="spearman"),
                            args.repeats)
    err = max(float(np.max(np.abs(ours.values - ref[:, 0]))),
              float(np.max(np.abs(ours_sq.values - ref[:, 0]))))
    if err > 1e-8:
        raise SystemExit(f"results differ: max |difference| {err:.1e}")
    assert np.array_equal(condensed(stack_sq).values, stack.values)
    print(f"Spearman, stack of {args.rdms} RDMs x 1 RDM, {args.stimuli} stimuli "
          f"({stack.sizes['pair']} pairs; best of {args.repeats})")
    print(f"rsa_bias compare_rdms, condensed input: {t_vec:8.3f} s")
    print(f"rsa_bias compare_rdms, square input:    {t_sq:8.3f} s")
    print(f"rsatoolbox compare (prebuilt RDMs):     {t_ref:8.3f} s   "
          f"(+ {t_build:.3f} s to build RDMs from the square matrices)")
    print(f"ratio (rsatoolbox / rsa_bias): condensed {t_ref / t_vec:.1f}x, "
          f"square {(t_ref + t_build) / t_sq:.1f}x (both sides from square)   "
          f"max |diff| {err:.1e}")


if __name__ == "__main__":
    main()
