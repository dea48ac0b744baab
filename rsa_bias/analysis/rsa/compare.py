"""Comparing RDMs (representational similarity analysis).

Definitions follow ``rsatoolbox.rdm.compare`` (v0.3) and agree with it to
floating-point precision; every measure works on the upper-triangle vectors of
the RDMs (:func:`rsa_bias.analysis.rsa.forms.condensed`):

============== ============================================================ ==============
method         similarity                                                   rsatoolbox
============== ============================================================ ==============
pearson        Pearson r of the dissimilarity vectors                       ``"corr"``
spearman       Pearson r of their ranks (ties get average ranks)            ``"spearman"``
rho_a          rank correlation without tie correction, 12·rᵀs/(m³ - m)     ``"rho-a"``
kendall_tau_a  (concordant - discordant) / (m(m-1)/2)                       ``"tau-a"``
kendall_tau_b  Kendall τ_b (scipy.stats.kendalltau)                         ``"kendall"``
cosine         cosine of the vectors                                        ``"cosine"``
cosine_cov     cosine after whitening with the covariance of the RDM vector ``"cosine_cov"``
corr_cov       ``cosine_cov`` of mean-centred vectors                       ``"corr_cov"``
============== ============================================================ ==============

Stacks of RDMs are compared all-against-all with matrix products: a stack is
ranked / centred / whitened once, then one GEMM gives every comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse
import scipy.stats
import xarray as xr

from rsa_bias.analysis._inputs import choose
from rsa_bias.analysis._rdm_vectors import (
    RdmStack,
    as_stack,
    common_ids,
    n_stimuli_from_pairs,
    select_pairs,
)
from rsa_bias.analysis.rsa._pair_counts import tau_rows
from rsa_bias.provenance import result_attrs

# --------------------------------------------------------------------------- kernels

def _cosine_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cosine between every row of ``x`` and of ``y``; 0 where a row is all zero (rsatoolbox)."""
    nx = np.sqrt(np.einsum("ij,ij->i", x, x))
    ny = np.sqrt(np.einsum("ij,ij->i", y, y))
    out = x @ y.T
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= nx[:, None]
        out /= ny[None, :]
    out[(nx == 0)[:, None] | (ny == 0)[None, :]] = 0.0
    return out


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=1, keepdims=True)


