"""Scores of encoding models and the noise ceilings of the responses they predict.

:func:`cross_validated_scores` gives nested cross-validated Pearson r and R² per
target of a :class:`~rsa_bias.analysis.encoding.RidgeEncoder`, normalised by
:func:`noise_ceiling` when the responses carry repeats; :func:`spearman_brown` is
the reliability step-up both use.

Noise-ceiling convention
------------------------
For responses with ``R`` repeats, the repeats are split into two halves of
``m = R // 2`` (an odd one out is left out of that split), each half is averaged, and the
Pearson correlation across stimuli of the two half-means is averaged over ``n_splits``
random splits: ``r_half``. The Spearman–Brown formula with factor ``R / m`` steps it up
to the reliability ``ρ`` of the mean over all ``R`` repeats, which is
``var(signal) / (var(signal) + var(noise) / R)`` for additive noise. A model that
predicted the signal exactly would reach Pearson ``r = sqrt(ρ)`` and ``R² = ρ`` against
the repeat-averaged responses, so ``ceiling_r = sqrt(ρ)`` and ``ceiling_r2 = ρ``;
normalised scores are ``r / sqrt(ρ)`` and ``R² / ρ``. Targets with ``ρ <= 0`` have no
reliable signal: their ceilings and normalised scores are NaN.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from sklearn.model_selection import KFold

from rsa_bias.analysis._align import align_stimuli, as_labelled
from rsa_bias.analysis.encoding import (
    DEFAULT_ALPHAS,
    MIN_SAMPLES,
    RidgeEncoder,
    _check_finite_at,
    _coord_or_range,
    _labelled_inputs,
    one_alpha_warning,
)


def spearman_brown(r, factor: float = 2.0):
    """Spearman–Brown prophecy: reliability of a measure ``factor`` times as long.

    ``factor * r / (1 + (factor - 1) * r)``; ``factor=2`` steps a split-half correlation
    up to the reliability of the full (two-half) measure.
    """
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def _columnwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    b = b - b.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(a * b, 0) / np.sqrt(np.sum(a * a, 0) * np.sum(b * b, 0))


def _responses(responses, repeat_dim: str) -> xr.DataArray:
    """(stimulus, target, repeat) DataArray from a DataArray or a numpy array."""
    da = as_labelled(responses, name="responses", dims=("stimulus", "target", repeat_dim))
    if repeat_dim not in da.dims or da.ndim != 3:
        raise ValueError(f"responses have dims {da.dims}; expected (stimulus, <target dim>, "
                         f"{repeat_dim!r}) — pass repeat_dim= to name the repeat dim")
    target_dim = next(d for d in da.dims if d not in ("stimulus", repeat_dim))
    return da.transpose("stimulus", target_dim, repeat_dim)


def noise_ceiling(responses, *, repeat_dim: str = "repeat", n_splits: int = 20,
                  seed: int = 0) -> xr.Dataset:
    """Split-half reliability (Spearman–Brown corrected) and the ceilings it implies.

    Parameters
    ----------
    responses : xarray.DataArray with dims ("stimulus", target dim, ``repeat_dim``), or a
        numpy array (stimulus, target, repeat)
    n_splits : number of random half-splits of the repeats averaged (Pearson r averaged
        before the Spearman–Brown step).
    seed : seeds the random splits.

    Returns
    -------
    xarray.Dataset with dim (target dim,): ``split_half_r``, ``reliability`` (ρ of the
    mean over all repeats), ``ceiling_r = sqrt(ρ)`` and ``ceiling_r2 = ρ`` (NaN where
    ρ <= 0). See the module docstring for the convention.
    """
    da = _responses(responses, repeat_dim)
    target_dim = da.dims[1]
    values = np.asarray(da.values, dtype=np.float64)
    _check_finite_at(values, "responses",
                     [da["stimulus"].values, _coord_or_range(da, target_dim),
                      _coord_or_range(da, repeat_dim)], tuple(map(str, da.dims)))
    n_rep = values.shape[2]
    if n_rep < 2 or values.shape[0] < MIN_SAMPLES:
        raise ValueError(f"a noise ceiling needs >= 2 repeats and >= {MIN_SAMPLES} stimuli; "
                         f"got {n_rep} repeat(s) and {values.shape[0]} stimuli")
    rng = np.random.default_rng(seed)
    half = n_rep // 2
    r = np.mean([_columnwise_pearson(values[:, :, p[:half]].mean(2),
                                     values[:, :, p[half:2 * half]].mean(2))
                 for p in (rng.permutation(n_rep) for _ in range(n_splits))], axis=0)
    rel = spearman_brown(r, n_rep / half)
    ok = rel > 0
    out = xr.Dataset(
        {"split_half_r": (target_dim, r), "reliability": (target_dim, rel),
         "ceiling_r": (target_dim, np.where(ok, np.sqrt(np.where(ok, rel, 0.0)), np.nan)),
         "ceiling_r2": (target_dim, np.where(ok, rel, np.nan))},
        coords={target_dim: _coord_or_range(da, target_dim)})
    out.attrs.update(_provenance("noise_ceiling_split_half_spearman_brown",
                                 {"n_splits": n_splits, "n_repeats": n_rep}, seed))
    return out


def _provenance(method: str, config: dict, seed: int | None) -> dict[str, str]:
    from rsa_bias.provenance import provenance_attrs

    return provenance_attrs(config=json.loads(json.dumps(config, default=str)), seed=seed,
                            method=method)


def cross_validated_scores(X, Y, *, cv: int = 5, alphas=DEFAULT_ALPHAS, inner_cv=None,
                           alpha_per_target: bool = True, fit_intercept: bool = True,
                           solver: str = "auto", device: str = "auto",
                           search_dtype: str = "float32", repeat_dim: str = "repeat",
                           n_splits: int = 20, seed: int = 0) -> xr.Dataset:
    """Nested cross-validated Pearson r and R² of a :class:`RidgeEncoder` per target.

    The stimuli are split by a shuffled ``KFold(cv)`` (seeded); on each training part a
    :class:`RidgeEncoder` chooses its alphas by ``inner_cv`` (None: leave-one-out) and
    predicts the held-out part. Scores compare the pooled out-of-fold predictions with
    the responses.

    Parameters
    ----------
    X : xarray.DataArray ("stimulus", feature dim) or array (n_stimuli, n_features)
    Y : xarray.DataArray ("stimulus", target dim[, ``repeat_dim``]) or array
        (n_stimuli, n_targets[, n_repeats]). With repeats, the encoder is fitted to the
        mean over repeats and the scores are also normalised by :func:`noise_ceiling`.
    cv : number of outer folds.
    seed : seeds the outer split and the noise-ceiling half-splits.

    Returns
    -------
    xarray.Dataset with dim (target dim,): ``pearson_r``, ``r2``, ``mse``, ``alpha``
    (fold, target dim); with repeats also ``reliability``, ``ceiling_r``, ``ceiling_r2``,
    ``pearson_r_normalised`` (r / sqrt(ρ)) and ``r2_normalised`` (R² / ρ).
    """
    x = as_labelled(X, name="X", dims=("stimulus", "feature"))
    y = as_labelled(Y, name="Y", dims=("stimulus", "target", repeat_dim)[: np.ndim(Y)])
    x, y = align_stimuli(x, y, names=["X", "Y"])
    ceiling = noise_ceiling(y, repeat_dim=repeat_dim, n_splits=n_splits, seed=seed) \
        if repeat_dim in y.dims else None
    y_mean = y.mean(repeat_dim) if ceiling is not None else y
    if y_mean.ndim != 2:
        raise ValueError(f"Y has dims {y.dims}; expected (stimulus, <target dim>"
                         f"[, {repeat_dim!r}])")
    target_dim = str(next(d for d in y_mean.dims if d != "stimulus"))
    y_mean = y_mean.transpose("stimulus", target_dim)
    enc = RidgeEncoder(alphas, cv=inner_cv, alpha_per_target=alpha_per_target,
                       fit_intercept=fit_intercept, solver=solver, device=device,
                       search_dtype=search_dtype)
    xv, yv, _ = _labelled_inputs(x, y_mean)  # NaN / shape checks naming stimuli, before fitting
    xv = np.asarray(xv, float)
    pred = np.empty(yv.shape)
    chosen = []
    with one_alpha_warning("cross_validated_scores"):
        for train, test in KFold(cv, shuffle=True, random_state=seed).split(xv):
            enc.fit(xv[train], yv[train])
            pred[test] = enc.predict(xv[test])
            chosen.append(np.broadcast_to(enc.alpha_, yv.shape[1]))
    resid = yv - pred
    syy = np.sum((yv - yv.mean(0)) ** 2, axis=0)
    out = xr.Dataset(
        {"pearson_r": (target_dim, _columnwise_pearson(pred, yv)),
         "r2": (target_dim, 1.0 - np.sum(resid**2, 0) / syy),
         "mse": (target_dim, np.mean(resid**2, 0)),
         "alpha": (("fold", target_dim), np.array(chosen))},
        coords={target_dim: _coord_or_range(y_mean, target_dim), "fold": np.arange(cv)})
    if ceiling is not None:
        out = out.assign(reliability=ceiling["reliability"], ceiling_r=ceiling["ceiling_r"],
                         ceiling_r2=ceiling["ceiling_r2"])
        out["pearson_r_normalised"] = out["pearson_r"] / out["ceiling_r"]
        out["r2_normalised"] = out["r2"] / out["ceiling_r2"]
    config = {"cv": cv, "inner_cv": inner_cv, "alphas": list(map(float, np.ravel(alphas))),
              "alpha_per_target": alpha_per_target, "fit_intercept": fit_intercept,
              "solver": solver, "search_dtype": search_dtype, "n_splits": n_splits}
    out.attrs.update(_provenance("ridge_encoding_nested_cv", config, seed))
    return out
