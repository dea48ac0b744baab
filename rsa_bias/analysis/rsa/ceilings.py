"""Noise ceilings of RDM comparisons (rsatoolbox's ``boot_noise_ceiling``).

For data RDMs ``y_1..y_S`` (one per subject) and a comparison method:

* **upper** bound: mean over subjects of ``compare(pool(y_1..y_S), y_s)``;
* **lower** bound: mean over subjects of ``compare(pool(all but y_s), y_s)``
  (leave one subject out).

``pool`` is rsatoolbox's ``pool_rdm``: the average RDM that a method scores
best, i.e. the mean of the RDMs after the transform the method is invariant
to — z-scoring for ``pearson``/``corr_cov``, scaling to unit root mean square
for ``cosine``/``cosine_cov``, ranks for ``spearman``/``rho_a``/Kendall (the
pooled ranks are ranked again by the comparison).

The private helpers compute the same bounds for *weighted* resamples (the
bootstrap of :func:`rsa_bias.analysis.rsa.inference.evaluate_models`): a subject
drawn ``v_s`` times enters the pooled RDM ``v_s`` times, and, as in
rsatoolbox, the leave-one-out bound leaves out *all* copies of a subject and
averages over the distinct subjects drawn.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from rsa_bias.analysis._inputs import choose
from rsa_bias.analysis._rdm_vectors import RdmStack, as_stack
from rsa_bias.analysis.rsa.compare import _METHODS as _COMPARE
from rsa_bias.analysis.rsa.compare import rank_rows
from rsa_bias.provenance import result_attrs

RANK_METHODS = ("spearman", "rho_a", "kendall_tau_a", "kendall_tau_b")


# --------------------------------------------------------------------------- inputs

def checked_stack(x: xr.DataArray | np.ndarray, name: str) -> RdmStack:
    """A stack of RDMs (at most one leading dim) as vectors, refusing NaN.

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        RDMs as accepted by :func:`~rsa_bias.analysis.rsa.compare.compare_rdms`, with at
        most one leading dim.
    name : str
        Name of the argument, for the error messages.

    Returns
    -------
    rsa_bias.analysis._rdm_vectors.RdmStack
        The condensed vectors ``(k, m)`` with their stimulus ids and labels.

    Raises
    ------
    ValueError
        If ``x`` has more than one leading dim or contains NaN dissimilarities.
    """
    stack = as_stack(x, name)
    if len(stack.dims) > 1:
        raise ValueError(f"{name} has leading dims {stack.dims}; stack them into one dim "
                         f"first (e.g. {name}.stack(subject=[...]) and reset the index)")
    if np.isnan(stack.vectors).any():
        bad = np.flatnonzero(np.isnan(stack.vectors).any(axis=1))
        raise ValueError(f"{name} contains NaN dissimilarities (in RDMs at positions "
                         f"{bad[:5].tolist()}); inference needs complete RDMs")
    return stack


def lead_labels(stack: RdmStack) -> np.ndarray:
    """Coordinate values of the stack's leading dim (positions when it has none).

    Parameters
    ----------
    stack : rsa_bias.analysis._rdm_vectors.RdmStack
        A stack from :func:`checked_stack`.

    Returns
    -------
    numpy.ndarray of shape (k,)
        The labels of the ``k`` RDMs (e.g. model or subject names), else ``0..k-1``.
    """
    n = stack.vectors.shape[0]
    if stack.dims and stack.dims[0] in stack.coords:
        return np.asarray(stack.coords[stack.dims[0]].values)
    return np.arange(n)


# --------------------------------------------------------------------------- pooling

def _unit_rms(y: np.ndarray) -> np.ndarray:
    return y / np.sqrt(np.mean(y * y, axis=1, keepdims=True))


def _zscored(y: np.ndarray) -> np.ndarray:
    c = y - y.mean(axis=1, keepdims=True)
    return c / c.std(axis=1, keepdims=True)


_POOL_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pearson": _zscored, "corr_cov": _zscored,
    "cosine": _unit_rms, "cosine_cov": _unit_rms,
    **{m: rank_rows for m in RANK_METHODS},
}


def _pool(y: np.ndarray, method: str) -> np.ndarray:
    """rsatoolbox's ``pool_rdm`` for complete vectors ``(k, m)`` -> ``(1, m)``.

    rsatoolbox also subtracts the minimum after z-scoring; every method that
    pools by z-scoring is invariant to that shift, so it is left out.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return _POOL_TRANSFORMS[method](y).mean(axis=0, keepdims=True)


