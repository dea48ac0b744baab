"""Cross-validated ridge encoding scores streamed over chunked (Dask-backed) activations.

:func:`streamed_ridge_scores` never holds the ``(stimulus, unit)`` design in memory: one Dask
reduction over the stimulus chunks accumulates, per fold, the sufficient statistics ``n_f``,
``Σx``, ``Σy``, ``X_f'X_f``, ``X_f'Y_f`` and ``Σy²`` (see
:mod:`rsa_bias.analysis.encoding._streamed`), and everything else is algebra on them:

* the training statistics of a fold are the total minus the fold's, centred analytically
  (``X'X − n μ μ'``) for the intercept;
* ``(Xc'Xc + αI) W = Xc'Yc`` is solved for every alpha from one eigendecomposition of
  ``Xc'Xc`` per training set;
* the held-out squared error of every alpha and target is expanded in the test fold's own
  statistics (``Σ(y − ŷ)²`` with ``ŷ = (x − μx) W + μy``), with no second pass over the data;
* the alpha of each outer fold is chosen by leave-one-fold-out over the other folds
  (inner training sets: the total minus two folds), so the scores are nested, like those of
  :func:`~rsa_bias.analysis.encoding.scores.cross_validated_scores`.

With a ``dask.distributed`` Client active the reduction runs on its cluster. Dask is imported
only inside the functions.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rsa_bias._values import check_flag, check_seed, numeric_values
from rsa_bias.analysis._inputs import align_to, as_labelled, canonical_order
from rsa_bias.analysis.encoding import _streamed
from rsa_bias.analysis.encoding._checks import _check_alphas, _coord_or_range
from rsa_bias.analysis.encoding.ridge import DEFAULT_ALPHAS
from rsa_bias.analysis.encoding.scores import outer_splitter
from rsa_bias.provenance import result_attrs


def _labelled(v, name: str, dims: tuple[str, str]) -> xr.DataArray:
    """A 2-D labelled input, stimulus first; Dask arrays are wrapped without computing."""
    if not isinstance(v, xr.DataArray) and _streamed.is_dask_backed(v):
        v = xr.DataArray(v, dims=dims[: v.ndim])
    v = as_labelled(v, name=name, dims=dims)
    if v.ndim != 2:
        raise ValueError(f"{name} has dims {v.dims}; expected ({dims[0]!r}, <{dims[1]} dim>)")
    other = next(d for d in v.dims if d != "stimulus")
    v = v.transpose("stimulus", other)
    if _streamed.is_dask_backed(v):
        kind = v.dtype.kind
        if kind == "c":
            raise ValueError(f"Complex data not supported: {name} is {v.dtype}; pass its real "
                             "part, modulus or stacked (real, imag) parts")
        if kind not in "biuf":
            raise TypeError(f"{name} has non-numeric values ({v.dtype}); pass real numbers")
    else:
        numeric_values(v.values, name, finite=False, empty_ok=True)
    if 0 in v.shape:
        raise ValueError(f"{name} is empty (shape {v.shape}); it needs stimuli and "
                         f"{dims[1]}s")
    return v


def _fold_labels(ids: np.ndarray, cv, seed: int) -> tuple[np.ndarray, int]:
    """The fold of each row: folds drawn over the stimuli in ascending id order."""
    n = ids.size
    canon = canonical_order(xr.DataArray(np.arange(n), dims="stimulus",
                                         coords={"stimulus": ids})).values
    if np.unique(ids).size != n:
        raise ValueError("stimulus ids are not unique; each stimulus needs its own id")
    labels = np.full(n, -1)
    k = 0
    for k, (_, test) in enumerate(outer_splitter(cv, seed).split(np.zeros((n, 1))), 1):
        if (labels[canon[test]] >= 0).any():
            raise ValueError("the splitter's test folds overlap; streamed scores need a "
                             "partition of the stimuli (e.g. KFold)")
        labels[canon[test]] = k - 1
    if (labels < 0).any():
        raise ValueError("the splitter left some stimuli out of every test fold; use a "
                         "splitter whose test folds cover all stimuli (e.g. KFold)")
    if k < 3:
        raise ValueError(f"cv gives {k} folds; streamed_ridge_scores needs at least 3 (the "
                         "alpha of each outer fold is chosen on the other folds)")
    return labels, k


def _refuse_nonfinite(sums: np.ndarray, p: int) -> None:
    """NaN/inf anywhere in the inputs reaches the sums of its fold (Σx or Σy)."""
    first = sums[:, 0]
    for name, part in (("x", first[:, 1:p + 1]), ("y", first[:, p + 1:])):
        if not np.all(np.isfinite(part)):
            raise ValueError(f"{name} contains NaN/inf values; drop those stimuli or impute "
                             "them first")
    if not np.all(np.isfinite(sums)):
        raise ValueError("the sums of squares of x or y overflow; rescale the inputs")


def streamed_ridge_scores(x, y, *, alphas=DEFAULT_ALPHAS, cv=5, seed: int = 0,
                          alpha_per_target: bool = True, fit_intercept: bool = True
                          ) -> xr.Dataset:
    """Nested cross-validated ridge R² per target, streamed over chunked activations.

    One Dask reduction over the stimulus chunks of ``x`` (and ``y``) accumulates each fold's
    sufficient statistics (memory ``O(k p (p + t))`` for ``k`` folds, ``p`` units and ``t``
    targets, plus one chunk per worker thread); fits, alpha choices and held-out errors
    are computed from them (see the module docstring). Numbers agree with ridge fits on the
    same folds in memory (scikit-learn ``Ridge``) to ~1e-12. After the pass over the data:
    ``k(k+1)/2`` eigendecompositions of ``p × p`` matrices and ``k² × n_alphas`` products
    of ``O(p² t)``, independent of the number of stimuli.

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", <unit dim>), Dask-backed or not
        The model representation, e.g. ``xr.open_dataset(path, chunks={"stimulus": 4096})``;
        numpy or Dask arrays ``(n_stimuli, n_units)`` get ids ``0..n-1``. No NaN/inf.
    y : xarray.DataArray with dims ("stimulus", <target dim>), or numpy.ndarray
        The responses (neurons, voxels), in memory or Dask-backed; aligned with ``x`` on
        stimulus ids.
    alphas : sequence of float, default ``np.logspace(-2, 6, 10)``
        Candidate ridge penalties, as :class:`~rsa_bias.analysis.encoding.RidgeEncoder`.
    cv : int or scikit-learn splitter, default 5
        The outer folds: ``KFold(cv, shuffle=True, random_state=seed)`` over the stimuli in
        ascending id order — the folds of
        :func:`~rsa_bias.analysis.encoding.cross_validated_scores` — or a splitter whose
        test folds partition the stimuli. At least 3 folds.
    seed : int, default 0
        Seeds the shuffle of an int ``cv``.
    alpha_per_target : bool, default True
        Choose an alpha per target (else one alpha minimising the error summed over targets).
    fit_intercept : bool, default True
        Centre X and Y on each training set and fit an intercept.

    Returns
    -------
    xarray.Dataset with dims (<target dim>, "fold", "candidate_alpha")
        ``r2`` and ``mse`` (target): pooled out-of-fold R² (``1 − Σ(y − ŷ)² / Σ(y − ȳ)²``
        over all stimuli, as ``cross_validated_scores``) and mean squared error, each outer
        fold predicted at the alphas chosen by leave-one-fold-out over the other folds
        (nested); ``alpha(fold, target)``: those alphas;
        ``r2_by_alpha(candidate_alpha, target)``: pooled out-of-fold R² of every alpha of
        the grid (coord ``candidate_alpha``, as ``RidgeEncoder.cv_scores_``);
        ``best_alpha(target)``: the alpha of the largest ``r2_by_alpha`` — chosen on the
        same folds it is scored on, so ``r2_by_alpha`` at ``best_alpha`` is optimistic, and
        ``r2`` is the honest score.
        Flat attrs record the options, ``n_folds`` and ``n_stimuli``.

    Raises
    ------
    ValueError
        Mismatched stimulus ids, NaN/inf, complex or empty inputs, fewer than 3 folds, or
        a splitter whose test folds do not partition the stimuli.

    Examples
    --------
    >>> import dask.array as da
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 6))
    >>> y = x @ rng.normal(size=(6, 3)) + 0.1 * rng.normal(size=(200, 3))
    >>> lazy = xr.DataArray(da.from_array(x, chunks=(64, 6)), dims=("stimulus", "unit"))
    >>> res = streamed_ridge_scores(lazy, y)
    >>> bool(res.r2.min() > 0.95), res.alpha.dims
    (True, ('fold', 'target'))
    >>> float(abs(res.r2 - streamed_ridge_scores(x, y).r2).max()) < 1e-12
    True
    """
    import dask

    grid = _check_alphas(alphas)
    check_seed(seed)
    check_flag(alpha_per_target, "alpha_per_target")
    check_flag(fit_intercept, "fit_intercept")
    xl = _labelled(x, "x", ("stimulus", "unit"))
    yl = _labelled(y, "y", ("stimulus", "target"))
    yl = align_to(xl, yl, ("x", "y"))
    n, p = xl.shape
    if n < 3:
        raise ValueError(f"streamed_ridge_scores needs at least 3 stimuli; got {n}")
    labels, k = _fold_labels(xl["stimulus"].values, cv, seed)
    xd = xl.data if _streamed.is_dask_backed(xl) else _as_dask(xl.values)
    lazy = _streamed.fold_statistics(xd, yl.data, labels, k, intercept=bool(fit_intercept))
    (sums,) = dask.compute(lazy)
    _refuse_nonfinite(sums, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        outer, inner = _streamed.cross_validated_sse(sums, grid, intercept=bool(fit_intercept))
        sst = _streamed.total_sum_of_squares(sums)
        chosen = np.stack([_streamed.best_index(inner[f].sum(axis=0), bool(alpha_per_target))
                           for f in range(k)])                       # (k, t)
        cols = np.arange(outer.shape[2])
        nested = sum(outer[f, chosen[f], cols] for f in range(k))
        by_alpha = outer.sum(axis=0)
        r2_by_alpha = 1.0 - by_alpha / sst
    target_dim = str(yl.dims[1])
    out = xr.Dataset(
        {"r2": (target_dim, 1.0 - nested / sst), "mse": (target_dim, nested / n),
         "alpha": (("fold", target_dim), grid[chosen]),
         "r2_by_alpha": (("candidate_alpha", target_dim), r2_by_alpha),
         "best_alpha": (target_dim, grid[_streamed.best_index(by_alpha,
                                                              bool(alpha_per_target))])},
        coords={target_dim: _coord_or_range(yl, target_dim), "fold": np.arange(k),
                "candidate_alpha": grid})
    out.attrs.update(result_attrs("streamed_ridge_scores", method="ridge_streamed_nested_cv",
                                  alphas=grid.tolist(), cv=cv, seed=seed,
                                  alpha_per_target=alpha_per_target,
                                  fit_intercept=fit_intercept, n_folds=k, n_stimuli=n))
    return out


def _as_dask(values: np.ndarray, rows: int = 4096):
    """An in-memory design as a Dask array of row blocks (the same path as chunked input)."""
    import dask.array as da

    return da.from_array(values, chunks=(min(rows, values.shape[0]), -1))
