"""Input checks of the encoding models: alphas, NaN/inf naming where they are, sample counts,
and labelled inputs aligned on stimulus ids with the labels their outputs carry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from rsa_bias._values import numeric_values
from rsa_bias.analysis._inputs import align_stimuli, as_labelled

MIN_SAMPLES = 3


def _check_alphas(alphas) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    except (TypeError, ValueError):
        a = np.empty((0,))
    if isinstance(alphas, str) or a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) \
            or np.any(a <= 0):
        raise ValueError(f"alphas must be a non-empty 1-D sequence of positive finite "
                         f"numbers; got {alphas!r}")
    return a


def _check_finite_at(values: np.ndarray, name: str, ids: list[np.ndarray] | None = None,
                     dims: tuple[str, ...] = ("sample", "column")) -> None:
    """Refuse NaN/inf, naming how many and where the first one is."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    first = np.argwhere(bad)[0]
    where = ", ".join(f"{d} {np.asarray(ids[i])[j].item()!r}" if ids is not None else f"{d} {j}"
                      for i, (d, j) in enumerate(zip(dims, first, strict=False)))
    raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s), the first at "
                     f"{where}; drop those stimuli/targets or impute them first")


def _check_n_samples(n: int) -> None:
    if n < MIN_SAMPLES:
        raise ValueError(f"RidgeEncoder needs at least {MIN_SAMPLES} samples (stimuli); got "
                         f"{n} sample(s)")


@dataclass
class _Labels:
    """What is needed to label outputs like the inputs."""

    feature_dim: str = "feature"
    target_dim: str = "target"
    target_ids: np.ndarray | None = None
    labelled: bool = False


def _coord_or_range(da: xr.DataArray, dim: str) -> np.ndarray:
    return da[dim].values if dim in da.coords else np.arange(da.sizes[dim])


def _labelled_inputs(X, y) -> tuple[np.ndarray, np.ndarray, _Labels]:
    """Align labelled X and Y on stimulus ids; values (stimulus-major) and their labels."""
    x = as_labelled(X, name="X", dims=("stimulus", "feature"))
    yl = as_labelled(y, name="Y", dims=("stimulus", "target")[: np.ndim(y)])
    if x.ndim != 2 or yl.ndim not in (1, 2):
        raise ValueError(f"X must have dims (stimulus, feature) and Y (stimulus[, target]); "
                         f"got {x.dims} and {yl.dims}")
    x, yl = align_stimuli(x, yl, names=["X", "Y"])
    feature_dim = next(d for d in x.dims if d != "stimulus")
    x = x.transpose("stimulus", feature_dim)
    labels = _Labels(feature_dim=str(feature_dim), labelled=True)
    if yl.ndim == 2:
        labels.target_dim = str(next(d for d in yl.dims if d != "stimulus"))
        yl = yl.transpose("stimulus", labels.target_dim)
        labels.target_ids = _coord_or_range(yl, labels.target_dim)
    stim = x["stimulus"].values
    _check_finite_at(numeric_values(x.values, "X", finite=False), "X",
                     [stim, _coord_or_range(x, feature_dim)], ("stimulus", str(feature_dim)))
    _check_finite_at(numeric_values(yl.values, "Y", finite=False), "Y",
                     [stim] + ([labels.target_ids] if yl.ndim == 2 else []),
                     ("stimulus", labels.target_dim))
    return x.values, yl.values, labels
