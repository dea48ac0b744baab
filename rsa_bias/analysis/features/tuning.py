"""PCA of a layer and single-unit tuning to the task features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._values import check_count, check_number
from rsa_bias.analysis.features._labels import (
    feature_names_of,
    labelled_activation,
    map_over_extra_dims,
    split_mask,
)
from rsa_bias.provenance import result_attrs


def _abs_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Pearson r| between the columns of ``a`` (n, p) and ``b`` (n, q); 0 where constant."""
    const_a = np.ptp(a, axis=0) == 0
    const_b = np.ptp(b, axis=0) == 0
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na = np.sqrt(np.sum(a**2, axis=0))
    nb = np.sqrt(np.sum(b**2, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs((a.T @ b) / np.outer(na, nb))
    r[const_a, :] = 0.0
    r[:, const_b] = 0.0
    return np.nan_to_num(r, nan=0.0)


def _features(activation: xr.DataArray, names: list[str], mask: np.ndarray) -> np.ndarray:
    return np.stack([activation[f"feature_{n}"].values[mask] for n in names], 1).astype(float)


def _split_features(x: xr.DataArray, stimuli: xr.Dataset | None,
                    features: Sequence[str] | None, split: str | None,
                    ) -> tuple[xr.DataArray, list[str], np.ndarray, np.ndarray]:
    """``x`` with the stimulus coords attached, the feature names, the ``split`` mask and the
    feature values of the split's stimuli (stimulus, feature)."""
    activation = labelled_activation(x, stimuli)
    if "unit" not in activation.dims:
        raise ValueError(f"x has dims {activation.dims}; a 'unit' dim is required")
    names = feature_names_of(activation, features)
    mask = split_mask(activation, split)
    if mask.sum() < 2:
        raise ValueError(f"x has {int(mask.sum())} stimuli; at least 2 are needed")
    return activation, names, mask, _features(activation, names, mask)


@legacy_call(positional=("features",), renamed={"activation": "x"})
def pca_summary(x: xr.DataArray, *, stimuli: xr.Dataset | None = None,
                features: Sequence[str] | None = None, split: str | None = "test",
                n_pcs: int = 8) -> xr.Dataset:
    """Variance fraction of the top principal components and their feature alignment.

    The activations of the ``split`` stimuli are centred and decomposed by SVD; each leading
    PC's share of the total variance is reported with the |Pearson r| between its scores and
    each feature.

    Parameters
    ----------
    x, stimuli, features
        As in :func:`~rsa_bias.analysis.features.feature_variance_explained` (the ``split``
        coord is needed only when ``split`` is not ``None``); the features are correlated with
        the PC scores.
    split : str or None, default "test"
        The stimuli to use: those whose ``split`` coord is this value; ``None`` uses all.
    n_pcs : int, default 8
        Number of leading PCs reported, at most: the ``pc`` dim holds
        ``min(n_pcs, n_stimuli - 1, n_units)`` entries (``n_stimuli`` of the split), the
        largest rank the centred activations can have, so a larger ``n_pcs`` (one that does
        not know the layer's width) returns only the PCs there are. PCs beyond the numerical
        rank of a slice (duplicate stimuli, a dead layer) are NaN in both variables, never
        ~0 variance with a correlation of round-off.

    Returns
    -------
    xarray.Dataset
        ``variance_fraction(pc, ...)``: share of the total variance on each PC;
        ``feature_corr(pc, feature, ...)``: |Pearson r| between PC scores and features. The
        ``pc`` coord counts from 1; extra dims of ``x`` are kept. All NaN for a constant
        layer. Results of layers of different widths concatenated over a ``layer`` dim (as
        the complexity-bias experiment does, an outer join) are NaN for the PCs a narrower
        layer does not have.

    Raises
    ------
    ValueError
        ``n_pcs`` is not a positive integer, fewer than 2 stimuli, or as
        :func:`~rsa_bias.analysis.features.feature_variance_explained`.
    """
    n_pcs = check_count(n_pcs, "n_pcs")
    activation, names, mask, fvals = _split_features(x, stimuli, features, split)

    k = min(n_pcs, int(mask.sum()) - 1, activation.sizes["unit"])

    def one(phi: np.ndarray) -> dict[str, np.ndarray]:
        x = phi[mask]
        x = x - x.mean(axis=0)
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        rank = int(np.sum(s > s[0] * max(x.shape) * np.finfo(float).eps)) if s[0] > 0 else 0
        r = min(rank, k)
        frac = np.full(k, np.nan)
        corr = np.full((k, len(names)), np.nan)
        if r:
            frac[:r] = s[:r] ** 2 / np.sum(s**2)
            corr[:r] = _abs_corr(u[:, :r] * s[:r], fvals)
        return {"variance_fraction": frac, "feature_corr": corr}

    ds = map_over_extra_dims(activation, one,
                             {"variance_fraction": ("pc",), "feature_corr": ("pc", "feature")},
                             {"pc": np.arange(1, k + 1), "feature": names})
    ds.attrs.update(result_attrs("pca_summary", features=names, split=split, n_pcs=n_pcs))
    return ds


@legacy_call(positional=("features",), renamed={"activation": "x"})
def unit_tuning(x: xr.DataArray, *, stimuli: xr.Dataset | None = None,
                features: Sequence[str] | None = None, split: str | None = "test",
                threshold: float = 0.5) -> xr.Dataset:
    """Per-unit R² for each feature and the number of units tuned to it.

    Parameters
    ----------
    x, stimuli, features, split
        As in :func:`pca_summary`.
    threshold : float, default 0.5
        A unit is selective for a feature when its ``unit_r2`` exceeds this (strictly); in
        (0, 1), as ``analysis.unit_threshold`` of the experiment config.

    Returns
    -------
    xarray.Dataset
        ``unit_r2(unit, feature, ...)``: squared Pearson r of each unit with each
        feature (the R² of a one-feature regression; 0 for silent units);
        ``n_selective(feature, ...)``: units with ``unit_r2 > threshold``;
        ``n_silent(...)``: units with zero variance over the stimuli. The ``unit`` coord is
        that of ``x`` (``0..n_units-1`` when ``x`` has none).

    Raises
    ------
    ValueError
        ``threshold`` is not a number in (0, 1), or as :func:`pca_summary`.
    """
    threshold = check_number(threshold, "threshold", low=0, high=1, low_open=True,
                             high_open=True)
    activation, names, mask, fvals = _split_features(x, stimuli, features, split)

    def one(phi: np.ndarray) -> dict[str, np.ndarray]:
        x = phi[mask]
        r2 = _abs_corr(x, fvals) ** 2
        return {"unit_r2": r2, "n_selective": (r2 > threshold).sum(axis=0),
                "n_silent": np.sum(np.ptp(x, axis=0) == 0)}

    ds = map_over_extra_dims(activation, one,
                             {"unit_r2": ("unit", "feature"), "n_selective": ("feature",),
                              "n_silent": ()},
                             {"unit": activation["unit"].values if "unit" in activation.coords
                              else np.arange(activation.sizes["unit"]), "feature": names})
    ds["n_selective"] = ds["n_selective"].astype(np.int64)
    ds["n_silent"] = ds["n_silent"].astype(np.int64)
    ds.attrs.update(result_attrs("unit_tuning", features=names, split=split,
                                 threshold=threshold))
    return ds
