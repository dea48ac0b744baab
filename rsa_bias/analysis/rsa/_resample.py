"""Bootstrap replicates of RSA model scores and noise ceilings, from draw counts.

The engine behind :func:`rsa_bias.analysis.rsa.inference.evaluate_models` (whose
module docstring describes the method): a :class:`_Problem` holds the model and
data RDM vectors over their shared stimuli; :func:`_draw_counts` turns random or
given resamples into how often each stimulus and subject is drawn, and
:func:`_replicates` computes every replicate's scores and noise ceilings from
those counts, in closed form for the linear and rank methods, by exact weighted pair
counts for Kendall's τ-a (:mod:`rsa_bias.analysis.rsa._weighted_pairs`) and by
building the resampled RDMs (as rsatoolbox) for τ-b.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rsa_bias._values import check_count
from rsa_bias.analysis._inputs import ArrayLike, choose
from rsa_bias.analysis._rdm_vectors import common_ids, pair_index, select_pairs
from rsa_bias.analysis.rsa import _weighted_pairs
from rsa_bias.analysis.rsa.ceilings import (
    _ceiling_per_group,
    _nc_from_gram,
    _nc_from_ranks,
    _safe_ratio,
    checked_stack,
    lead_labels,
    sorted_ranks,
    tie_ends,
)
from rsa_bias.analysis.rsa.compare import _METHODS as _COMPARE
from rsa_bias.analysis.rsa.forms import squareform

_BOOTSTRAPS: dict[str, tuple[bool, bool]] = {  # (resample stimuli, resample subjects)
    "stimulus": (True, False), "subject": (False, True), "both": (True, True),
    "none": (False, False)}
_ZERO = 1e-10  # relative squared norm below which an RDM counts as constant


# --------------------------------------------------------------------------- inputs

@dataclass
class _Problem:
    """Model vectors ``x (K, m)`` and data vectors ``y (S, m)`` over ``n`` shared stimuli.

    The stimuli are in ascending id order (``stimuli``), so seeded draws pick the same
    stimuli whatever the order of the input; ``rank[g]`` is the position in that order of
    the ``g``-th stimulus in the data's own order (where explicit ``indices`` point).
    """

    x: np.ndarray
    y: np.ndarray
    n: int
    method: str
    models: np.ndarray
    subjects: np.ndarray
    stimuli: np.ndarray
    rank: np.ndarray


def _problem(models: ArrayLike, data: ArrayLike, method: str, join: str) -> _Problem:
    choose(_COMPARE, method, "comparison method")
    sm, sd = checked_stack(models, "models"), checked_stack(data, "data")
    ids = common_ids(sd, sm, ("data", "models"), join, "inference")
    order = np.argsort(ids, kind="stable")  # resample by id: independent of the row order
    ids = ids[order]
    x = select_pairs(sm.vectors, sm.ids, ids)
    y = select_pairs(sd.vectors, sd.ids, ids)
    return _Problem(x, y, ids.size, method, lead_labels(sm), lead_labels(sd), ids,
                    np.argsort(order))


def _counts(idx: np.ndarray, size: int) -> np.ndarray:
    """Draw counts ``(B, size)`` of resampled positions ``idx (B, k)``."""
    rows = np.arange(idx.shape[0])[:, None] * size
    return np.bincount((idx + rows).ravel(), minlength=idx.shape[0] * size).reshape(
        idx.shape[0], size).astype(np.float64)


def _checked_indices(idx: Any, n_boot: int, size: int, what: str) -> np.ndarray:
    arr = np.asarray(idx)
    if arr.ndim != 2 or arr.shape != (n_boot, size):
        raise ValueError(f"indices[{what!r}] has shape {arr.shape}; expected (n_boot, {size})")
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= size:
        raise ValueError(f"indices[{what!r}] must be integer positions in [0, {size})")
    return arr


def _draw_counts(p: _Problem, kind: str, n_boot: int, seed: int | None,
                 indices: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus counts ``(B, n)`` and subject counts ``(B, S)`` of every replicate."""
    on_stim, on_subj = _BOOTSTRAPS[kind]
    s = p.y.shape[0]
    indices = dict(indices or {})
    unknown = set(indices) - {"stimulus", "subject"}
    if unknown or ("stimulus" in indices and not on_stim) or ("subject" in indices and not on_subj):
        raise ValueError(f"indices has keys {sorted(indices)}; bootstrap={kind!r} takes "
                         f"{[k for k, on in (('stimulus', on_stim), ('subject', on_subj)) if on]}")
    given = [np.asarray(a) for a in indices.values()]
    if given:
        n_boot = given[0].shape[0] if given[0].ndim == 2 else -1
    else:
        check_count(n_boot, "n_boot")
    rng = np.random.default_rng(seed)
    stim = rng.integers(0, p.n, (n_boot, p.n)) if on_stim else None  # drawn in id order
    if on_stim and "stimulus" in indices:  # positions in the data's order -> id order
        stim = p.rank[_checked_indices(indices["stimulus"], n_boot, p.n, "stimulus")]
    subj = (_checked_indices(indices.get("subject", rng.integers(0, s, (n_boot, s))),
                             n_boot, s, "subject") if on_subj else None)
    w = _counts(stim, p.n) if stim is not None else np.ones((n_boot, p.n))
    v = _counts(subj, s) if subj is not None else np.ones((n_boot, s))
    return w, v


