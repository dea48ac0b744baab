"""Correlation RDM: rsa_bias.analysis.rsa.rdms vs rsatoolbox.rdm.calc_rdm, side by side.

Both get the same 1000 stimuli x 4096 units (as a labelled DataArray for us, as an
rsatoolbox Dataset for rsatoolbox; building either container is not timed). The
script checks that the RDMs agree, then prints best-of-N times and their ratio.

Run: ``python benchmarks/bench_rdm.py [--stimuli 1000] [--units 4096] [--repeats 3]``
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from _timing import best_of, int_options

from rsa_bias.analysis.rsa.rdms import condensed, rdm


def main() -> None:
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    args = int_options(__doc__, stimuli=1000, units=4096, repeats=3).parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.stimuli, args.units))
    da = xr.DataArray(x, dims=("stimulus", "unit"), coords={"stimulus": np.arange(args.stimuli)})
    ds = Dataset(x, obs_descriptors={"stimulus": np.arange(args.stimuli)})

    t_ours, ours = best_of(lambda: rdm(da, method="correlation"), args.repeats)
    t_f32, ours32 = best_of(lambda: rdm(da, method="correlation", dtype="float32"), args.repeats)
    t_ref, ref = best_of(lambda: calc_rdm(ds, method="correlation"), args.repeats)
    ref_vec = ref.get_vectors()[0]
    err = float(np.max(np.abs(condensed(ours).values - ref_vec)))
    err32 = float(np.max(np.abs(condensed(ours32).values - ref_vec)))
    if err > 1e-8:
        raise SystemExit(f"results differ: max |difference| {err:.1e}")
    print(f"correlation RDM, {args.stimuli} stimuli x {args.units} units "
          f"(best of {args.repeats})")
    print(f"rsa_bias rdm (float64):   {t_ours:8.3f} s   max |diff| vs rsatoolbox {err:.1e}")
    print(f"rsa_bias rdm (float32):   {t_f32:8.3f} s   max |diff| vs rsatoolbox {err32:.1e}")
    print(f"rsatoolbox calc_rdm:      {t_ref:8.3f} s")
    print(f"ratio (rsatoolbox / rsa_bias): float64 {t_ref / t_ours:.1f}x, "
          f"float32 {t_ref / t_f32:.1f}x")


if __name__ == "__main__":
    main()
