"""Nested cross-validated scores of encoding models, per target (voxel, neuron, unit).

:func:`cross_validated_scores` gives out-of-fold Pearson r and R² per target of an
estimator (a :class:`~rsa_bias.analysis.encoding.ridge.RidgeEncoder` by default), normalised by
:func:`~rsa_bias.analysis.encoding.ceiling.response_noise_ceiling` when the responses
carry repeats.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from sklearn.base import clone
from sklearn.model_selection import KFold

from rsa_bias._api import legacy_call
from rsa_bias._values import check_count, check_seed
from rsa_bias.analysis._inputs import align_stimuli, as_labelled, canonical_order
from rsa_bias.analysis.encoding._checks import _coord_or_range, _labelled_inputs
from rsa_bias.analysis.encoding.alpha_grid import one_alpha_warning
from rsa_bias.analysis.encoding.ceiling import _columnwise_pearson, response_noise_ceiling
from rsa_bias.analysis.encoding.ridge import RidgeEncoder
from rsa_bias.provenance import result_attrs

_RIDGE_OPTIONS = ("alphas", "inner_cv", "alpha_per_target", "fit_intercept", "solver", "device",
                  "search_dtype")


def ridge_from_options(**options) -> RidgeEncoder:
    """The :class:`RidgeEncoder` that the earlier keyword options of the scoring functions
    described: what ``estimator=`` takes today.

    Parameters
    ----------
    **options
        The earlier keywords ``alphas``, ``inner_cv`` (the encoder's ``cv``),
        ``alpha_per_target``, ``fit_intercept``, ``solver``, ``device`` and
        ``search_dtype``; passed on to :class:`RidgeEncoder`.

    Returns
    -------
    RidgeEncoder
        The (unfitted) estimator.

    Examples
    --------
    >>> ridge_from_options(alphas=[1.0, 10.0], inner_cv=3)
    RidgeEncoder(alphas=[1.0, 10.0], cv=3)
    """
    if "inner_cv" in options:
        options["cv"] = options.pop("inner_cv")
    return RidgeEncoder(**options)


def outer_splitter(cv, seed: int | None):
    """The outer cross-validation splitter that a ``cv=`` argument describes.

    An int ``cv`` is a shuffled ``KFold(cv)`` seeded by ``seed``; a splitter (anything
    with ``split``) is used as it is.

    Parameters
    ----------
    cv : int or scikit-learn splitter
        A number of folds (at least 2) or a splitter.
    seed : int or None
        Seeds the shuffle of an int ``cv`` (``KFold``'s ``random_state``); unused for a
        splitter.

    Returns
    -------
    scikit-learn splitter
        ``KFold(cv, shuffle=True, random_state=seed)`` for an int, else ``cv`` itself.

    Examples
    --------
    >>> outer_splitter(3, 0)
    KFold(n_splits=3, random_state=0, shuffle=True)
    """
    if isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv={cv}: cross-validation needs at least 2 folds")
        return KFold(int(cv), shuffle=True, random_state=seed)
    if isinstance(cv, str) or not hasattr(cv, "split"):
        raise ValueError(f"cv must be a number of folds or a scikit-learn splitter (with a "
                         f".split method); got {cv!r}")
    return cv


def out_of_fold_predictions(x: np.ndarray, y: np.ndarray, *, estimator=None, cv=5,
                            seed: int | None = 0, what: str = "cross-validation",
                            ) -> tuple[np.ndarray, list]:
    """Pooled out-of-fold predictions of ``y`` from ``x`` (plain arrays, rows aligned).

    Parameters
    ----------
    x : numpy.ndarray (n_stimuli, n_features)
        The predictors.
    y : numpy.ndarray (n_stimuli, n_targets)
        The responses.
    estimator : scikit-learn regressor, default ``RidgeEncoder()``
        Cloned and fitted on each training part.
    cv : int or scikit-learn splitter, default 5
        See :func:`outer_splitter`; its test folds must cover every stimulus.
    seed : int or None, default 0
        Seeds an int ``cv``'s shuffle.
    what : str, default "cross-validation"
        Names the computation in the folded :class:`AlphaGridWarning`.

    Returns
    -------
    tuple of (numpy.ndarray, list)
        Predictions ``(n_stimuli, n_targets)`` and the fitted estimator of each fold.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(30, 4))
    >>> y = x[:, :2] + rng.normal(size=(30, 2))
    >>> pred, fitted = out_of_fold_predictions(x, y, cv=3)
    >>> pred.shape, len(fitted)
    ((30, 2), 3)
    """
    base = RidgeEncoder() if estimator is None else estimator
    pred = np.full(y.shape, np.nan)
    fitted = []
    with one_alpha_warning(what):
        for train, test in outer_splitter(cv, seed).split(x):
            est = clone(base).fit(x[train], y[train])
            pred[test] = np.asarray(est.predict(x[test])).reshape(len(test), *y.shape[1:])
            fitted.append(est)
    if np.isnan(pred).any():
        raise ValueError("the splitter left some stimuli out of every test fold; use a "
                         "splitter whose test folds cover all stimuli (e.g. KFold)")
    return pred, fitted


def _fold_alphas(fitted: list, n_targets: int) -> np.ndarray | None:
    """``(fold, target)`` alphas of fitted estimators that have ``alpha_`` (else None)."""
    if not all(hasattr(f, "alpha_") for f in fitted):
        return None
    return np.array([np.broadcast_to(f.alpha_, n_targets) for f in fitted], dtype=float)


def _estimator_params(estimator) -> dict:
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    return {"estimator": type(estimator).__name__, "estimator_params": params}


@legacy_call(renamed={"X": "x", "Y": "y"},
             folded={"estimator": (_RIDGE_OPTIONS, ridge_from_options)})
def cross_validated_scores(x, y, *, estimator=None, cv=5, seed: int = 0,
                           repeat_dim: str = "repeat", n_splits: int = 20) -> xr.Dataset:
    """Nested cross-validated Pearson r and R² of an encoding model, per target.

    The stimuli are split by ``cv`` (default: a shuffled ``KFold(5)`` seeded by ``seed``),
    in ascending stimulus-id order, so the same data and seed give the same scores however
    their rows are ordered;
    on each training part a clone of ``estimator`` is fitted — the default
    :class:`RidgeEncoder` chooses its alphas by its own inner cross-validation (efficient
    leave-one-out) — and predicts the held-out part. Scores compare the pooled out-of-fold
    predictions with the responses.

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", <feature dim>), or numpy.ndarray
        The model representation (predictors); numpy ``(n_stimuli, n_features)``.
    y : xarray.DataArray with dims ("stimulus", <target dim>[, ``repeat_dim``])
        The responses; numpy ``(n_stimuli, n_targets[, n_repeats])``. Labelled inputs
        are aligned on stimulus ids. With repeats, the estimator is fitted to the mean over
        repeats and the scores are also normalised by :func:`response_noise_ceiling`.
    estimator : scikit-learn regressor, default ``RidgeEncoder()``
        Any estimator with ``fit``/``predict`` for multi-output ``y``; a fitted ``alpha_``
        is recorded per fold.
    cv : int or scikit-learn splitter, default 5
        The outer split: a number of shuffled, seeded folds, or a splitter (``GroupKFold``
        for runs, ...) whose test folds cover every stimulus. The default differs from
        :class:`RidgeEncoder`'s ``cv=None`` on purpose: that one is the inner choice of alpha
        (scikit-learn ``RidgeCV``'s convention), this one the outer split of
        ``cross_val_score``.
    seed : int, default 0
        Seeds an int ``cv``'s shuffle and the noise-ceiling half-splits.
    repeat_dim : str, default "repeat"
        Name of the repeat dim of ``y``.
    n_splits : int, default 20
        Random half-splits of the repeats averaged by the noise ceiling.

    Returns
    -------
    xarray.Dataset with dim (<target dim>,)
        ``pearson_r``, ``r2``, ``mse``; ``alpha(fold, target dim)`` when the estimator has
        ``alpha_``; with repeats also ``reliability``, ``ceiling_r``, ``ceiling_r2``,
        ``pearson_r_normalised`` (r / sqrt(ρ)) and ``r2_normalised`` (R² / ρ). Flat attrs
        record ``method``, ``cv``, ``seed``, ``n_splits``, ``n_folds`` and the estimator
        and its parameters.

    See Also
    --------
    rsa_bias.analysis.encoding.response_noise_ceiling : the ceiling of the responses.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 5))
    >>> y = x @ rng.normal(size=(5, 3)) + 0.1 * rng.normal(size=(60, 3))
    >>> bool(cross_validated_scores(x, y).r2.min() > 0.9)
    True
    """
    check_seed(seed)
    check_count(n_splits, "n_splits")
    xl = as_labelled(x, name="x", dims=("stimulus", "feature"))
    yl = as_labelled(y, name="y", dims=("stimulus", "target", repeat_dim)[: np.ndim(y)])
    xl, yl = align_stimuli(canonical_order(xl), yl, names=["x", "y"])  # folds follow ids
    ceiling = response_noise_ceiling(yl, repeat_dim=repeat_dim, n_splits=n_splits, seed=seed) \
        if repeat_dim in yl.dims else None
    y_mean = yl.mean(repeat_dim) if ceiling is not None else yl
    if y_mean.ndim != 2:
        raise ValueError(f"y has dims {yl.dims}; expected (stimulus, <target dim>"
                         f"[, {repeat_dim!r}])")
    target_dim = str(next(d for d in y_mean.dims if d != "stimulus"))
    y_mean = y_mean.transpose("stimulus", target_dim)
    xv, yv, _ = _labelled_inputs(xl, y_mean)  # NaN / shape checks naming stimuli, first
    estimator = RidgeEncoder() if estimator is None else estimator
    pred, fitted = out_of_fold_predictions(np.asarray(xv, float), yv, estimator=estimator,
                                           cv=cv, seed=seed, what="cross_validated_scores")
    resid = yv - pred
    syy = np.sum((yv - yv.mean(0)) ** 2, axis=0)
    out = xr.Dataset(
        {"pearson_r": (target_dim, _columnwise_pearson(pred, yv)),
         "r2": (target_dim, 1.0 - np.sum(resid**2, 0) / syy),
         "mse": (target_dim, np.mean(resid**2, 0))},
        coords={target_dim: _coord_or_range(y_mean, target_dim)})
    alphas = _fold_alphas(fitted, yv.shape[1])
    if alphas is not None:
        out["alpha"] = (("fold", target_dim), alphas)
        out = out.assign_coords(fold=np.arange(len(fitted)))
    if ceiling is not None:
        out = out.assign(reliability=ceiling["reliability"], ceiling_r=ceiling["ceiling_r"],
                         ceiling_r2=ceiling["ceiling_r2"])
        out["pearson_r_normalised"] = out["pearson_r"] / out["ceiling_r"]
        out["r2_normalised"] = out["r2"] / out["ceiling_r2"]
    kind = "ridge_encoding" if isinstance(estimator, RidgeEncoder) else "encoding"
    out.attrs.update(result_attrs("cross_validated_scores", method=f"{kind}_nested_cv",
                                  cv=cv, seed=seed,
                                  n_splits=n_splits, n_folds=len(fitted),
                                  **_estimator_params(estimator)))
    return out