# --------------------------------------------------------------------------- linear family

@dataclass
class _Linear:
    """Precomputed pieces for pearson / cosine / cosine_cov / corr_cov."""

    vecs: np.ndarray            # (R, m) models then subjects, centred for shift-free methods
    pa: np.ndarray              # needed pairs of RDMs (a, b)
    pb: np.ndarray
    products: np.ndarray        # (n_pairs, m) elementwise products of those pairs
    square: np.ndarray | None   # (R, n, n) for the whitened methods
    centred: bool
    k: int


def _prepare_linear(p: _Problem) -> _Linear:
    centred = p.method in ("pearson", "corr_cov")
    vecs = np.concatenate([p.x, p.y])
    if centred:
        vecs = vecs - vecs.mean(axis=1, keepdims=True)
    k, r = p.x.shape[0], vecs.shape[0]
    a, b = np.triu_indices(r)
    need = (a == b) | (b >= k)
    a, b = a[need], b[need]
    square = squareform(vecs) if p.method.endswith("_cov") else None
    return _Linear(vecs, a, b, vecs[a] * vecs[b], square, centred, k)


def _solve_coefs(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row/column effects ``c (B, R, n)`` of the double centring with copies' pairs missing.

    Per replicate the normal equations over distinct stimuli are
    ``(n/2 + 1 - w_i) c_i + ½ Σ_j w_j c_j = u_i`` — diagonal plus rank one.
    """
    total = w.sum(axis=1, keepdims=True)
    d = total / 2 + 1 - w
    active = w > 0
    singular = np.any(active & (np.abs(d) < 0.25), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        wd = np.where(active, w / d, 0.0)
        s = np.einsum("bri,bi->br", u, wd) / (1 + 0.5 * wd.sum(axis=1))[:, None]
        c = np.where(active[:, None], (u - 0.5 * s[..., None]) / d[:, None], 0.0)
    for b in np.flatnonzero(singular):  # d_i = 0 needs w_i = n/2 + 1: practically never
        on = active[b]
        a = np.diag(d[b, on]) + 0.5 * w[b, on][None, :]
        c[b] = 0.0
        c[b][:, on] = np.linalg.solve(a, u[b][:, on].T).T
    return c


def _cov_gram(lin: _Linear, w: np.ndarray, mom2: np.ndarray, mean: np.ndarray | None,
              ) -> np.ndarray:
    """Inner products of the whitened resampled RDMs (rsatoolbox's ``_cov_weighting``)."""
    total = w.sum(axis=1)
    u = -0.5 * np.einsum("rij,bj->bri", lin.square, w)
    if mean is not None:
        u += 0.5 * mean[..., None] * (total[:, None, None] - w[:, None, :])
    c = _solve_coefs(u, w)
    ct = c.transpose(0, 2, 1)
    tx = np.matmul(u * w[:, None, :], ct)
    wc = c * w[:, None, :]
    sw = wc.sum(axis=2)
    t4 = np.matmul(c * (w * (total[:, None] - 2 * w))[:, None, :], ct)
    t4 = 0.25 * (t4 + sw[:, :, None] * sw[:, None, :])
    return 0.5 * mom2 - tx - tx.transpose(0, 2, 1) + 2 * t4 + np.matmul(wc, ct)


def _pair_weights(w: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(w.shape[1], 1)
    return w[:, i] * w[:, j]


def _run_linear(lin: _Linear, w: np.ndarray, v: np.ndarray, method: str,
                ) -> tuple[np.ndarray, np.ndarray]:
    wp = _pair_weights(w)
    m_tot = wp.sum(axis=1)
    r = lin.vecs.shape[0]
    raw2 = np.full((w.shape[0], r, r), np.nan)
    flat = wp @ lin.products.T
    raw2[:, lin.pa, lin.pb] = flat
    raw2[:, lin.pb, lin.pa] = flat
    mean = (wp @ lin.vecs.T) / m_tot[:, None] if lin.centred else None
    mom2 = raw2 - m_tot[:, None, None] * mean[:, :, None] * mean[:, None, :] if lin.centred \
        else raw2
    gram = _cov_gram(lin, w, mom2, mean) if lin.square is not None else mom2
    diag = np.einsum("brr->br", gram)
    diag[diag <= _ZERO * np.einsum("brr->br", raw2)] = 0.0
    k = lin.k
    sim = _safe_ratio(gram[:, :k, k:], diag[:, :k, None] * diag[:, None, k:])
    # A subject RDM that is constant on the drawn pairs cannot be pooled (1/std): its
    # centred norm is rounding noise, so call it 0 and let the ceiling be NaN, as when each
    # resampled RDM is built and compared.
    m2 = np.einsum("brr->br", mom2)[:, k:]
    m2 = np.where(m2 <= _ZERO * np.einsum("brr->br", raw2)[:, k:], 0.0, m2)
    with np.errstate(divide="ignore"):
        scale = 1.0 / np.sqrt(m2 / m_tot[:, None])
    nc = _nc_from_gram(gram[:, k:, k:], scale, v)
    return np.einsum("bks,bs->bk", sim, v) / v.shape[1], nc


# --------------------------------------------------------------------------- rank family

@dataclass
class _Ranked:
    vecs: np.ndarray     # (R, m) models then subjects
    order: np.ndarray    # (R, m) argsort of each
    inverse: np.ndarray  # (R, m) argsort of order
    last: np.ndarray     # (R, m) tie-group ends in sorted order
    k: int


def _prepare_ranked(p: _Problem) -> _Ranked:
    vecs = np.concatenate([p.x, p.y])
    order = np.argsort(vecs, axis=1)
    last = tie_ends(np.take_along_axis(vecs, order, axis=1))
    return _Ranked(vecs, order, np.argsort(order, axis=1), last, p.x.shape[0])


def _fixed_order_ranks(rk: _Ranked, wp: np.ndarray) -> np.ndarray:
    """Weighted ranks ``(B, R, m)`` of every RDM: only the weights change between replicates."""
    ties = ~rk.last.all(axis=1)
    ws = wp[:, rk.order]
    ranks = sorted_ranks(ws, np.True_)
    if ties.any():
        ranks[:, ties] = sorted_ranks(ws[:, ties], rk.last[ties])
    return np.take_along_axis(ranks, rk.inverse[None], axis=-1)


def _run_ranked(rk: _Ranked, w: np.ndarray, v: np.ndarray, method: str,
                ) -> tuple[np.ndarray, np.ndarray]:
    wp = _pair_weights(w)
    m_tot = wp.sum(axis=1)
    ranks = _fixed_order_ranks(rk, wp)
    rc = ranks - ((m_tot + 1) / 2)[:, None, None]
    k = rk.k
    cross = np.matmul(rc[:, :k] * wp[:, None, :], rc[:, k:].transpose(0, 2, 1))
    if method == "rho_a":
        sim = cross * (12.0 / (m_tot**3 - m_tot))[:, None, None]
    else:
        norms = np.einsum("brm,bm,brm->br", rc, wp, rc)
        sim = _safe_ratio(cross, norms[:, :k, None] * norms[:, None, k:])
    nc = _nc_from_ranks(ranks[:, k:], wp, v, method)
    return np.einsum("bks,bs->bk", sim, v) / v.shape[1], nc


# --------------------------------------------------------------------------- explicit

def _resampled_vectors(vecs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rsatoolbox's ``subsample_pattern``: kept entries of the resampled RDMs and the mask.

    Stimulus ``i`` fills ``w_i`` consecutive positions; pairs of a stimulus with
    its own copy are missing (``keep`` False).
    """
    n = w.size
    idx = np.repeat(np.arange(n), w.astype(np.intp))
    p, q = np.triu_indices(idx.size, 1)
    keep = idx[p] != idx[q]
    return vecs[:, pair_index(idx[p][keep], idx[q][keep], n)], keep


def _run_explicit(p: _Problem, w: np.ndarray, v: np.ndarray, method: str,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Build each resampled RDM (as rsatoolbox does) and compare it: the reference path."""
    kernel = _COMPARE[method]
    scores, nc = np.empty((w.shape[0], p.x.shape[0])), np.empty((w.shape[0], 2))
    groups = np.arange(p.y.shape[0])
    for b in range(w.shape[0]):
        xe, keep = _resampled_vectors(p.x, w[b])
        ye, _ = _resampled_vectors(p.y, w[b])
        drawn = v[b] > 0  # only the RDMs drawn (a constant one's NaN τ-b stays out)
        scores[b] = kernel(xe, ye[drawn], keep, None) @ v[b, drawn] / v.shape[1]
        reps = v[b].astype(np.intp)
        lower, upper = _ceiling_per_group(np.repeat(ye, reps, axis=0),
                                          np.repeat(groups, reps), method, keep)
        nc[b] = lower.mean(), upper.mean()
    return scores, nc


@dataclass
class _Family:
    prepare: Callable[[_Problem], Any]
    run: Callable[[Any, np.ndarray, np.ndarray, str], tuple[np.ndarray, np.ndarray]]
    floats_per_replicate: Callable[[_Problem], int]


def _linear_floats(p: _Problem) -> int:
    r = p.x.shape[0] + p.y.shape[0]
    return p.x.shape[1] + r * r + (3 * r * p.n if p.method.endswith("_cov") else 0)


def _rank_floats(p: _Problem) -> int:
    return 8 * (p.x.shape[0] + 2 * p.y.shape[0] + 1) * p.x.shape[1]


_LINEAR = _Family(_prepare_linear, _run_linear, _linear_floats)
_RANKED = _Family(_prepare_ranked, _run_ranked, _rank_floats)
_EXPLICIT = _Family(lambda p: p, _run_explicit, lambda p: 1)
_TAU = _Family(lambda p: _weighted_pairs.prepare(p.x, p.y), _weighted_pairs.run,
                 lambda p: 2 * p.x.shape[1])
_FAMILIES: dict[str, _Family] = {
    "pearson": _LINEAR, "cosine": _LINEAR, "cosine_cov": _LINEAR, "corr_cov": _LINEAR,
    "spearman": _RANKED, "rho_a": _RANKED,
    "kendall_tau_a": _TAU, "kendall_tau_b": _TAU,
}


def _replicates(p: _Problem, w: np.ndarray, v: np.ndarray, *, chunk_floats: float = 4e6,
                family: _Family | None = None, with_full: bool = False) -> tuple:
    """Scores ``(B, K)`` and noise ceilings ``(B, 2)`` of every replicate, in chunks.

    With ``with_full``, also the full data's per-subject scores and ceiling terms when
    the family counts them with the replicates (τ: ``prepared.full``), else None.
    """
    family = family or _FAMILIES[p.method]
    prepared = family.prepare(p)
    step = int(max(1, min(256, chunk_floats // family.floats_per_replicate(p))))
    scores, nc = np.full((w.shape[0], p.x.shape[0]), np.nan), np.full((w.shape[0], 2), np.nan)
    valid = np.flatnonzero(np.count_nonzero(w, axis=1) >= 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, valid.size, step):
            rows = valid[start:start + step]
            scores[rows], nc[rows] = family.run(prepared, w[rows], v[rows], p.method)
    if p.y.shape[0] < 2:
        nc[:] = np.nan
    if not with_full:
        return scores, nc
    full = getattr(prepared, "full", None)
    if full is not None and p.y.shape[0] < 2:  # no ceiling from one subject
        full = full[0], np.full(1, np.nan), np.full(1, np.nan)
    return scores, nc, full
