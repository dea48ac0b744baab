"""Nested cross-validated scores of encoding models, per target (voxel, neuron, unit).

:func:`cross_validated_scores` gives out-of-fold Pearson r and R² per target of an
estimator (a :class:`~rsa_bias.analysis.encoding.ridge.RidgeEncoder` by default), normalised by
:func:`~rsa_bias.analysis.encoding.ceiling.response_noise_ceiling` when the responses
carry repeats.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from sklearn.model_selection import KFold

from rsa_bias.analysis._inputs import align_stimuli, as_labelled
from rsa_bias.analysis.encoding.ceiling import _columnwise_pearson, response_noise_ceiling
from rsa_bias.analysis.encoding.ridge import (
    DEFAULT_ALPHAS,
    RidgeEncoder,
    _coord_or_range,
    _labelled_inputs,
    one_alpha_warning,
)
from rsa_bias.provenance import result_attrs


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
        mean over repeats and the scores are also normalised by :func:`response_noise_ceiling`.
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
    ceiling = response_noise_ceiling(y, repeat_dim=repeat_dim, n_splits=n_splits, seed=seed) \
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
    out.attrs.update(result_attrs("cross_validated_scores", method="ridge_encoding_nested_cv",
                                  seed=seed, **config))
    return out