def _average_ranks_sorted(tied: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of a sorted vector, given ``tied[k] = s[k+1] == s[k]``."""
    new = np.r_[True, ~tied]
    starts = np.r_[np.flatnonzero(new), new.size]
    average = 0.5 * (starts[:-1] + starts[1:] - 1) + 1
    return average[np.cumsum(new) - 1]


def rank_rows(v: np.ndarray) -> np.ndarray:
    """Average ranks along each row, as ``scipy.stats.rankdata(v, axis=1)``, but faster.

    One unstable (SIMD) argsort and one sort per row; only rows that contain
    ties take the extra tie-averaging pass.

    Parameters
    ----------
    v : numpy.ndarray of shape (k, m)
        Rows to rank (e.g. RDM vectors), without NaN.

    Returns
    -------
    numpy.ndarray of shape (k, m)
        1-based ranks of each row, ties given their average rank (float64).

    Examples
    --------
    >>> import numpy as np
    >>> rank_rows(np.array([[3.0, 1.0, 1.0, 2.0]])).tolist()
    [[4.0, 1.5, 1.5, 3.0]]
    """
    k, m = v.shape
    ranks = np.empty((k, m))
    ordinal = np.arange(1, m + 1, dtype=np.float64)
    for i in range(k):
        order = np.argsort(v[i])
        tied = np.diff(np.sort(v[i])) == 0
        ranks[i, order] = _average_ranks_sorted(tied) if tied.any() else ordinal
    return ranks


def _centred_ranks(v: np.ndarray) -> np.ndarray:
    ranks = rank_rows(v)
    ranks -= (v.shape[1] + 1) / 2.0  # the mean of average ranks is always (m + 1) / 2
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    return _cosine_rows(_centred(x), _centred(y))


def _cosine(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    return _cosine_rows(x, y)


def _spearman(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    return _cosine_rows(_centred_ranks(x), _centred_ranks(y))


def _rho_a(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    m = x.shape[1]
    return (_centred_ranks(x) @ _centred_ranks(y).T) * (12.0 / (m**3 - m))


def _tied_pairs(v: np.ndarray) -> np.ndarray:
    """Number of tied pairs within each row."""
    out = np.empty(v.shape[0])
    for i, row in enumerate(v):
        counts = np.unique(row, return_counts=True)[1]
        out[i] = np.sum(counts * (counts - 1) / 2)
    return out


def _kendall(x: np.ndarray, y: np.ndarray, *, variant_a: bool) -> np.ndarray:
    """scipy's τ_b for every pair of rows; ``variant_a``: the τ-a derived from it (the
    previous τ-a, rounded differently from the exact counts; kept as a reference)."""
    m = x.shape[1]
    total = m * (m - 1) / 2
    tx, ty = _tied_pairs(x), _tied_pairs(y)
    out = np.empty((x.shape[0], y.shape[0]))
    for i, j in np.ndindex(out.shape):
        tau_b = scipy.stats.kendalltau(x[i], y[j]).statistic
        if not variant_a:
            out[i, j] = tau_b
        elif np.isnan(tau_b):  # a constant vector: no concordant or discordant pairs
            out[i, j] = 0.0
        else:  # tau_a = (C - D) / total and tau_b = (C - D) / sqrt((total-tx)(total-ty))
            out[i, j] = tau_b * np.sqrt((total - tx[i]) * (total - ty[j])) / total
    return np.clip(out, -1.0, 1.0) if variant_a else out


def _kendall_tau_a(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    return tau_rows(x, y)  # exact pair counts, as rsatoolbox


def _kendall_tau_b(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    return tau_rows(x, y, variant="b")  # scipy's integers and division, all pairs at once


def _incidence(i: np.ndarray, j: np.ndarray, n: int) -> scipy.sparse.csr_matrix:
    """``(pairs, n)`` matrix with ones at each pair's two stimuli."""
    rows = np.r_[np.arange(i.size), np.arange(i.size)]
    data = np.ones(2 * i.size)
    return scipy.sparse.csr_matrix((data, (rows, np.r_[i, j])), shape=(i.size, n))


def _whiten(v: np.ndarray, keep: np.ndarray, sigma_k: np.ndarray | None) -> np.ndarray:
    """rsatoolbox's ``_cov_weighting``: double-centred ``-D/2`` with its diagonal appended.

    The centring is the weighted least-squares removal of row/column effects,
    which for a complete RDM is exactly ``H (-D/2) H``; with NaN entries it is
    done on the kept pairs only (as rsatoolbox does).
    """
    n = n_stimuli_from_pairs(keep.size)
    i, j = (t[keep] for t in np.triu_indices(n, 1))
    g = -0.5 * v
    inc = _incidence(i, j, n)
    u = np.asarray(inc.T @ g.T).T                      # (k, n) row sums over kept pairs
    if keep.all():
        coef = (2.0 / n) * (u - u.sum(axis=1, keepdims=True) / (2 * n))
    else:
        normal = 0.5 * (inc.T @ inc).toarray() + np.eye(n)
        coef = np.linalg.solve(normal, u.T).T
    pairs = g - 0.5 * (coef[:, i] + coef[:, j])
    diag = -coef
    if sigma_k is not None:
        pairs /= np.sqrt(sigma_k[i] * sigma_k[j])
        diag /= sigma_k
    return np.concatenate([pairs * np.sqrt(2.0), diag], axis=1)