def _ceiling_per_group(y: np.ndarray, groups: np.ndarray, method: str,
                       keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound for each distinct group (subject) of the rows of ``y``.

    ``keep`` marks which pairs of the full RDM the columns of ``y`` are (all by default).
    """
    kernel = _COMPARE[method]
    keep = np.ones(y.shape[1], dtype=bool) if keep is None else keep
    labels, first = np.unique(groups, return_index=True)
    pooled = _pool(y, method)
    if not np.all(np.isfinite(pooled)):  # a constant RDM cannot be z-scored: no ceiling
        nan = np.full(labels.size, np.nan)
        return nan, nan
    upper = kernel(pooled, y[first], keep, None)[0]
    if labels.size < 2:  # rsatoolbox then trains and tests on the same RDMs
        return upper, upper
    lower = np.array([kernel(_pool(y[groups != g], method), y[[f]], keep, None)[0, 0]
                      for g, f in zip(labels, first, strict=True)])
    return lower, upper


# --------------------------------------------------------------------------- weighted

def _nc_from_gram(gram: np.ndarray, scale: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bounds ``(B, 2)`` for methods linear after their transform.

    ``gram (B, S, S)``: inner products of the transformed subject RDMs under each
    resample; ``scale (B, S)``: pooling factor of each subject (1/std or 1/rms);
    ``v (B, S)``: how often each subject was drawn.
    """
    with np.errstate(invalid="ignore"):
        alpha = np.where(v > 0, v * scale, 0.0)  # undrawn subjects weigh 0, even if constant
    g_alpha = np.einsum("bst,bs->bt", gram, alpha)
    a_g_a = np.einsum("bt,bt->b", g_alpha, alpha)[:, None]
    g_tt = np.einsum("btt->bt", gram)
    upper = _safe_ratio(g_alpha, a_g_a * g_tt)
    loo = g_alpha - alpha * g_tt                       # (G α_{-t})_t
    loo_norm = a_g_a - 2 * alpha * g_alpha + alpha**2 * g_tt
    lower = _safe_ratio(loo, np.maximum(loo_norm, 0.0) * g_tt)
    return _mean_over_drawn(lower, upper, v)


def _safe_ratio(num: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """``num / sqrt(norm2)`` with 0 where the norm is 0 (rsatoolbox's zero-vector rule)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / np.sqrt(norm2)
    return np.where(norm2 > 0, out, np.where(np.isnan(norm2), np.nan, 0.0))


def _mean_over_drawn(lower: np.ndarray, upper: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Average over the distinct subjects drawn; with one subject, lower = upper."""
    drawn = v > 0
    n = drawn.sum(axis=1)
    lo = np.where(drawn, lower, 0.0).sum(axis=1) / n
    up = np.where(drawn, upper, 0.0).sum(axis=1) / n
    return np.stack([np.where(n > 1, lo, up), up], axis=1)


def sorted_ranks(ws: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Average ranks, in sorted order, of entries repeated ``ws`` times.

    Parameters
    ----------
    ws : numpy.ndarray of shape (..., m)
        Weights (repetition counts) in the sort order of the values.
    last : numpy.ndarray of bool, broadcastable to ``ws``
        True where the next sorted value differs (the end of a tie group), as
        :func:`tie_ends` gives it.

    Returns
    -------
    numpy.ndarray of shape (..., m)
        The average rank of each sorted entry in the expanded vector.

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([1.0, 1.0, 2.0])
    >>> sorted_ranks(np.ones(3), tie_ends(values)).tolist()
    [1.5, 1.5, 3.0]
    """
    cw = np.cumsum(ws, axis=-1)
    if np.all(last):
        return cw - (ws - 1.0) / 2.0
    last = np.broadcast_to(last, ws.shape)
    first = np.ones(ws.shape, dtype=bool)
    first[..., 1:] = last[..., :-1]
    start = np.maximum.accumulate(np.where(first, cw - ws, -np.inf), axis=-1)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, cw, np.inf), -1), -1), -1)
    return start + (end - start + 1.0) / 2.0


def tie_ends(sorted_values: np.ndarray) -> np.ndarray:
    """True where the next value of a sorted row differs (or at the row's end).

    Parameters
    ----------
    sorted_values : numpy.ndarray of shape (..., m)
        Values sorted along the last axis.

    Returns
    -------
    numpy.ndarray of bool, shape (..., m)
        The ends of the tie groups.

    Examples
    --------
    >>> import numpy as np
    >>> tie_ends(np.array([1.0, 1.0, 2.0])).tolist()
    [False, True, True]
    """
    last = np.ones(sorted_values.shape, dtype=bool)
    last[..., :-1] = sorted_values[..., 1:] != sorted_values[..., :-1]
    return last


def weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average ranks of a vector whose entry ``p`` is repeated ``weights[..., p]`` times.

    Equals ``scipy.stats.rankdata`` of the expanded vector, read back at one copy of
    each entry.

    Parameters
    ----------
    values : numpy.ndarray of shape (..., m)
        The values to rank along the last axis.
    weights : numpy.ndarray, broadcastable to ``values``
        How often each entry is repeated.

    Returns
    -------
    numpy.ndarray of shape (..., m)
        The average rank of each entry (entries of weight 0 get an unused value).

    Examples
    --------
    >>> import numpy as np
    >>> weighted_ranks(np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 1.0])).tolist()
    [4.0, 1.5, 3.0]
    """
    order = np.argsort(values, axis=-1)
    weights = np.broadcast_to(weights, values.shape)
    ranks = sorted_ranks(np.take_along_axis(weights, order, axis=-1),
                         tie_ends(np.take_along_axis(values, order, axis=-1)))
    out = np.empty_like(ranks)
    np.put_along_axis(out, order, ranks, axis=-1)
    return out


def _nc_from_ranks(ranks: np.ndarray, wp: np.ndarray, v: np.ndarray, method: str) -> np.ndarray:
    """Bounds ``(B, 2)`` for ``spearman``/``rho_a``: pooled ranks are ranked again.

    ``ranks (B, S, m)``: weighted ranks of each subject's RDM; ``wp (B, m)``: pair
    weights; ``v (B, S)``: subject draw counts. Sums of ranks (multiples of 1/2)
    are exact, so ties in the pooled RDM are the same as rsatoolbox's.
    """
    total = np.einsum("bs,bsm->bm", v, ranks)
    pooled = np.concatenate([total[:, None], total[:, None] - v[..., None] * ranks], axis=1)
    reranked = weighted_ranks(pooled, wp[:, None, :])
    half = (wp.sum(axis=1) + 1.0) / 2.0
    rc = reranked - half[:, None, None]
    sc = ranks - half[:, None, None]
    cross = np.einsum("bkm,bm,bkm->bk", rc[:, 1:], wp, sc)
    up_cross = np.einsum("bm,bm,bsm->bs", rc[:, 0], wp, sc)
    if method == "rho_a":
        m_tot = wp.sum(axis=1)[:, None]
        factor = 12.0 / (m_tot**3 - m_tot)
        return _mean_over_drawn(cross * factor, up_cross * factor, v)
    n_pool = np.einsum("bkm,bm,bkm->bk", rc, wp, rc)
    n_subj = np.einsum("bsm,bm,bsm->bs", sc, wp, sc)
    lower = _safe_ratio(cross, n_pool[:, 1:] * n_subj)
    upper = _safe_ratio(up_cross, n_pool[:, :1] * n_subj)
    return _mean_over_drawn(lower, upper, v)


# --------------------------------------------------------------------------- public

def rdm_noise_ceiling(data: xr.DataArray | np.ndarray, *,
                      method: str = "spearman") -> xr.Dataset:
    """Lower and upper noise ceiling of RDM comparisons across subjects.

    The upper bound is the mean over subjects of ``compare(pool(all), y_s)``, the lower
    bound the mean of ``compare(pool(all but y_s), y_s)`` (leave one subject out); see
    the module docstring for the pooling of each method.

    Parameters
    ----------
    data : xarray.DataArray with dims (<subject dim>, "stimulus_i", "stimulus_j")
        Or (<subject dim>, "pair"); numpy ``(S, n, n)`` or ``(S, m)``. At least 2 RDMs
        (subjects), 3 stimuli, no NaN.
    method : str, default "spearman"
        Comparison method of :func:`~rsa_bias.analysis.rsa.compare.compare_rdms`
        (``"spearman"`` as everywhere in the package; pass ``"corr_cov"`` for
        cross-validated RDMs such as crossnobis, Diedrichsen et al. 2021).

    Returns
    -------
    xarray.Dataset
        ``lower`` and ``upper`` (scalars) and their per-subject terms
        ``lower_subject(subject)``/``upper_subject(subject)``; flat attrs record
        ``method`` and ``subject_dim`` (the name of the input's leading dim).

    Notes
    -----
    Same numbers as ``rsatoolbox.inference.boot_noise_ceiling(rdms, method)``
    (rsatoolbox warns that its Kendall ceilings pool average ranks; so do we).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> subjects = rng.random(45) + 0.3 * rng.random((6, 45))  # one truth, 6 noisy subjects
    >>> nc = rdm_noise_ceiling(subjects, method="pearson")
    >>> bool(nc.lower < nc.upper <= 1)
    True
    >>> round(float(nc.lower), 3), round(float(nc.upper), 3)
    (0.952, 0.967)
    """
    choose(_POOL_TRANSFORMS, method, "comparison method")
    stack = checked_stack(data, "data")
    y, subjects = stack.vectors, lead_labels(stack)
    if y.shape[0] < 2:
        raise ValueError(f"a noise ceiling needs RDMs of at least 2 subjects; data has "
                         f"{y.shape[0]}")
    lower, upper = _ceiling_per_group(y, np.arange(y.shape[0]), method)
    return xr.Dataset(
        {"lower": float(lower.mean()), "upper": float(upper.mean()),
         "lower_subject": ("subject", lower), "upper_subject": ("subject", upper)},
        coords={"subject": subjects},
        attrs=result_attrs("rdm_noise_ceiling", method=method,
                           subject_dim=stack.dims[0] if stack.dims else "none"))
