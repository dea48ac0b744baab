"""Exact pair counts behind Kendall's τ-a, for many comparisons at once.

τ-a of two vectors ``a``, ``b`` of ``M`` entries is ``(C - D) / (M(M-1)/2)`` where
``C``/``D`` count the concordant/discordant pairs of entries and a pair tied in
either vector counts in neither (rsatoolbox's ``compare_kendall_tau_a``). As
there, it is counted in integers::

    C - D = T - T_a - T_b + T_ab - 2 D

with ``T`` all pairs, ``T_a``/``T_b`` the pairs tied in ``a``/``b`` and ``T_ab``
those tied in both; only the final division rounds.

``D`` (Knight's algorithm): put the entries in ``a``-order; a discordant pair is
then an earlier entry with a larger rank of ``b`` and a strictly smaller ``a``.
The inversions are counted by a most-significant-bit-first radix partition of
``b``'s dense ranks: at bit ``k`` the entries are grouped by their higher bits
(in ``a``-order inside each group), every pair of a 1 before a 0 in a group is
an inversion whose ranks first differ at bit ``k``, and a stable partition of
each group by the bit gives the next level's groups. Each level is a few cumulative
sums and gathers over the entries of *all* compared rows together, so a
comparison costs O(M log M) numpy work and no Python loop runs over entries.
Entries tied in ``a`` stay adjacent in every group, so pairs tied in ``a`` are
left out by counting only the 1s before the start of an entry's ``a``-tie run.

Entries may carry integer weights (an entry of weight ``w`` stands for ``w``
copies: the resampled RDMs of a stimulus bootstrap); all counts are then of
pairs of copies.

Where numba is installed, :mod:`._tau_kernel` counts the same integers several times
faster; the partition here is the NumPy route and the kernels' reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rsa_bias.analysis.rsa._tau_kernel import count_rows, kernel

#: Entries counted in one job from which the compiled counters are loaded (0.3 s from
#: numba's cache, 3 s compiling): NumPy counts ~12e6 entries/s, the kernels 50-300e6.
KERNEL_ENTRIES = 5_000_000


def sorted_dense(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort order of each row and the 0-based dense ranks of the sorted values.

    Parameters
    ----------
    v : numpy.ndarray of shape (..., m)
        Values, without NaN.

    Returns
    -------
    order, ranks : numpy.ndarray of int64, shape (..., m)
        ``v`` sorted is ``take_along_axis(v, order)``; ``ranks`` are its dense ranks
        (equal values share one rank), non-decreasing along each row.
    """
    order = np.argsort(v, axis=-1)
    s = np.take_along_axis(v, order, axis=-1)
    ranks = np.zeros(s.shape, dtype=np.int64)
    ranks[..., 1:] = s[..., 1:] != s[..., :-1]
    np.cumsum(ranks, axis=-1, out=ranks)
    return order, ranks


def dense_ranks(v: np.ndarray) -> np.ndarray:
    """0-based dense ranks along the last axis (equal values share a rank), int64.

    Examples
    --------
    >>> import numpy as np
    >>> dense_ranks(np.array([[0.5, 0.1, 0.5, 0.3]])).tolist()
    [[2, 0, 2, 1]]
    """
    order, ranks = sorted_dense(v)
    out = np.empty_like(ranks)
    np.put_along_axis(out, order, ranks, axis=-1)
    return out