def _cosine_cov(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    return _cosine_rows(_whiten(x, keep, sigma_k), _whiten(y, keep, sigma_k))


def _corr_cov(x: np.ndarray, y: np.ndarray, keep: np.ndarray, sigma_k: Any) -> np.ndarray:
    return _cosine_cov(_centred(x), _centred(y), keep, sigma_k)


_Kernel = Callable[[np.ndarray, np.ndarray, np.ndarray, Any], np.ndarray]
_METHODS: dict[str, _Kernel] = {
    "pearson": _pearson,
    "spearman": _spearman,
    "rho_a": _rho_a,
    "kendall_tau_a": _kendall_tau_a,
    "kendall_tau_b": _kendall_tau_b,
    "cosine": _cosine,
    "cosine_cov": _cosine_cov,
    "corr_cov": _corr_cov,
}
_USES_SIGMA_K = ("cosine_cov", "corr_cov")


# --------------------------------------------------------------------------- inputs

def _align(a: RdmStack, b: RdmStack, join: str) -> np.ndarray:
    """Stimulus ids both stacks are compared on (refuses mismatches, naming ids)."""
    ids = common_ids(a, b, ("a", "b"), join, "comparing RDMs")
    a.vectors = select_pairs(a.vectors, a.ids, ids)
    b.vectors = select_pairs(b.vectors, b.ids, ids)
    return ids


# --------------------------------------------------------------------------- NaN groups

def _nan_groups(nan: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(kept pairs, rows)`` for each distinct NaN pattern among the rows."""
    if not nan.any():
        yield np.ones(nan.shape[1], dtype=bool), np.arange(nan.shape[0])
        return
    patterns, inverse = np.unique(nan, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        yield ~pattern, np.flatnonzero(inverse.ravel() == g)


def _compare_vectors(va: np.ndarray, vb: np.ndarray, kernel: _Kernel,
                     sigma_k: np.ndarray | None) -> np.ndarray:
    """All-against-all comparison; NaN entries dropped for each pair of RDMs."""
    nan_a, nan_b = np.isnan(va), np.isnan(vb)
    if not nan_a.any() and not nan_b.any():
        return kernel(va, vb, np.ones(va.shape[1], dtype=bool), sigma_k)
    out = np.empty((va.shape[0], vb.shape[0]))
    for keep_a, rows_a in _nan_groups(nan_a):
        for keep_b, rows_b in _nan_groups(nan_b):
            keep = keep_a & keep_b
            if keep.sum() < 2:
                raise ValueError("fewer than 2 dissimilarities are non-NaN in both RDMs of "
                                 f"a[{rows_a[0]}] and b[{rows_b[0]}]; nothing to compare")
            out[np.ix_(rows_a, rows_b)] = kernel(va[np.ix_(rows_a, keep)],
                                                 vb[np.ix_(rows_b, keep)], keep, sigma_k)
    return out


def _checked_sigma_k(sigma_k: np.ndarray | None, method: str, n: int) -> np.ndarray | None:
    if sigma_k is None:
        return None
    if method not in _USES_SIGMA_K:
        raise ValueError(f"sigma_k is used only by methods {list(_USES_SIGMA_K)}, not "
                         f"{method!r}")
    s = np.asarray(sigma_k, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"sigma_k has shape {s.shape}; expected the variances of the {n} "
                         "pattern estimates, shape (n_stimuli,) (a full covariance matrix is "
                         "not supported)")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError("sigma_k must be finite and positive")
    return s


# --------------------------------------------------------------------------- public

def compare_rdms(a: xr.DataArray | np.ndarray, b: xr.DataArray | np.ndarray, *,
                 method: str = "spearman", sigma_k: np.ndarray | None = None,
                 join: str = "exact") -> float | xr.DataArray:
    """Similarity of every RDM in ``a`` with every RDM in ``b``.

    Definitions follow ``rsatoolbox.rdm.compare`` (v0.3); see the module docstring for
    the formula of each method.

    Parameters
    ----------
    a, b : xarray.DataArray with dims (..., "stimulus_i", "stimulus_j") or (..., "pair")
        One RDM or a stack (leading dims such as ``model``, ``subject``, ``layer``).
        The ``pair`` form is :func:`~rsa_bias.analysis.rsa.forms.condensed`'s output.
        numpy input: a condensed vector ``(m,)``, a square ``(n, n)`` or a stack
        ``(k, n, n)`` or ``(k, m)`` (leading dim ``"rdm"``), stimulus ids ``0..n-1``;
        a 2-D array is read as one square RDM whenever it is square.
    method : str, default "spearman"
        ``"spearman"``, ``"pearson"``, ``"rho_a"``, ``"kendall_tau_a"``,
        ``"kendall_tau_b"``, ``"cosine"``, ``"cosine_cov"`` or ``"corr_cov"`` (see the
        module docstring).
    sigma_k : numpy.ndarray of shape (n_stimuli,), optional
        Variances of the pattern estimates, for ``cosine_cov``/``corr_cov`` only;
        default: equal (rsatoolbox's default). A full covariance matrix is refused.
    join : {"exact", "inner"}, default "exact"
        ``"exact"`` refuses RDMs over different stimulus sets (naming the missing ids);
        ``"inner"`` compares on the stimuli both have.

    Returns
    -------
    float or xarray.DataArray
        Two single RDMs give a float (as every scalar measure of the package: ``cka``,
        ``procrustes_distance``, ...). Stacks give a DataArray with dims (leading dims of
        a..., leading dims of b...); a dim present in both is suffixed ``_a`` / ``_b``.

    Notes
    -----
    Labelled RDMs are aligned on stimulus ids, never by position. NaN
    dissimilarities are dropped for each pair of compared RDMs; when all RDMs
    share their NaN positions (the only case rsatoolbox accepts) this equals
    rsatoolbox, which drops every position that is NaN in any RDM of either set.
    Deliberate differences: a full ``sigma_k`` covariance matrix is refused
    (rsatoolbox solves that case iteratively, to about 1e-5); ``kendall_tau_b``
    is rsatoolbox's ``"kendall"``. As in rsatoolbox, a constant RDM has
    similarity 0 (not NaN) except under ``kendall_tau_b``. ``kendall_tau_a``
    counts concordant and discordant pairs exactly, in integers (equal to
    rsatoolbox bit for bit), for all pairs of RDMs together in O(m log m) numpy
    work each; ``kendall_tau_b`` loops over pairs of RDMs (scipy's
    ``kendalltau``); all other measures are one matrix product for the whole stack.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> d = rng.random((4, 10, 10)); d = d + d.transpose(0, 2, 1)
    >>> r = compare_rdms(d, d, method="pearson")
    >>> r.dims, np.allclose(np.diag(r), 1)
    (('rdm_a', 'rdm_b'), True)

    Two single RDMs give a float:

    >>> from rsa_bias.analysis.rsa import rdm
    >>> x = rng.normal(size=(8, 20))
    >>> a, b = rdm(x), rdm(x + 0.5 * rng.normal(size=(8, 20)))
    >>> isinstance(compare_rdms(a, b), float), round(compare_rdms(a, b), 3)
    (True, 0.748)
    """
    kernel = choose(_METHODS, method, "comparison method")
    sa, sb = as_stack(a, "a"), as_stack(b, "b")
    ids = _align(sa, sb, join)
    sigma = _checked_sigma_k(sigma_k, method, ids.size)
    values = _compare_vectors(sa.vectors, sb.vectors, kernel, sigma)
    return _labelled_result(values, sa, sb, method)


def _renamed(stack: RdmStack, clash: set[str], suffix: str) -> tuple[list[str], dict[str, Any]]:
    def rename(d: str) -> str:
        return f"{d}{suffix}" if d in clash else d

    dims = [rename(d) for d in stack.dims]
    coords = {rename(k): xr.Variable([rename(str(d)) for d in v.dims], v.values)
              for k, v in stack.coords.items()}
    return dims, coords


def _labelled_result(values: np.ndarray, a: RdmStack, b: RdmStack,
                     method: str) -> float | xr.DataArray:
    if not a.dims and not b.dims:
        return float(values[0, 0])
    clash = (set(a.dims) | set(a.coords)) & (set(b.dims) | set(b.coords))
    dims_a, coords_a = _renamed(a, clash, "_a")
    dims_b, coords_b = _renamed(b, clash, "_b")
    data = values.reshape((*a.shape, *b.shape))
    return xr.DataArray(data, dims=(*dims_a, *dims_b), coords={**coords_a, **coords_b},
                        name="rdm_similarity",
                        attrs=result_attrs("compare_rdms", method=method))

