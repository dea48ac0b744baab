"""Cross-validated ridge encoding models of voxels / neurons / units.

:class:`RidgeEncoder` fits one ridge regression per target (voxel, neuron, unit), each
with its own alpha chosen by cross-validation, scikit-learn style. Every alpha and
every target share a single decomposition of the design per training set:

* ``cv=None`` — efficient leave-one-out: the closed-form LOO residuals
  ``(y − H_α y)_i / (1 − (H_α)_ii)`` from one SVD (or one eigendecomposition of the
  Gram matrix), as scikit-learn's ``RidgeCV`` (``_RidgeGCV``) computes them;
* ``cv=K`` or a splitter — one decomposition per training fold, predictions of every
  alpha on the held-out fold as one matrix product each.

The alpha minimising the held-out mean squared error is chosen (the first on ties,
as in scikit-learn). The dual (kernel) form is used when features outnumber samples.

Nested cross-validated scores and noise ceilings of the responses are in
:mod:`rsa_bias.analysis.encoding.scores`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import scipy.sparse
import xarray as xr
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.validation import check_is_fitted, validate_data

from rsa_bias._values import check_flag, numeric_values
from rsa_bias.analysis._inputs import as_labelled
from rsa_bias.analysis.encoding import _ridge
from rsa_bias.analysis.encoding._checks import (
    _check_alphas,
    _check_finite_at,
    _check_n_samples,
    _labelled_inputs,
    _Labels,
)
from rsa_bias.analysis.encoding.alpha_grid import _warn_lower_edge
from rsa_bias.provenance import result_attrs

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 6, 10))
SOLVERS = ("auto", "primal", "dual")
SEARCH_DTYPES = ("float32", "float64")
_CHUNK_ELEMENTS = 2**24  # targets are processed in chunks of about this many (t x n) values


def _gpu_may_exist() -> bool:
    """Cheap check before importing torch: torch already loaded, or an NVIDIA driver present."""
    return "torch" in sys.modules or os.path.exists("/proc/driver/nvidia/version")


def _make_backend(device: str):
    """Backend registry: numpy for ``"cpu"``; torch for CUDA (imported only then)."""
    if not isinstance(device, str):
        raise ValueError("device must be a string; valid: ['cpu', 'auto', 'cuda[:i]']")
    if device == "cpu":
        return _ridge.NumpyBackend()
    if device == "auto":
        if importlib.util.find_spec("torch") is None or not _gpu_may_exist():
            return _ridge.NumpyBackend()
        import torch

        return _ridge.TorchBackend("cuda") if torch.cuda.is_available() else \
            _ridge.NumpyBackend()
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but torch sees no CUDA GPU here; use "
                             "device='auto' (GPU when present) or 'cpu'")
        return _ridge.TorchBackend(device)
    raise ValueError(f"unknown device {device!r}; valid: ['cpu', 'auto', 'cuda[:i]']")


def _check_choice(value, valid: tuple[str, ...], what: str) -> str:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {list(valid)}")
    return value


def _scores(stats: np.ndarray, syy: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """MSE, R² and Pearson r of held-out predictions from their sums (see _ridge.search)."""
    see, sp, spp, spy = stats
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"mse": see / n, "r2": 1.0 - see / syy,
                "pearson_r": spy / np.sqrt((spp - sp**2 / n) * syy)}


def _ridge_cv(xp, x: np.ndarray, y: np.ndarray, alphas: np.ndarray, splits, *,
              intercept: bool, solver: str, per_target: bool, dtype: str) -> dict:
    """Alpha search and final fit on plain arrays ``x`` (n, p), ``y`` (n, t)."""
    n = x.shape[0]
    x_mean = x.mean(0) if intercept else np.zeros(x.shape[1])
    y_mean = y.mean(0) if intercept else np.zeros(y.shape[1])
    x_dev = xp.asarray(x - x_mean, xp.float64)
    yt_dev = xp.asarray((y - y_mean).T, xp.float64)
    folds = _ridge.make_folds(xp, x_dev, splits, intercept=intercept, solver=solver)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    kw = {"intercept": intercept, "chunk": chunk}
    stats, bound = _ridge.search(xp, folds, yt_dev, alphas, dtype=getattr(xp, dtype), **kw)
    best, unsure = _ridge.select(stats[0], bound, per_target)
    if unsure.any():  # re-check near-ties in float64
        sub = np.flatnonzero(unsure)
        stats[:, :, sub] = _ridge.search(xp, folds, xp.rows(yt_dev, sub), alphas,
                                         dtype=xp.float64, **kw)[0]
        bound[:, sub] = 0.0
        best, _ = _ridge.select(stats[0], bound, per_target)
    full = folds[0].dec if splits is None else \
        _ridge.decompose(xp, x_dev, _ridge.resolve_solver(solver, *x.shape))
    coef = xp.to_numpy(_ridge.ridge_coef(xp, full, yt_dev, alphas[best]))
    cols = np.arange(y.shape[1])
    syy = np.sum((y - y.mean(0)) ** 2, axis=0)
    return {"alpha": alphas[best], "coef": coef, "intercept": y_mean - coef @ x_mean,
            "cv_mse": stats[0] / n, "n_rechecked": int(unsure.sum()),
            "scores": _scores(stats[:, best, cols], syy, n)}


class RidgeEncoder(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression per target with its own cross-validated alpha.

    Parameters
    ----------
    alphas : sequence of float, default ``np.logspace(-2, 6, 10)``
        Candidate regularisation strengths (positive).
    cv : None, int or scikit-learn splitter, default None
        ``None``: efficient leave-one-out from one decomposition shared by all alphas and
        targets (identical to ``sklearn.linear_model.RidgeCV``). An int ``K``: unshuffled
        ``KFold(K)``, one decomposition per training fold. The default differs from
        :func:`~rsa_bias.analysis.encoding.cross_validated_scores`'s ``cv=5`` on purpose:
        here ``cv`` is the inner choice of alpha (``RidgeCV``'s convention), there the outer
        split.
    alpha_per_target : bool, default True
        Choose an alpha per target (else one alpha minimising the total error).
    fit_intercept : bool, default True
        Centre X and Y (on each training fold for K-fold) and fit an intercept.
    solver : {"auto", "primal", "dual"}, default "auto"
        ``"primal"``: the SVD of X (n, p), or the eigendecomposition of X'X (p, p) when X
        is tall and well conditioned; ``"dual"``: the eigendecomposition of the Gram
        matrix X X' (n, n) — the kernel form; ``"auto"``: dual when p > n.
    device : {"auto", "cpu"} or "cuda[:i]", default "auto"
        ``"auto"`` uses torch on the GPU when torch is installed and CUDA is present
        (torch is imported at fit time only if it is already loaded or an NVIDIA driver
        is present, never with the package), numpy/scipy otherwise; ``"cpu"`` always
        runs numpy/scipy.
    search_dtype : {"float32", "float64"}, default "float32"
        Precision of the per-alpha products of the search. With ``"float32"`` each
        held-out squared error comes with a rounding-error bound, and every target whose
        best alpha is not separated from a rival by those bounds is re-scored in float64,
        so the chosen alphas are those of a float64 search. Coefficients and the
        decompositions are always float64.

    Attributes
    ----------
    alpha_ : ndarray (n_targets,) or float
        Chosen alphas (a float for a 1-D ``y`` or ``alpha_per_target=False``).
    coef_ : ndarray (n_targets, n_features) or (n_features,)
        Ridge coefficients at the chosen alphas ((n_features,) for a 1-D ``y``).
    intercept_ : ndarray (n_targets,) or float
        Intercepts (0 without ``fit_intercept``; a float for a 1-D ``y``).
    cv_mse_ : ndarray (n_alphas, n_targets) or (n_alphas,)
        Held-out (LOO or K-fold) mean squared error of every alpha (to ~1e-6 relative
        with ``search_dtype="float32"``).
    n_rechecked_ : int
        Number of targets whose alpha choice was re-scored in float64.
    cv_scores_ : xarray.Dataset with dim (target,) — named like Y's second dim
        ``alpha``, ``mse``, ``r2`` and ``pearson_r`` of the held-out predictions at the
        chosen alpha (coord ``candidate_alpha``: the grid). Slightly optimistic, as the
        alpha was chosen on the same predictions;
        :func:`~rsa_bias.analysis.encoding.scores.cross_validated_scores` gives nested
        estimates.
    solver_ : str
        ``"primal"`` or ``"dual"``, as used on the full data.
    device_ : str
        The device that ran the fit: ``"cpu"`` (numpy/scipy) or ``"cuda"`` (torch).
    n_features_in_ : int
        Number of features seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 4))
    >>> Y = np.tanh(X[:, :3]) + 0.1 * rng.normal(size=(50, 3))
    >>> model = RidgeEncoder().fit(X, Y)
    >>> model.alpha_.shape, model.coef_.shape
    ((3,), (3, 4))
    """

    def __init__(self, alphas=DEFAULT_ALPHAS, *, cv=None, alpha_per_target: bool = True,
                 fit_intercept: bool = True, solver: str = "auto", device: str = "auto",
                 search_dtype: str = "float32"):
        self.alphas = alphas
        self.cv = cv
        self.alpha_per_target = alpha_per_target
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.device = device
        self.search_dtype = search_dtype

    def _validated(self, X, y, reset: bool = True) -> tuple[np.ndarray, np.ndarray, _Labels]:
        labels = _Labels()
        if isinstance(X, xr.DataArray) or isinstance(y, xr.DataArray):
            X, y, labels = _labelled_inputs(X, y)  # complex / non-numeric refused there
        else:
            for value, name in ((X, "X"), (y, "Y")):  # complex / non-numeric, named
                if value is not None and not scipy.sparse.issparse(value):
                    numeric_values(value, name, finite=False, empty_ok=True)
            y_values = np.asarray(y)  # checked before validate_data, whose error says not where
            if y is not None and y_values.dtype.kind == "f":
                _check_finite_at(y_values, "Y", dims=("sample", "target"))
        x, y = validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                             dtype=np.float64, ensure_all_finite=False, ensure_min_samples=1)
        _check_finite_at(x, "X", dims=("sample", "feature"))
        _check_n_samples(x.shape[0])
        return x, y, labels

    def fit(self, X, y) -> RidgeEncoder:
        """Choose an alpha per target and fit the ridge coefficients.

        Parameters
        ----------
        X : numpy.ndarray (n_samples, n_features) or xarray.DataArray
            A DataArray has dims ("stimulus", <feature dim>). At least 3 samples, no
            NaN/inf.
        y : numpy.ndarray (n_samples[, n_targets]) or xarray.DataArray
            A DataArray has dims ("stimulus"[, <target dim>]); labelled inputs are
            aligned on stimulus ids. No NaN/inf.

        Returns
        -------
        RidgeEncoder
            The fitted estimator (``self``). Warns with :class:`AlphaGridWarning` when
            targets choose the smallest alpha of the grid.
        """
        alphas = _check_alphas(self.alphas)
        check_flag(self.alpha_per_target, "alpha_per_target")
        check_flag(self.fit_intercept, "fit_intercept")
        _check_choice(self.solver, SOLVERS, "solver")
        _check_choice(self.search_dtype, SEARCH_DTYPES, "search_dtype")
        xp = _make_backend(self.device)
        x, y, labels = self._validated(X, y)
        splits = None if self.cv is None else list(check_cv(self.cv).split(x, y))
        one_d = y.ndim == 1
        res = _ridge_cv(xp, x, y[:, None] if one_d else y, alphas, splits,
                        intercept=bool(self.fit_intercept), solver=self.solver,
                        per_target=bool(self.alpha_per_target), dtype=self.search_dtype)
        self._set_fitted(res, labels, one_d, alphas)
        _warn_lower_edge(np.atleast_1d(res["alpha"]), alphas)
        self.solver_ = _ridge.resolve_solver(self.solver, *x.shape)
        self.device_ = xp.name
        return self

    def _set_fitted(self, res: dict, labels: _Labels, one_d: bool, alphas: np.ndarray) -> None:
        scalar_alpha = one_d or not self.alpha_per_target
        self.alpha_ = float(res["alpha"][0]) if scalar_alpha else res["alpha"]
        self.coef_ = res["coef"][0] if one_d else res["coef"]
        self.intercept_ = float(res["intercept"][0]) if one_d else res["intercept"]
        self.cv_mse_ = res["cv_mse"][:, 0] if one_d else res["cv_mse"]
        self.n_rechecked_ = res["n_rechecked"]
        n_t = res["coef"].shape[0]
        ids = labels.target_ids if labels.target_ids is not None else np.arange(n_t)
        dim = labels.target_dim
        self.cv_scores_ = xr.Dataset(
            {"alpha": (dim, res["alpha"]), **{k: (dim, v) for k, v in res["scores"].items()}},
            coords={dim: ids, "candidate_alpha": alphas},
            attrs=result_attrs("RidgeEncoder.fit",
                               method="ridge_loo" if self.cv is None else "ridge_kfold",
                               **{k: v for k, v in self.get_params().items() if k != "cv"},
                               cv=repr(self.cv)))
        self._labels = labels
        self._one_d = one_d

    def predict(self, X):
        """Predict the targets from new samples.

        Parameters
        ----------
        X : numpy.ndarray (n_samples, n_features) or xarray.DataArray
            A DataArray has dims ("stimulus", <feature dim>), with the features of
            ``fit``.

        Returns
        -------
        numpy.ndarray (n_samples[, n_targets]) or xarray.DataArray
            Predictions; a DataArray labelled by stimulus and target (the target dim and
            ids of ``fit``'s ``y``) when ``X`` is a DataArray.
        """
        check_is_fitted(self)
        stim = None
        if isinstance(X, xr.DataArray):
            xl = as_labelled(X, name="X", dims=("stimulus", "feature"))
            other = [d for d in xl.dims if d != "stimulus"]
            xl = xl.transpose("stimulus", *other)
            stim, X = xl["stimulus"].values, xl.values
        if not scipy.sparse.issparse(X):
            numeric_values(X, "X", finite=False, empty_ok=True)
        x = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        _check_finite_at(x, "X", dims=("sample", "feature"))
        pred = x @ self.coef_.T + self.intercept_
        if stim is None:
            return pred
        if self._one_d:
            return xr.DataArray(pred, dims=("stimulus",), coords={"stimulus": stim})
        lab = self._labels
        ids = lab.target_ids if lab.target_ids is not None else np.arange(pred.shape[1])
        return xr.DataArray(pred, dims=("stimulus", lab.target_dim),
                            coords={"stimulus": stim, lab.target_dim: ids})

    def score(self, X, y, sample_weight=None) -> float:
        """R² of the predictions of ``X`` against ``y`` (uniform average over targets).

        Unlike scikit-learn's inherited ``score``, which compares rows by position,
        labelled inputs are aligned on stimulus ids exactly as in :meth:`fit` (a numpy
        side has ids ``0..n-1``); mismatched ids are refused.

        Parameters
        ----------
        X : numpy.ndarray (n_samples, n_features) or xarray.DataArray
            Samples to predict, as in :meth:`predict`.
        y : numpy.ndarray (n_samples[, n_targets]) or xarray.DataArray
            The true responses; aligned with ``X`` on stimulus ids when either is labelled.
        sample_weight : array-like (n_samples,), optional
            Weights of the samples (in ``X``'s order), as in
            :func:`sklearn.metrics.r2_score`.

        Returns
        -------
        float
            The coefficient of determination R².
        """
        from sklearn.metrics import r2_score

        check_is_fitted(self)
        x, yv, _ = self._validated(X, y, reset=False)
        pred = self.predict(x)
        return float(r2_score(yv, pred, sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