def _starts(n: int, row_starts: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Positions where a run of equal ``keys`` (or a row) begins."""
    new = np.zeros(n, dtype=bool)
    new[row_starts] = True
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    return new


def _tied(w: np.ndarray | None, first: np.ndarray, row_starts: np.ndarray) -> np.ndarray:
    """Pairs of copies tied within each run, summed per row (int64).

    ``w`` (copies, ``(N,)`` or ``(N, B)``) is in the arranged order of ``first``.
    """
    if first.all():  # no ties: only the copies of one entry
        if w is None:
            return np.zeros((row_starts.size,), dtype=np.int64)
        return np.add.reduceat(w.astype(np.int64) * (w - 1) // 2, row_starts, axis=0)
    runs = np.flatnonzero(first)
    if w is None:
        size = np.diff(np.r_[runs, first.size])
    elif runs.size == first.size:  # no ties: only the copies of one entry
        size = w.astype(np.int64)
    else:
        ends = np.cumsum(w, axis=0, dtype=np.int64)[np.r_[runs[1:], first.size] - 1]
        size = np.diff(ends, axis=0, prepend=np.zeros_like(ends[:1]))
    return np.add.reduceat(size * (size - 1) // 2, np.searchsorted(runs, row_starts), axis=0)


@dataclass
class _Level:
    """One level of the partition: the arranged entries, their bits, groups and tie runs."""

    carried: list[np.ndarray]  # the carried arrays, in this level's arrangement
    bit: np.ndarray    # bool: the entry's bit at this level
    starts: np.ndarray  # positions where a group (same higher bits, same row) begins
    runs: np.ndarray | None  # where an a-tie run inside a group begins (None: no ties)
    ones0: np.ndarray  # 1s before each position
    base: np.ndarray   # 1s before the entry's group

    def ones_before_run(self) -> np.ndarray:
        """1s before each entry's a-tie run (before the entry itself if no ties)."""
        if self.runs is None:
            return self.ones0
        return _spread(self.ones0[self.runs], self.runs, self.ones0.size)

    def segment_pairs(self, seg: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per row, the sum over segments (groups or runs) beginning at ``seg`` of
        ``Z s + Z(Z-1)/2`` (``Z`` zeros, ``s`` first position)."""
        n = self.ones0.size
        ends = np.empty(seg.size, dtype=np.int64)
        ends[:-1] = self.ones0[seg[1:]]
        ends[-1] = self.ones0[-1] + self.bit[-1]
        zeros = np.diff(np.r_[seg, n]) - (ends - self.ones0[seg])
        return np.add.reduceat(zeros * seg + zeros * (zeros - 1) // 2,
                               np.searchsorted(seg, rows))


def _spread(values: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    """Each group's value at every one of its positions (groups begin at ``starts``)."""
    sizes = np.empty(starts.size, dtype=np.intp)
    sizes[:-1] = starts[1:] - starts[:-1]
    sizes[-1] = n - starts[-1]
    return np.repeat(values, sizes, axis=0)


def _levels(key: np.ndarray, a_rank: np.ndarray | None, nbits: int,
            carry: list[np.ndarray]) -> Iterator[_Level | tuple[list[np.ndarray], np.ndarray,
                                                                np.ndarray | None]]:
    """Levels of the radix partition of ``key`` (row in the high bits, rank below).

    ``a_rank`` (dense ranks of ``a`` in the given order) is None when no row has ties
    in ``a``; the ``carry`` arrays (non-negative integers, e.g. weights) move with the
    entries. Yields each level, then the final arrangement ``(carry, key, a_rank)``:
    sorted stably by key, so equal ``b`` ranks of a row form runs.

    Moving the entries (a scatter per array) is the slowest step of a level, so the
    carried arrays travel in the low bits of the key whenever everything fits one 32- or
    64-bit integer: one scatter per level instead of one per array.
    """
    n = key.size
    idx = np.int32 if 2 * n < 2**31 else np.int64
    pos = np.arange(n, dtype=idx)
    moving = [*carry, *([] if a_rank is None else [a_rank])]
    widths = [_n_bits(x.max(initial=0)) for x in moving]
    used = _n_bits(key.max(initial=0)) + sum(widths)
    packed = used <= 62 and all(x.min(initial=0) >= 0 for x in moving)
    low = sum(widths) if packed else 0
    cur = key.astype(np.int32 if packed and used <= 30 and idx is np.int32 else
                     np.int64 if packed else idx)
    if packed:
        for x, width in zip(moving, widths, strict=True):
            cur <<= width
            cur |= x
    ad = a_rank

    def unpacked() -> tuple[list[np.ndarray], np.ndarray | None]:
        if not packed:
            return carry, ad
        out, shift = [], low
        for width in widths:
            shift -= width
            out.append((cur >> shift) & ((1 << width) - 1))
        return (out[:len(carry)], out[len(carry)] if a_rank is not None else None)

    for k in range(nbits - 1, -1, -1):
        high = cur >> (k + low)
        bit = (high & 1).astype(bool)
        high >>= 1
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(high[1:], high[:-1], out=first[1:])  # rows differ in their high bits
        ones0 = np.cumsum(bit, dtype=idx)
        ones0 -= bit
        starts = np.flatnonzero(first)
        base = _spread(ones0[starts], starts, n)
        runs = None
        carry, ad = unpacked()
        if ad is not None:
            first[1:] |= ad[1:] != ad[:-1]
            runs = np.flatnonzero(first)
        yield _Level(carry, bit, starts, runs, ones0, base)
        # stable partition of every group, its 0s then its 1s: a 0 moves to the zeros
        # before it plus the 1s before its group, a 1 to the 1s before it plus the zeros
        # before the end of its group
        zeros0 = pos - ones0
        zeros_end = np.empty(starts.size, dtype=idx)
        zeros_end[:-1] = zeros0[starts[1:]]
        zeros_end[-1] = n - ones0[-1] - bit[-1]
        new = ones0 + _spread(zeros_end, starts, n)
        zeros0 += base
        new -= zeros0
        new *= bit
        new += zeros0
        if packed:
            cur = _moved(cur, new)
        else:
            cur, *carry = (_moved(x, new) for x in (cur, *carry))
            ad = None if ad is None else _moved(ad, new)
    carry, ad = unpacked()
    yield carry, cur >> low, ad


def _moved(x: np.ndarray, new: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    out[new] = x
    return out


def weighted_level(lv: _Level, r: int, rows: np.ndarray) -> np.ndarray:
    """Weighted discordant pairs of one level, per row (weights carried first)."""
    ws = lv.carried[0].copy()
    zw = ws * ~lv.bit
    ws -= zw                                 # the weights of the 1s
    c0 = np.cumsum(ws, dtype=ws.dtype)
    c0 -= ws                                 # weight of the 1s before each entry
    # each 0 pairs with the 1s before it (before its a-tie run) minus those before
    # its group
    if lv.runs is None:
        own = _row_sums(zw * c0, r)
    else:
        own = _segment_sums(c0, zw, lv.runs, rows)
    return own - _segment_sums(c0, zw, lv.starts, rows)


def _segment_sums(c0: np.ndarray, zw: np.ndarray, seg: np.ndarray,
                  rows: np.ndarray) -> np.ndarray:
    """Per row, the sum over segments of (value of ``c0`` at the segment's start) x
    (sum of ``zw`` over the segment)."""
    return np.add.reduceat(c0[seg].astype(np.int64) * np.add.reduceat(zw, seg),
                           np.searchsorted(seg, rows))


def _row_sums(x: np.ndarray, r: int) -> np.ndarray:
    """Sums (int64) over each of ``r`` equal rows of the flat ``x``."""
    return x.reshape(r, -1).sum(axis=1, dtype=np.int64)


def _n_bits(max_rank: int) -> int:
    return max(int(max_rank).bit_length(), 1)


def _flat_keys(a_order: np.ndarray | None, a_ranks: np.ndarray, b_ranks: np.ndarray,
               ) -> tuple[np.ndarray, np.ndarray | None, int, np.ndarray]:
    """Flat keys ``row << nbits | rank of b`` in ``a``-order, for rows ``(R, m)`` (``b``
    already in ``a``-order when ``a_order`` is None)."""
    r, m = b_ranks.shape
    b_sorted = b_ranks if a_order is None else np.take_along_axis(b_ranks, a_order, axis=1)
    nbits = _n_bits(b_ranks.max(initial=0))
    key = (np.arange(r, dtype=np.int64)[:, None] << nbits) | b_sorted
    ties = bool(np.any(a_ranks[:, 1:] == a_ranks[:, :-1]))
    return key.ravel(), a_ranks.ravel() if ties else None, nbits, np.arange(r) * m


def concordance(a_order: np.ndarray | None, a_ranks: np.ndarray, b_ranks: np.ndarray,
                weights: np.ndarray | None = None, *, load_kernel: bool = False,
                with_ties: bool = False) -> tuple[np.ndarray, ...]:
    """``C - D`` and the number of pairs of each row pair, in integers.

    Parameters
    ----------
    a_order, a_ranks : numpy.ndarray of int64, shape (R, m)
        :func:`sorted_dense` of the ``a`` rows (any non-decreasing integer ranks that
        tie the same entries will do). ``a_order`` None: ``b_ranks`` and ``weights``
        are given in ``a``-order already.
    b_ranks : numpy.ndarray of int64, shape (R, m)
        :func:`dense_ranks` of the ``b`` rows (any non-negative integers up to about
        ``m`` that order ``b`` the same way).
    weights : numpy.ndarray of int64, shape (R, m), optional
        Copies of each entry (default 1).
    load_kernel : bool, default False
        Load the compiled counters of :mod:`._tau_kernel` (see :data:`KERNEL_ENTRIES`);
        without it they are used only if some earlier call loaded them.
    with_ties : bool, default False
        Also return the pairs tied in ``a`` and those tied in ``b`` (for τ-b).

    Returns
    -------
    numerator, total : numpy.ndarray of int64, shape (R,)
        Concordant minus discordant pairs, and all pairs ``M(M-1)/2`` (``M`` copies).
    tied_a, tied_b : numpy.ndarray of int64, shape (R,)
        With ``with_ties``: pairs of copies tied in ``a``, and in ``b`` (each counting
        the pairs of copies of one entry).
    """
    r, m = b_ranks.shape
    fn = kernel(load=load_kernel)
    if fn is not None:
        def in_a_order(x):
            return x if a_order is None or x is None else np.take_along_axis(x, a_order, 1)
        counts = count_rows(a_ranks, in_a_order(b_ranks), in_a_order(weights), fn)
        return tuple(counts) if with_ties else (counts[0], counts[1])
    key, ad, nbits, rows = _flat_keys(a_order, a_ranks, b_ranks)
    n = key.size
    pos = np.arange(n, dtype=np.int32 if 2 * n < 2**31 else np.int64)
    w = None
    if weights is not None:  # int32 when no partial sum (max weight x copies) can overflow
        small = int(weights.max(initial=0)) * int(weights.sum(axis=1).max(initial=0)) < 2**31
        w = weights if a_order is None else np.take_along_axis(weights, a_order, axis=1)
        w = w.astype(np.int32 if small else np.int64).ravel()
    disc = np.zeros(r, dtype=np.int64)
    for lv in _levels(key, ad, nbits, [] if w is None else [w]):
        if not isinstance(lv, _Level):
            carried, final, ad_final = lv
            break
        if w is None:
            # the 1s before each 0 of a segment (group or run) starting at s with Z 0s
            # sum to (sum of the 0s' positions) - Z s - Z(Z-1)/2; a 0's discordant 1s are
            # those before its run minus those before its group
            if lv.runs is None:
                zero_pos = _row_sums(pos * ~lv.bit, r)
            else:
                zero_pos = lv.segment_pairs(lv.runs, rows)
            disc += zero_pos - lv.segment_pairs(lv.starts, rows)
            continue
        disc += weighted_level(lv, r, rows)
    ta = _tied(w, _starts(n, rows, a_ranks.ravel()), rows)
    wf = None if w is None else carried[0]
    first_b = _starts(n, rows, final)
    tb = _tied(wf, first_b, rows)
    # with no ties in a, only the copies of one entry are tied in both
    first_ab = np.ones(n, dtype=bool) if ad is None else first_b | _starts(
        n, rows, ad_final)
    tab = _tied(wf, first_ab, rows)
    copies = np.full(r, m, dtype=np.int64) if w is None else np.add.reduceat(w, rows)
    total = copies * (copies - 1) // 2
    num = total - ta - tb + tab - 2 * disc
    return (num, total, ta, tb) if with_ties else (num, total)


def tau_rows(x: np.ndarray, y: np.ndarray, *, variant: str = "a",
             max_entries: int = 2_000_000) -> np.ndarray:
    """Exact Kendall τ-a (or τ-b) of every row of ``x`` with every row of ``y``.

    Parameters
    ----------
    x : numpy.ndarray of shape (kx, m)
    y : numpy.ndarray of shape (ky, m)
        Vectors without NaN, ``m >= 2``.
    variant : {"a", "b"}, default "a"
        τ-a as rsatoolbox's ``compare_kendall_tau_a`` (0 for a constant vector), or τ-b
        as ``scipy.stats.kendalltau`` (NaN for a constant one): :func:`tau_of`.
    max_entries : int, default 2_000_000
        Entries counted together (pairs of rows are processed in chunks of this size).

    Returns
    -------
    numpy.ndarray of shape (kx, ky), clipped to [-1, 1]

    Examples
    --------
    3 concordant pairs, 2 discordant and one tied in ``b``, of 6:

    >>> import numpy as np
    >>> tau = tau_rows(np.array([[1.0, 2, 3, 4]]), np.array([[1.0, 3, 2, 2]]))
    >>> bool(tau[0, 0] == (3 - 2) / 6)
    True
    """
    (kx, m), (ox, rx), ry = x.shape, sorted_dense(x), dense_ranks(y)
    i, j = (t.ravel() for t in np.indices((kx, y.shape[0])))
    out = np.empty(i.size)
    step = max(1, max_entries // max(m, 1))
    load = i.size * m >= KERNEL_ENTRIES
    for s in range(0, i.size, step):
        sl = slice(s, s + step)
        out[sl] = tau_of(*concordance(ox[i[sl]], rx[i[sl]], ry[j[sl]], load_kernel=load,
                                      with_ties=True), variant=variant)
    return out.reshape(kx, y.shape[0])


def tau_of(num, total, tied_x, tied_y, *, variant: str) -> np.ndarray:
    """τ-a ``(C - D) / T`` or τ-b ``(C - D) / sqrt(T - T_x) / sqrt(T - T_y)`` from counts
    (scipy's order of operations, ``x`` its first vector; NaN for a constant one), clipped."""
    if variant == "a":
        return np.clip(num / total, -1.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant vector: 0 / 0
        return np.clip(num / np.sqrt(total - tied_x) / np.sqrt(total - tied_y), -1.0, 1.0)
