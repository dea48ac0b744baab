"""Comparing the RDMs of two representations of many stimuli, block by block.

:func:`blocked_rdm_comparison` gives ``compare_rdms(rdm(x), rdm(y))`` without forming either
``n × n`` RDM or its condensed vector. The stimuli are cut into blocks of ``block_size``; for
every pair of blocks ``(I, J)`` with ``J >= I`` the two RDM blocks are computed from the rows
of ``I`` and ``J`` alone, with the formulas of :func:`~rsa_bias.analysis.rsa.rdms.rdm`
(strict upper triangle within diagonal blocks), and reduced to the sums the comparison needs:

* ``pearson``: the count, means and centred sums ``Σ(a − ā)²``, ``Σ(b − b̄)²``,
  ``Σ(a − ā)(b − b̄)`` of each block pair, computed in two passes over the block and merged
  exactly (Chan, Golub & LeVeque 1983: ``S_ab = S_ab¹ + S_ab² + δa δb n₁ n₂ / n``), so that no
  ``Σa² − (Σa)²/m`` cancellation occurs;
* ``cosine``: ``Σab``, ``Σa²``, ``Σb²`` (non-negative terms), summed exactly rounded
  (``math.fsum``) over block pairs.

Rank measures (Spearman, Kendall) and the whitened ones (``cosine_cov``, ``corr_cov``) need all
pairs at once and are refused. Memory: two row blocks per representation
(``2 × block_size × units``) and two ``block_size²`` RDM blocks; Dask-backed inputs are
computed one row block at a time (``x[i0:i1].compute()``).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from rsa_bias._values import check_count, numeric_values
from rsa_bias.analysis._inputs import align_to, as_labelled
from rsa_bias.provenance import result_attrs

RDM_METHODS = ("correlation", "cosine", "euclidean", "sqeuclidean")
METHODS = ("pearson", "cosine")
_NOT_STREAMABLE = {
    "spearman": "ranks", "rho_a": "ranks", "kendall_tau_a": "ranks of all pairs",
    "kendall_tau_b": "ranks of all pairs", "cosine_cov": "the whole RDM (whitening)",
    "corr_cov": "the whole RDM (whitening)",
}
_NEED_MORE = {"mahalanobis": "a noise precision", "crossnobis": "runs"}


def _is_dask(v) -> bool:
    graph = getattr(getattr(v, "data", v), "__dask_graph__", None)
    return callable(graph) and graph() is not None


def _checked_methods(rdm_method: str, method: str) -> None:
    if rdm_method not in RDM_METHODS:
        why = f" ({rdm_method!r} needs {_NEED_MORE[rdm_method]})" \
            if rdm_method in _NEED_MORE else ""
        raise ValueError(f"rdm_method={rdm_method!r} cannot be computed block by block{why}; "
                         f"supported: {list(RDM_METHODS)} (for the others use rdm() and "
                         "compare_rdms() on a subsample of stimuli)")
    if method in _NOT_STREAMABLE:
        raise ValueError(f"method={method!r} needs {_NOT_STREAMABLE[method]}, which cannot be "
                         f"accumulated block by block; supported: {list(METHODS)}. For "
                         f"{method!r}, compare the RDMs of a random subsample of stimuli with "
                         "compare_rdms(rdm(x_sub), rdm(y_sub), method=...)")
    if method not in METHODS:
        raise ValueError(f"unknown comparison method {method!r}; valid: {list(METHODS)}")


def _labelled(v, name: str) -> xr.DataArray:
    """A ``(stimulus, unit)`` labelled input; Dask arrays are wrapped without computing."""
    if not isinstance(v, xr.DataArray) and _is_dask(v):
        v = xr.DataArray(v, dims=("stimulus", "unit")[: v.ndim])
    v = as_labelled(v, name=name)
    if v.ndim != 2:
        raise ValueError(f"{name} has dims {v.dims}; expected ('stimulus', <unit dim>)")
    v = v.transpose("stimulus", next(d for d in v.dims if d != "stimulus"))
    if _is_dask(v):
        if v.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} is {v.dtype}; pass its real "
                             "part, modulus or stacked (real, imag) parts")
        if v.dtype.kind not in "biuf":
            raise TypeError(f"{name} has non-numeric values ({v.dtype}); pass real numbers")
    else:
        numeric_values(v.values, name, finite=False, empty_ok=True)
    if 0 in v.shape:
        raise ValueError(f"{name} is empty (shape {v.shape}); it needs stimuli and units")
    return v


def _rows(v: xr.DataArray, start: int, stop: int, rdm_method: str, name: str) -> np.ndarray:
    """Rows ``start:stop`` as float64, prepared for ``rdm_method`` (unit rows for the angles)."""
    block = v.data[start:stop]
    block = np.asarray(block.compute() if _is_dask(block) else block, dtype=np.float64)
    ids = v["stimulus"].values[start:stop]
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} has NaN/inf in the patterns of stimuli {ids[bad][:5].tolist()}"
                         "; drop those stimuli or impute them")
    if rdm_method == "correlation":
        block = block - block.mean(axis=1, keepdims=True)
    if rdm_method in ("correlation", "cosine"):
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        if np.any(norms == 0):
            what = "constant" if rdm_method == "correlation" else "all zero"
            raise ValueError(f"{rdm_method} distance is undefined for stimuli whose pattern in "
                             f"{name} is {what} (ids {ids[norms == 0][:5].tolist()}); drop "
                             "them or use rdm_method='sqeuclidean'")
        block /= norms[:, None]
    return block


def _distances(a: np.ndarray, b: np.ndarray, rdm_method: str) -> np.ndarray:
    """The RDM block between prepared row blocks ``a`` and ``b``, as :func:`rdm` computes it."""
    if rdm_method in ("correlation", "cosine"):
        return np.clip(1.0 - a @ b.T, 0.0, 2.0)
    na, nb = np.einsum("ij,ij->i", a, a), np.einsum("ij,ij->i", b, b)
    d = (na[:, None] + nb[None, :]) - 2.0 * (a @ b.T)
    d /= a.shape[1]
    np.maximum(d, 0.0, out=d)
    return np.sqrt(d) if rdm_method == "euclidean" else d


class _Pearson:
    """Count, means and centred (co)variation sums, merged block by block."""

    def __init__(self):
        self.n, self.ma, self.mb, self.saa, self.sbb, self.sab = 0, 0.0, 0.0, 0.0, 0.0, 0.0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        m = a.size
        if m == 0:  # the diagonal block of a one-stimulus last block
            return
        ma, mb = float(a.mean()), float(b.mean())
        ac, bc = a - ma, b - mb
        saa, sbb, sab = float(ac @ ac), float(bc @ bc), float(ac @ bc)
        n = self.n + m
        da, db = ma - self.ma, mb - self.mb
        w = self.n * m / n
        self.saa += saa + da * da * w
        self.sbb += sbb + db * db * w
        self.sab += sab + da * db * w
        self.ma += da * m / n
        self.mb += db * m / n
        self.n = n

    def value(self) -> float:
        if self.saa == 0.0 or self.sbb == 0.0:  # a constant RDM: 0, as compare_rdms
            return 0.0
        return self.sab / math.sqrt(self.saa * self.sbb)


class _Cosine:
    """``Σab``, ``Σa²``, ``Σb²`` of every block pair, summed exactly rounded at the end."""

    def __init__(self):
        self.n, self.parts = 0, ([], [], [])

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        self.n += a.size
        for part, value in zip(self.parts, (a @ b, a @ a, b @ b), strict=True):
            part.append(float(value))

    def value(self) -> float:
        ab, aa, bb = (math.fsum(p) for p in self.parts)
        return 0.0 if aa == 0.0 or bb == 0.0 else ab / math.sqrt(aa * bb)


def blocked_rdm_comparison(x, y, *, rdm_method: str = "correlation", method: str = "pearson",
                           block_size: int = 2048) -> xr.Dataset:
    """Similarity of the RDMs of ``x`` and ``y``, computed block by block for many stimuli.

    Equals ``compare_rdms(rdm(x, method=rdm_method), rdm(y, method=rdm_method),
    method=method)`` (to ~1e-13) without forming either RDM: memory grows with
    ``block_size² + block_size × units``, not ``n²`` (see the module docstring).

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", <unit dim>), Dask-backed or not
        The first representation; numpy or Dask arrays ``(n_stimuli, n_units)`` get ids
        ``0..n-1``. Dask-backed inputs are computed one block of rows at a time. At least
        3 stimuli, no NaN/inf.
    y : xarray.DataArray with dims ("stimulus", <unit dim>), Dask-backed or not
        The second representation (any number of units), aligned with ``x`` on stimulus ids.
    rdm_method : {"correlation", "cosine", "euclidean", "sqeuclidean"}, default "correlation"
        The RDM of each representation, as :func:`~rsa_bias.analysis.rsa.rdms.rdm` (the
        methods whose dissimilarity depends only on the two patterns; ``mahalanobis`` and
        ``crossnobis`` are refused).
    method : {"pearson", "cosine"}, default "pearson"
        The comparison, as :func:`~rsa_bias.analysis.rsa.compare.compare_rdms`. The default
        differs from ``compare_rdms``' ``"spearman"``: ranks need all pairs at once and are
        refused here (compare the RDMs of a random subsample of stimuli instead).
    block_size : int, default 2048
        Stimuli per block.

    Returns
    -------
    xarray.Dataset
        ``similarity`` (0-d) and ``n_pairs`` (0-d, the ``n(n−1)/2`` dissimilarities
        compared); flat attrs record ``rdm_method``, ``method``, ``block_size`` and
        ``n_stimuli``. A Dataset rather than ``compare_rdms``' float, so that the number
        keeps its provenance.

    Raises
    ------
    ValueError
        Unsupported ``rdm_method`` or ``method`` (with the supported ones), mismatched
        stimulus ids, NaN/inf, complex or empty inputs, constant patterns under
        ``"correlation"`` (all-zero under ``"cosine"``), fewer than 3 stimuli.

    Examples
    --------
    >>> from rsa_bias.analysis.rsa import compare_rdms, rdm
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 8))
    >>> y = x @ rng.normal(size=(8, 5)) + rng.normal(size=(50, 5))
    >>> res = blocked_rdm_comparison(x, y, block_size=16)
    >>> full = compare_rdms(rdm(x), rdm(y), method="pearson")
    >>> bool(abs(float(res.similarity) - full) < 1e-12), int(res.n_pairs)
    (True, 1225)
    """
    _checked_methods(rdm_method, method)
    size = check_count(block_size, "block_size")
    xl = _labelled(x, "x")
    yl = align_to(xl, _labelled(y, "y"), ("x", "y"))
    n = xl.sizes["stimulus"]
    if n < 3:
        raise ValueError(f"an RDM needs at least 3 stimuli; x has {n}")
    acc = _Pearson() if method == "pearson" else _Cosine()
    starts = list(range(0, n, size))
    for i0 in starts:
        i1 = min(i0 + size, n)
        xi, yi = (_rows(v, i0, i1, rdm_method, nm) for v, nm in ((xl, "x"), (yl, "y")))
        upper = np.triu_indices(i1 - i0, 1)
        acc.add(_distances(xi, xi, rdm_method)[upper], _distances(yi, yi, rdm_method)[upper])
        for j0 in starts:
            if j0 <= i0:
                continue
            j1 = min(j0 + size, n)
            xj, yj = (_rows(v, j0, j1, rdm_method, nm) for v, nm in ((xl, "x"), (yl, "y")))
            acc.add(_distances(xi, xj, rdm_method).ravel(),
                    _distances(yi, yj, rdm_method).ravel())
    value = acc.value()
    if not math.isfinite(value):
        raise ValueError("the dissimilarities of x or y overflow in floating point; rescale "
                         "the inputs (e.g. divide by their largest magnitude)")
    return xr.Dataset({"similarity": ((), value), "n_pairs": ((), acc.n)},
                      attrs=result_attrs("blocked_rdm_comparison", method=method,
                                         rdm_method=rdm_method, block_size=size,
                                         n_stimuli=n))
