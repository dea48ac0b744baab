"""Bootstrap replicates of Kendall τ-a and τ-b scores and noise ceilings, from the draw
weights.

In a stimulus bootstrap (rsatoolbox's ``bootstrap_sample_pattern``) stimulus ``i``
drawn ``w_i`` times fills ``w_i`` positions of the resampled RDM, and the pairs of a
stimulus with its own copies are missing: the resampled vector holds entry ``(i, j)``
of the original RDM ``w_i w_j`` times and nothing else. Its τ is therefore τ of
the original vectors with those integer *weights* (copies): concordant minus
discordant pairs of copies, all pairs, and (for τ-b) the pairs tied in each vector,
which
:mod:`rsa_bias.analysis.rsa._pair_counts` counts exactly, in integers, without
building the resampled vectors:

* scores: the partition of every (model, subject) pair is built once
  (:class:`FixedPair`) and counted for all replicates at once (only the weights
  change between replicates);
* noise ceilings: the pooled RDM is the mean of the subjects' average ranks, which
  for weighted entries are the weighted ranks of
  :func:`rsa_bias.analysis.rsa.ceilings.sorted_ranks` (multiples of 1/2, so their
  sums, and the ties between them, are exact: they are kept doubled, as integers);
  the pooled RDMs change with each
  replicate and are compared with each subject one replicate at a time, over the
  entries drawn (weight > 0) only.

Every replicate equals τ of the resampled RDMs built as rsatoolbox does (the
``kendall_tau_a`` comparison, which counts the same integers; for τ-b scipy's
``kendalltau``, whose integer counts and division are those of :func:`tau`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_bias.analysis.rsa._pair_counts import (
    KERNEL_ENTRIES,
    _flat_keys,
    _Level,
    _levels,
    _starts,
    _tied,
    concordance,
    dense_ranks,
    sorted_dense,
    tau_of,
)
from rsa_bias.analysis.rsa._tau_kernel import column_weights, count_columns, kernel
from rsa_bias.analysis.rsa.ceilings import _mean_over_drawn, sorted_ranks, tie_ends


@dataclass
class FixedPair:
    """The partition of one pair of rows, reused for many weight vectors.

    Counting with a new weight vector is then a few gathers and cumulative sums per
    level, without sorting or partitioning again.
    """

    order: np.ndarray      # a-order of the entries
    first_a: np.ndarray    # a-tie runs in a-order
    final: np.ndarray      # final arrangement (original positions)
    first_b: np.ndarray    # b-tie runs in the final arrangement
    first_ab: np.ndarray   # joint-tie runs in the final arrangement
    counts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, a_order: np.ndarray, a_ranks: np.ndarray, b_ranks: np.ndarray,
              ) -> FixedPair:
        """Partition for rows ``a`` (:func:`sorted_dense`) and ``b`` (dense ranks), (m,)."""
        m = b_ranks.size
        key, ad, nbits, rows = _flat_keys(a_order[None], a_ranks[None], b_ranks[None])
        counts = []
        for lv in _levels(key, ad, nbits, [a_order]):
            if not isinstance(lv, _Level):
                (entries,), final, ad_final = lv
                break
            zero = ~lv.bit
            entries = lv.carried[0]  # original positions, in this level's arrangement
            counts.append((entries[lv.bit], entries[zero], lv.ones_before_run()[zero],
                           lv.base[zero]))
        first_a = _starts(m, rows, a_ranks)
        first_b = _starts(m, rows, final)
        first_ab = (np.ones(m, dtype=bool) if ad is None
                    else first_b | _starts(m, rows, ad_final))
        return cls(a_order, first_a, entries, first_b, first_ab, counts)

    def numerator(self, wts: Weights) -> np.ndarray:
        """``C - D`` for every weight column of ``wts`` (:class:`Weights`)."""
        return self.pair_counts(wts)[0]

    def pair_counts(self, wts: Weights) -> np.ndarray:
        """``(4, B)``: ``C - D``, all pairs, pairs tied in ``a`` and in ``b``, per column."""
        disc = wts.discordant(self.counts)
        row0 = np.zeros(1, dtype=np.intp)
        w, own = wts.w, wts.own
        ta = _tied(w[self.order], self.first_a, row0)[0] if not self.first_a.all() else own
        wf = w[self.final] if not self.first_b.all() else None
        tb = own if wf is None else _tied(wf, self.first_b, row0)[0]
        tab = own if wf is None or self.first_ab.all() else _tied(wf, self.first_ab, row0)[0]
        total = wts.copies * (wts.copies - 1) // 2
        return np.stack(np.broadcast_arrays(total - ta - tb + tab - 2 * disc, total, ta, tb))


def counting_dtypes(w: np.ndarray) -> tuple[type, type]:
    """Narrowest integer dtypes for counting with the weights ``w (m, B)``.

    Returns the dtype of the weights and cumulative sums (holds every column's total)
    and that of their products (holds max weight x total).
    """
    total = int(w.sum(axis=0).max(initial=0))
    bound = int(w.max(initial=0)) * total

    def narrowest(x: int) -> type:
        return next(t for t in (np.int16, np.int32, np.int64) if x < np.iinfo(t).max)

    return narrowest(total), narrowest(bound)


#: Weight columns packed into one 64-bit word (16-bit lanes).
_LANES = 4


class Weights:
    """Weight columns ``w (m, B)`` (non-negative integers), prepared once for every pair.

    The discordant pairs are sums, over the levels of a :class:`FixedPair`, of each 0's
    weight times the weight of the 1s before it (differences of cumulative sums). When
    every column's total fits 16 bits, four columns share one 64-bit word: the
    cumulative sums and their differences are exact lane by lane (no lane exceeds the
    column total, and a later sum is never below an earlier one, so nothing carries or
    borrows across lanes), which quarters the slowest step (cumulative sums across
    entries); the products are then taken lane by lane in 32 bits (every level's sum of
    products is at most total**2 / 2 < 2**32).

    Parameters
    ----------
    w : numpy.ndarray of int, shape (m, B)
        Copies of each entry, one column per weight vector.
    """

    def __init__(self, w: np.ndarray) -> None:
        store, self.product = counting_dtypes(w)
        self.w = np.ascontiguousarray(w, dtype=store)
        w64 = self.w.astype(np.int64)
        self.own = np.sum(w64 * (w64 - 1) // 2, axis=0)  # pairs of copies of one entry
        self.copies = w64.sum(axis=0)
        self.n = w.shape[1]
        self.lanes = self.packed = None
        if self.copies.max(initial=0) < 2**16:
            width = -(-self.n // _LANES) * _LANES
            self.lanes = np.zeros((w.shape[0], width), dtype=np.uint16)
            self.lanes[:, :self.n] = w
            self.packed = self.lanes.view(np.uint64)

    def discordant(self, counts: list) -> np.ndarray:
        """Weighted discordant pairs (int64, one per column) of a partition's levels."""
        if self.packed is None:
            w, disc = self.w, np.zeros(self.n, dtype=np.int64)
            for ones, zeros, before_run, before_group in counts:
                cs = np.zeros((ones.size + 1, self.n), dtype=w.dtype)
                np.cumsum(w[ones], axis=0, out=cs[1:])
                disc += np.sum(np.multiply(w[zeros], cs[before_run] - cs[before_group],
                                           dtype=self.product), axis=0, dtype=np.int64)
            return disc
        disc = np.zeros(self.lanes.shape[1], dtype=np.int64)
        for ones, zeros, before_run, before_group in counts:
            cs = np.zeros((ones.size + 1, self.packed.shape[1]), dtype=np.uint64)
            np.cumsum(self.packed[ones], axis=0, out=cs[1:])
            ahead = (cs[before_run] - cs[before_group]).view(np.uint16)
            disc += np.einsum("ij,ij->j", self.lanes[zeros], ahead, dtype=np.uint32)
        return disc[:self.n]


@dataclass
class TauA:
    """Models and subjects, sorted and ranked once for every replicate."""

    x_ranks: np.ndarray   # (K, m) dense ranks of the model RDMs
    y_order: np.ndarray   # (S, m) sort order of the subject RDMs
    y_ranks: np.ndarray   # (S, m) their dense ranks in that order
    #: the full data, counted with the first replicates: per-subject scores (K, S) and
    #: noise-ceiling terms (S,) x 2, as ``inference._full_data`` gives them
    full: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def prepare(x: np.ndarray, y: np.ndarray) -> TauA:
    """Sort orders and ranks of models ``x (K, m)`` and subjects ``y (S, m)``."""
    y_order, y_ranks = sorted_dense(y)
    return TauA(dense_ranks(x), y_order, y_ranks)


def pair_weights(w: np.ndarray) -> np.ndarray:
    """Copies ``w_i w_j (B, m)`` of every pair from stimulus draw counts ``w (B, n)``."""
    i, j = np.triu_indices(w.shape[1], 1)
    counts = w.astype(np.int64)
    return counts[:, i] * counts[:, j]


def tau(counts: np.ndarray, method: str) -> np.ndarray:
    """τ-a or τ-b (``method``) from ``(4, ...)`` counts: ``C - D``, all pairs, tied in
    ``a`` (the subject), tied in ``b`` (the model or pooled RDM, scipy's ``x``)."""
    num, total, tied_a, tied_b = counts
    return tau_of(num, total, tied_b, tied_a, variant=method[-1])


def _scores(t: TauA, wp: np.ndarray, v: np.ndarray, method: str, max_entries: float = 4e6,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Mean over subjects (weighted by their draws) of each model's τ ``(B, K)``, and the
    per-subject τ of the first replicate ``(K, S)``.

    Each (model, subject) pair is counted for the replicates in column blocks of at most
    ``max_entries`` weights: by the compiled kernel where it is loaded (all columns in one
    pass over the entries), else by a partition built once (:class:`FixedPair`).
    """
    step = int(max(1, max_entries // wp.shape[1]))
    starts = range(0, wp.shape[0], step)
    (k, s), b = (t.x_ranks.shape[0], t.y_order.shape[0]), wp.shape[0]
    fn = kernel(load=wp.size * k * s >= KERNEL_ENTRIES)
    blocks = None if fn else [Weights(wp[c:c + step].T) for c in starts]
    out, first = np.zeros((b, k)), np.zeros((k, s))
    for js in range(s):
        drawn = v[:, js] > 0
        if not drawn.any():
            continue
        part = np.zeros((b, k))
        order = t.y_order[js]
        if fn:  # the weights in this subject's order, one block of columns at a time
            columns = [column_weights(wp[c:c + step, order].T) for c in starts]
        for jk in range(k):
            if fn:
                counts = [count_columns(t.y_ranks[js], t.x_ranks[jk][order], block, fn)
                          for block in columns]
            else:
                fp = FixedPair.build(order, t.y_ranks[js], t.x_ranks[jk])
                counts = [fp.pair_counts(block) for block in blocks]
            taus = tau(np.concatenate(counts, axis=1), method)
            part[:, jk] = np.where(drawn, v[:, js] * taus, 0.0)
            first[jk, js] = taus[0]
        out += part
    return out / s, first


def _doubled_ranks(ws: np.ndarray, a_ranks: np.ndarray) -> np.ndarray:
    """Twice the average ranks (integers) of entries repeated ``ws`` times, in sorted order.

    ``a_ranks`` are the (non-decreasing) ranks of the sorted values, giving the ties.
    """
    if np.all(a_ranks[:, 1:] != a_ranks[:, :-1]):
        return 2 * np.cumsum(ws, axis=1) - ws + 1
    return np.rint(2 * sorted_ranks(ws, tie_ends(a_ranks))).astype(np.int64)


def _ceilings(t: TauA, wp: np.ndarray, v: np.ndarray, method: str,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper noise-ceiling terms of each subject ``(B, S)`` x 2: pooled ranks
    compared with each subject (0 where a subject is not drawn).

    One replicate at a time, over the entries drawn: the subjects' (doubled) average
    ranks, their sum over subjects (the pooled RDM: the same order as the mean) and the
    sums leaving each subject out, each compared with the subject by exact counts.
    """
    s = v.shape[1]
    lower, upper = np.zeros((wp.shape[0], s)), np.zeros((wp.shape[0], s))
    load = 2 * s * np.count_nonzero(wp) >= KERNEL_ENTRIES
    for b in range(wp.shape[0]):
        subj = np.flatnonzero(v[b] > 0)
        keep = wp[b] > 0
        new = np.cumsum(keep) - 1                   # positions among the drawn entries
        order, a_ranks = t.y_order, t.y_ranks
        if subj.size < s:
            order, a_ranks = order[subj], a_ranks[subj]
        inside = keep[order]                        # (s', m) in each subject's order
        entries = order[inside].reshape(subj.size, -1)
        a_order = new[entries]
        a_ranks = a_ranks[inside].reshape(subj.size, -1)
        ws = wp[b][entries]                         # weights in each subject's order
        ranks = np.empty_like(a_order)
        np.put_along_axis(ranks, a_order, _doubled_ranks(ws, a_ranks), axis=1)
        counts = v[b, subj].astype(np.int64)[:, None]
        total = np.sum(counts * ranks, axis=0)      # the pooled RDM's order: exact
        # the pooled and left-out RDMs' ranks, in each subject's order
        b_sorted = np.concatenate([dense_ranks(total)[a_order],
                                   np.take_along_axis(dense_ranks(total - counts * ranks),
                                                      a_order, axis=1)])
        counts = concordance(None, np.tile(a_ranks, (2, 1)), b_sorted, np.tile(ws, (2, 1)),
                             load_kernel=load, with_ties=True)
        taus = tau(np.stack(counts), method)
        upper[b, subj], lower[b, subj] = taus[:subj.size], taus[subj.size:]
    return lower, upper


def run(t: TauA, w: np.ndarray, v: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(B, K)`` and noise ceilings ``(B, 2)`` of replicates with draw counts.

    ``w (B, n)``: stimulus draw counts; ``v (B, S)``: subject draw counts; ``method``
    is ``"kendall_tau_a"`` or ``"kendall_tau_b"``. The first call also counts the full
    data (every stimulus and subject once) as one more replicate, for nearly nothing
    (the partitions are shared), and keeps it in ``t.full``.
    """
    extra = t.full is None
    if extra:
        w = np.vstack([np.ones((1, w.shape[1]), dtype=w.dtype), w])
        v = np.vstack([np.ones((1, v.shape[1]), dtype=v.dtype), v])
    wp = pair_weights(w)
    scores, first = _scores(t, wp, v, method)
    lower, upper = _ceilings(t, wp, v, method)
    if extra:
        t.full = first, lower[0], upper[0]
        scores, lower, upper, v = scores[1:], lower[1:], upper[1:], v[1:]
    return scores, _mean_over_drawn(lower, upper, v)
