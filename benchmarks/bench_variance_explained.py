"""Feature variance explained: rsa_bias vs the scikit-learn loop a user would write.

For every (seed, step) slice of a layer, a user fits ``LinearRegression`` of the
layer on each feature (val split) and on all features jointly, predicts the
test split and computes R² against the val-centred representation. We time
that loop and ``rsa_bias.analysis.feature_variance_explained`` on the same
labelled data, check that the numbers agree, and print the ratio.

Run: ``python benchmarks/bench_variance_explained.py [--units 1024] [--slices 20]``
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from _timing import best_of, int_options
from sklearn.linear_model import LinearRegression

from rsa_bias.analysis import feature_variance_explained


def make_data(n_stim: int, n_units: int, n_slices: int, n_features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 2, size=(n_stim, n_features))
    mix = rng.normal(size=(n_slices, n_features, n_units))
    phi = np.einsum("sf,kfu->ksu", 2.0 * f - 1, mix) + rng.normal(size=(n_slices, n_stim, n_units))
    split = np.where(np.arange(n_stim) % 2 == 0, "val", "test")
    coords = {"split": ("stimulus", split), "step": np.arange(n_slices),
              **{f"feature_f{j}": ("stimulus", f[:, j]) for j in range(n_features)}}
    act = xr.DataArray(phi.astype(np.float32), dims=("step", "stimulus", "unit"), coords=coords)
    return act, f, split


def sklearn_loop(act: xr.DataArray, f: np.ndarray, split: np.ndarray) -> np.ndarray:
    val, test = split == "val", split == "test"
    out = np.empty((act.sizes["step"], f.shape[1] + 1))
    for k in range(act.sizes["step"]):
        phi = act.values[k].astype(np.float64)
        centred_test = phi[test] - phi[val].mean(axis=0)
        total = np.sum(centred_test**2)
        cols = [[j] for j in range(f.shape[1])] + [list(range(f.shape[1]))]
        for c, cols_j in enumerate(cols):
            model = LinearRegression().fit(f[val][:, cols_j], phi[val])
            out[k, c] = 1 - np.sum((model.predict(f[test][:, cols_j]) - phi[test]) ** 2) / total
    return out


def main() -> None:
    args = int_options(__doc__, stimuli=4096, units=1024, slices=20,
                       features=2).parse_args()
    act, f, split = make_data(args.stimuli, args.units, args.slices, args.features)
    t_ours, ours = best_of(lambda: feature_variance_explained(act))
    t_ref, ref = best_of(lambda: sklearn_loop(act, f, split))
    ours_arr = np.concatenate([ours.r2.values, ours.r2_joint.values[:, None]], axis=1)
    err = float(np.max(np.abs(ours_arr - ref)))
    print(f"{args.slices} slices of {args.stimuli} stimuli x {args.units} units, "
          f"{args.features} features (+ joint)")
    print(f"rsa_bias feature_variance_explained: {t_ours:8.3f} s")
    print(f"scikit-learn LinearRegression loop:  {t_ref:8.3f} s")
    print(f"ratio (sklearn / rsa_bias): {t_ref / t_ours:.2f}x   max |R2 difference|: {err:.1e}")


if __name__ == "__main__":
    main()
