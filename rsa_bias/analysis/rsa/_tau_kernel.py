"""Compiled counts of Kendall τ pairs and ties (numba), used by
:func:`._pair_counts.concordance` and the bootstrap of :mod:`._weighted_pairs` when
numba is installed (``pip install
"rsa_bias[fast]"``); without it the NumPy radix partition of :mod:`._pair_counts`
counts the same integers.

Entries are visited in the order of ``a`` (ties in ``a`` adjacent), one ``a``-tie run
at a time: each entry's discordant pairs are the copies seen in earlier runs with a
larger ``b``, read from a Fenwick tree of copies over the dense ``b`` ranks, and the
run is added to the tree only after all its entries are queried (pairs tied in ``a``
are neither concordant nor discordant). The pairs tied in ``b`` come from the copies
per ``b`` rank, those tied in both from the copies per rank within a run.

* :func:`count_rows`: many rows, one weight vector each (the noise ceiling's pooled
  RDMs, one comparison);
* :func:`count_columns`: one pair of rows and many weight vectors (a model's scores
  over all bootstrap replicates): the tree holds one count per weight vector, and
  every step of an entry runs over the vectors in an inner loop that vectorises; the
  copies per rank are read back from the tree at the end (its partial sums undone).

Counts are int64 (``count_columns``: int32 while every count fits, fewer than 46 000
copies per weight vector), exact while the copies of a row stay below 2**31.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Set ``RSA_BIAS_NUMBA=0`` to count with NumPy even where numba is installed.
ENV = "RSA_BIAS_NUMBA"


def _rows(a, b, w, n_ranks):  # pragma: no cover - compiled by numba
    r, m = b.shape
    out = np.zeros((4, r), dtype=np.int64)  # C - D, all pairs, tied in a, tied in b
    tree = np.zeros(n_ranks + 1, dtype=np.int64)
    per_b = np.zeros(n_ranks, dtype=np.int64)
    in_run = np.zeros(n_ranks, dtype=np.int64)
    for row in range(r):
        tree[:] = 0
        per_b[:] = 0
        seen = 0
        disc = 0
        tied_a = 0
        tied_ab = 0
        start = 0
        while start < m:
            stop = start + 1
            while stop < m and a[row, stop] == a[row, start]:
                stop += 1
            run = 0
            for i in range(start, stop):
                wi = w[row, i]
                if wi == 0:
                    continue
                rank = b[row, i]
                below = 0  # copies in earlier runs with b <= this b
                k = rank + 1
                while k > 0:
                    below += tree[k]
                    k -= k & -k
                disc += wi * (seen - below)
                run += wi
                in_run[rank] += wi
                per_b[rank] += wi
            for i in range(start, stop):
                if w[row, i] == 0:
                    continue
                rank = b[row, i]
                if in_run[rank] > 0:
                    tied_ab += in_run[rank] * (in_run[rank] - 1) // 2
                    in_run[rank] = 0
                k = rank + 1
                while k <= n_ranks:
                    tree[k] += w[row, i]
                    k += k & -k
            tied_a += run * (run - 1) // 2
            seen += run
            start = stop
        tied_b = 0
        for rank in range(n_ranks):
            tied_b += per_b[rank] * (per_b[rank] - 1) // 2
        pairs = seen * (seen - 1) // 2
        out[0, row] = pairs - tied_a - tied_b + tied_ab - 2 * disc
        out[1, row], out[2, row], out[3, row] = pairs, tied_a, tied_b
    return out


def _columns(a, b, w, in_run, n_ranks):  # pragma: no cover - compiled by numba
    m, nb = w.shape
    tree = np.zeros((n_ranks + 1, nb), dtype=w.dtype)
    seen = np.zeros(nb, dtype=w.dtype)
    disc = np.zeros(nb, dtype=w.dtype)
    tied_a = np.zeros(nb, dtype=w.dtype)
    tied_ab = np.zeros(nb, dtype=w.dtype)
    below = np.zeros(nb, dtype=w.dtype)
    run = np.zeros(nb, dtype=w.dtype)
    start = 0
    while start < m:
        stop = start + 1
        while stop < m and a[stop] == a[start]:
            stop += 1
        run[:] = 0
        for i in range(start, stop):
            rank = b[i]
            below[:] = 0
            k = rank + 1
            while k > 0:
                for c in range(nb):
                    below[c] += tree[k, c]
                k -= k & -k
            for c in range(nb):
                disc[c] += w[i, c] * (seen[c] - below[c])
                run[c] += w[i, c]
            if stop - start > 1:
                for c in range(nb):
                    in_run[rank, c] += w[i, c]
        for i in range(start, stop):
            rank = b[i]
            if stop - start > 1:
                for c in range(nb):
                    tied_ab[c] += in_run[rank, c] * (in_run[rank, c] - 1) // 2
                    in_run[rank, c] = 0
            else:
                for c in range(nb):
                    tied_ab[c] += w[i, c] * (w[i, c] - 1) // 2
            k = rank + 1
            while k <= n_ranks:
                for c in range(nb):
                    tree[k, c] += w[i, c]
                k += k & -k
        for c in range(nb):
            tied_a[c] += run[c] * (run[c] - 1) // 2
            seen[c] += run[c]
        start = stop
    # undo the tree's partial sums (in reverse order of building): copies per b rank
    for k in range(n_ranks, 0, -1):
        up = k + (k & -k)
        if up <= n_ranks:
            for c in range(nb):
                tree[up, c] -= tree[k, c]
    out = np.empty((4, nb), dtype=np.int64)  # C - D, all pairs, tied in a, tied in b
    for c in range(nb):
        tied_b = 0
        for k in range(1, n_ranks + 1):
            tied_b += np.int64(tree[k, c]) * (tree[k, c] - 1) // 2
        copies = np.int64(seen[c])
        pairs = copies * (copies - 1) // 2
        out[0, c] = pairs - tied_a[c] - tied_b + tied_ab[c] - 2 * np.int64(disc[c])
        out[1, c], out[2, c], out[3, c] = pairs, tied_a[c], tied_b
    return out


@dataclass(frozen=True)
class Kernels:
    """The compiled counters."""

    rows: Callable     # count_rows: many rows, one weight vector each
    columns: Callable  # count_columns: one pair of rows, many weight vectors


@functools.lru_cache(maxsize=1)
def _compiled() -> Kernels | None:
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True)
    return Kernels(jit(_rows), jit(_columns))


def kernel(*, load: bool = True) -> Kernels | None:
    """The compiled counters, or None without numba (or with ``RSA_BIAS_NUMBA=0``).

    Loading them costs about 0.3 s per process from numba's cache (about 3 s the first
    time, compiling), so ``load=False`` returns them only if they are loaded already:
    small jobs, for which the NumPy route is quicker than that, pass it.
    """
    if os.environ.get(ENV, "1") == "0" or (not load and _compiled.cache_info().currsize == 0):
        return None
    return _compiled()


def count_rows(a_ranks: np.ndarray, b_sorted: np.ndarray, weights: np.ndarray | None,
               fn: Kernels) -> np.ndarray:
    """``(4, R)`` int64 per row: ``C - D``, all pairs of copies, the pairs tied in ``a``
    and those tied in ``b``, with the compiled counters ``fn``.

    ``a_ranks`` (non-decreasing per row), ``b_sorted`` (dense ranks) and ``weights``
    (copies, default 1), all ``(R, m)`` and in ``a``-order.
    """
    b = np.ascontiguousarray(b_sorted, dtype=np.int64)
    w = (np.ones_like(b) if weights is None
         else np.ascontiguousarray(weights, dtype=np.int64))
    return fn.rows(np.ascontiguousarray(a_ranks, dtype=np.int64), b, w,
                   int(b.max(initial=0)) + 1)


def column_weights(weights: np.ndarray) -> np.ndarray:
    """Weight columns ``(m, B)`` as :func:`count_columns` counts them: C-contiguous int32
    while every count fits (all pairs of copies < 2**31: fewer than 46 000 copies per
    column), else int64. Prepare them once when they are counted against many rows."""
    dtype = np.int32 if int(weights.sum(axis=0).max(initial=0)) < 46_000 else np.int64
    return np.ascontiguousarray(weights, dtype=dtype)


def count_columns(a_ranks: np.ndarray, b_sorted: np.ndarray, weights: np.ndarray,
                  fn: Kernels) -> np.ndarray:
    """``(4, B)`` int64 for one pair of rows and each weight column: ``C - D``, all pairs
    of copies, the pairs tied in ``a`` and those tied in ``b``.

    ``a_ranks`` (non-decreasing) and ``b_sorted`` (dense ranks), ``(m,)`` in ``a``-order;
    ``weights (m, B)`` in the same order (int32 ones are taken as prepared by
    :func:`column_weights`). Each entry's Fenwick-tree steps are taken for all columns at
    once (the inner loops run over columns and vectorise).
    """
    w = weights if weights.dtype == np.int32 else column_weights(weights)
    a = np.ascontiguousarray(a_ranks, dtype=np.int64)
    b = np.ascontiguousarray(b_sorted, dtype=np.int64)
    n_ranks = int(b.max(initial=0)) + 1
    ties = bool(np.any(a[1:] == a[:-1]))  # per-rank copies of an a-tie run, if any
    in_run = np.zeros((n_ranks if ties else 1, w.shape[1]), dtype=w.dtype)
    return fn.columns(a, b, np.ascontiguousarray(w), in_run, n_ranks)
