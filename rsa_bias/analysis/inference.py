"""Inference for RSA: bootstrap evaluation of model RDMs, permutation tests, model tests.

A model's *score* is its comparison with each subject's data RDM
(:func:`~rsa_bias.analysis.compare.compare_rdms`), averaged over subjects, as
rsatoolbox's ``eval_fixed`` / ``eval_bootstrap*``.

Bootstrap over stimuli (rsatoolbox's ``bootstrap_sample_pattern``): a stimulus
drawn ``w_i`` times appears ``w_i`` times in the resampled RDMs, and the
dissimilarities between a stimulus and its own copies (zeros that any model
predicts trivially) are excluded, so the pair ``(i, j)`` of distinct stimuli
enters with weight ``w_i w_j``. Every replicate is then computed *in closed form
from the weights* instead of building the resampled RDMs:

* ``pearson``/``cosine``: weighted moments, one GEMM of the pair weights of all
  replicates against the products of the RDM vectors;
* ``corr_cov``/``cosine_cov``: the whitening (double centring of ``-D/2`` with
  the copies' pairs missing) reduces to a diagonal-plus-rank-one system per
  replicate, solved exactly (Sherman–Morrison) — the numbers are rsatoolbox's
  weighted least-squares centring of the resampled RDM;
* ``spearman``/``rho_a``: ranks of the expanded vector from cumulative weights
  in each RDM's fixed sort order (ties averaged exactly);
* ``kendall_tau_a``/``kendall_tau_b``: resampled vectors are built and
  compared one replicate at a time (slow, as in rsatoolbox).

Replicates with fewer than 3 distinct stimuli are NaN (as rsatoolbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
import xarray as xr

from rsa_bias.analysis._align import align_stimuli
from rsa_bias.analysis.ceilings import (
    _ceiling_per_group,
    _nc_from_gram,
    _nc_from_ranks,
    _safe_ratio,
    checked_stack,
    lead_labels,
    result_attrs,
    sorted_ranks,
    tie_ends,
)
from rsa_bias.analysis.compare import _METHODS as _COMPARE
from rsa_bias.analysis.compare import _centred, _centred_ranks, _select_pairs, _whiten
from rsa_bias.analysis.rdms import choose, squareform

ArrayLike = xr.DataArray | np.ndarray
_BOOTSTRAPS: dict[str, tuple[bool, bool]] = {  # (resample stimuli, resample subjects)
    "stimulus": (True, False), "subject": (False, True), "both": (True, True),
    "none": (False, False)}
_ZERO = 1e-10  # relative squared norm below which an RDM counts as constant


# --------------------------------------------------------------------------- inputs

@dataclass
class _Problem:
    """Model vectors ``x (K, m)`` and data vectors ``y (S, m)`` over ``n`` shared stimuli."""

    x: np.ndarray
    y: np.ndarray
    n: int
    method: str
    models: np.ndarray
    subjects: np.ndarray
    stimuli: np.ndarray


def _problem(models: ArrayLike, data: ArrayLike, method: str, join: str) -> _Problem:
    choose(_COMPARE, method, "comparison method")
    sm, sd = checked_stack(models, "models"), checked_stack(data, "data")
    labels = [xr.DataArray(np.zeros(s.ids.size), dims="stimulus", coords={"stimulus": s.ids})
              for s in (sd, sm)]
    ids = align_stimuli(*labels, names=["data", "models"], join=join)[0]["stimulus"].values
    if ids.size < 3:
        raise ValueError(f"data and models share {ids.size} stimuli; inference needs at least 3")
    x = _select_pairs(sm.vectors, sm.ids, ids)
    y = _select_pairs(sd.vectors, sd.ids, ids)
    return _Problem(x, y, ids.size, method, lead_labels(sm), lead_labels(sd), ids)


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
    rng = np.random.default_rng(seed)
    stim = (_checked_indices(indices.get("stimulus", rng.integers(0, p.n, (n_boot, p.n))),
                             n_boot, p.n, "stimulus") if on_stim else None)
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
    with np.errstate(divide="ignore"):
        scale = 1.0 / np.sqrt(np.einsum("brr->br", mom2)[:, k:] / m_tot[:, None])
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

def _pair_index(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of pair ``(i, j)``, ``i != j``, in a condensed vector over ``n`` stimuli."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo * n - lo * (lo + 1) // 2 + (hi - lo - 1)


def _resampled_vectors(vecs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rsatoolbox's ``subsample_pattern``: kept entries of the resampled RDMs and the mask.

    Stimulus ``i`` fills ``w_i`` consecutive positions; pairs of a stimulus with
    its own copy are missing (``keep`` False).
    """
    n = w.size
    idx = np.repeat(np.arange(n), w.astype(np.intp))
    p, q = np.triu_indices(idx.size, 1)
    keep = idx[p] != idx[q]
    return vecs[:, _pair_index(idx[p][keep], idx[q][keep], n)], keep


def _run_explicit(p: _Problem, w: np.ndarray, v: np.ndarray, method: str,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Build each resampled RDM (as rsatoolbox does) and compare it: the reference path."""
    kernel = _COMPARE[method]
    scores, nc = np.empty((w.shape[0], p.x.shape[0])), np.empty((w.shape[0], 2))
    groups = np.arange(p.y.shape[0])
    for b in range(w.shape[0]):
        xe, keep = _resampled_vectors(p.x, w[b])
        ye, _ = _resampled_vectors(p.y, w[b])
        scores[b] = kernel(xe, ye, keep, None) @ v[b] / v.shape[1]
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
_FAMILIES: dict[str, _Family] = {
    "pearson": _LINEAR, "cosine": _LINEAR, "cosine_cov": _LINEAR, "corr_cov": _LINEAR,
    "spearman": _RANKED, "rho_a": _RANKED,
    "kendall_tau_a": _EXPLICIT, "kendall_tau_b": _EXPLICIT,
}


def _replicates(p: _Problem, w: np.ndarray, v: np.ndarray, *, chunk_floats: float = 4e6,
                family: _Family | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(B, K)`` and noise ceilings ``(B, 2)`` of every replicate, in chunks."""
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
    return scores, nc


# --------------------------------------------------------------------------- evaluate

def _full_data(p: _Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-subject scores ``(K, S)`` and per-subject noise-ceiling terms ``(S,)`` x 2."""
    keep = np.ones(p.x.shape[1], dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_subject = _COMPARE[p.method](p.x, p.y, keep, None)
        if p.y.shape[0] < 2:
            return per_subject, np.full(1, np.nan), np.full(1, np.nan)
        lower, upper = _ceiling_per_group(p.y, np.arange(p.y.shape[0]), p.method)
    return per_subject, lower, upper


def _interval(values: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standard error (ddof=1) and percentile interval over finite replicates, per column."""
    ok = np.isfinite(values).all(axis=1)
    kept = values[ok]
    if kept.shape[0] < 2:
        nan = np.full(values.shape[1], np.nan)
        return nan, nan, nan
    low, high = np.quantile(kept, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
    return kept.std(axis=0, ddof=1), low, high


def evaluate_models(models: ArrayLike, data: ArrayLike, *, method: str = "corr_cov",
                    bootstrap: str | None = "stimulus", n_boot: int = 1000,
                    seed: int | None = None, ci: float = 0.95, join: str = "exact",
                    indices: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Score model RDMs against subjects' data RDMs, with bootstrap intervals and noise ceiling.

    Parameters
    ----------
    models : xarray.DataArray with dims ("model", "stimulus_i", "stimulus_j") or
        ("model", "pair"); any name for the leading dim (its coord gives the model
        names); a single RDM is one model. numpy: ``(K, n, n)`` or ``(K, m)``.
    data : xarray.DataArray with dims ("subject", "stimulus_i", "stimulus_j") or
        ("subject", "pair") (any leading dim name), one RDM per subject.
    method : comparison method of :func:`~rsa_bias.analysis.compare.compare_rdms`
        (default ``"corr_cov"``).
    bootstrap : ``"stimulus"`` (default; rsatoolbox's ``eval_bootstrap_pattern``),
        ``"subject"`` (``eval_bootstrap_rdm``), ``"both"`` (``eval_bootstrap``) or
        ``None`` (no resampling; standard error over subjects).
    n_boot : number of bootstrap replicates.
    seed : seed of ``numpy.random.default_rng``; stimulus draws ``(n_boot, n)``
        are made before subject draws ``(n_boot, S)``.
    ci : coverage of the percentile interval.
    join : ``"exact"`` refuses models and data over different stimuli (naming the
        ids); ``"inner"`` uses the stimuli both have (in the data's order).
    indices : explicit resamples instead of random ones: ``{"stimulus": (B, n),
        "subject": (B, S)}`` integer positions into the data's stimulus / subject
        order (for paired analyses or to reproduce another tool's draws).

    Returns
    -------
    xarray.Dataset
        ``score(model)`` (mean over subjects), ``score_subject(model, subject)``,
        ``noise_ceiling_lower``/``noise_ceiling_upper`` (and ``_subject(subject)``
        terms), ``standard_error(model)``, ``ci_low(model)``/``ci_high(model)``;
        with a bootstrap also ``score_bootstrap(replicate, model)`` and
        ``noise_ceiling_bootstrap(replicate, bound)``. Flat attrs record
        ``method``, ``bootstrap``, ``n_boot``, ``seed``, ``ci``, ``n_stimuli``,
        ``n_subjects`` and ``n_invalid`` (replicates with < 3 distinct stimuli,
        NaN and left out of the summaries).

    Notes
    -----
    Every replicate equals rsatoolbox's for the same draws (scores and
    bootstrapped noise ceilings; see the module docstring for how they are
    computed without building resampled RDMs). Differences: the standard error is
    the plain bootstrap standard deviation (rsatoolbox's ``Result`` inflates the
    variance by ``n/(n-1)``); without a bootstrap it is the standard error of the
    mean over subjects (ddof=1) with a t interval; NaN RDMs are refused.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.random(45)
    >>> data = truth + 0.5 * rng.random((5, 45))
    >>> models = np.stack([truth, rng.random(45)])
    >>> res = evaluate_models(models, data, method="pearson", n_boot=200, seed=0)
    >>> bool(res.score[0] > res.score[1]), res.score_bootstrap.dims
    (True, ('replicate', 'model'))
    """
    kind = choose(_BOOTSTRAPS, "none" if bootstrap is None else bootstrap, "bootstrap")
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    p = _problem(models, data, method, join)
    kind_name = "none" if bootstrap is None else str(bootstrap)
    if kind[1] and p.y.shape[0] < 2:
        raise ValueError("bootstrap over subjects needs RDMs of at least 2 subjects")
    per_subject, lower, upper = _full_data(p)
    ds = xr.Dataset(
        {"score": ("model", per_subject.mean(axis=1)),
         "score_subject": (("model", "subject"), per_subject),
         "noise_ceiling_lower": float(lower.mean()), "noise_ceiling_upper": float(upper.mean()),
         "noise_ceiling_lower_subject": ("subject", np.broadcast_to(lower, p.y.shape[:1])),
         "noise_ceiling_upper_subject": ("subject", np.broadcast_to(upper, p.y.shape[:1]))},
        coords={"model": p.models, "subject": p.subjects})
    n_invalid = 0
    if kind_name == "none":
        _subject_summary(ds, per_subject, ci)
    else:
        w, v = _draw_counts(p, kind_name, n_boot, seed, indices)
        scores, nc = _replicates(p, w, v)
        n_invalid = int(np.isnan(scores).all(axis=1).sum()) if scores.size else 0
        ds["score_bootstrap"] = (("replicate", "model"), scores)
        ds["noise_ceiling_bootstrap"] = (("replicate", "bound"), nc)
        ds = ds.assign_coords(replicate=np.arange(w.shape[0]), bound=["lower", "upper"])
        se, low, high = _interval(scores, ci)
        ds["standard_error"], ds["ci_low"], ds["ci_high"] = (("model", a) for a in (se, low, high))
        n_boot = w.shape[0]
    ds.attrs = result_attrs("evaluate_models", method=method, bootstrap=kind_name,
                            n_boot=n_boot if kind_name != "none" else 0, seed=seed, ci=ci,
                            n_stimuli=p.n, n_subjects=int(p.y.shape[0]), n_invalid=n_invalid,
                            explicit_indices=indices is not None)
    return ds


def _subject_summary(ds: xr.Dataset, per_subject: np.ndarray, ci: float) -> None:
    s = per_subject.shape[1]
    se = per_subject.std(axis=1, ddof=1) / np.sqrt(s) if s > 1 else np.full(len(per_subject),
                                                                              np.nan)
    half = se * scipy.stats.t.ppf((1 + ci) / 2, max(s - 1, 1))
    ds["standard_error"] = ("model", se)
    ds["ci_low"] = ("model", per_subject.mean(axis=1) - half)
    ds["ci_high"] = ("model", per_subject.mean(axis=1) + half)


# --------------------------------------------------------------------------- permutation

def _unit(t: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", t, t))
    return np.divide(t, norms[:, None], out=np.zeros_like(t), where=norms[:, None] > 0)


def _rho_a_features(v: np.ndarray) -> np.ndarray:
    m = v.shape[1]
    return _centred_ranks(v) * np.sqrt(12.0 / (m**3 - m))


def _full_keep(v: np.ndarray) -> np.ndarray:
    return np.ones(v.shape[1], dtype=bool)


#: Features whose inner product is the comparison; permuting stimuli permutes them.
_FEATURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pearson": lambda v: _unit(_centred(v)),
    "cosine": _unit,
    "spearman": lambda v: _unit(_centred_ranks(v)),
    "rho_a": _rho_a_features,
    "cosine_cov": lambda v: _unit(_whiten(v, _full_keep(v), None)),
    "corr_cov": lambda v: _unit(_whiten(_centred(v), _full_keep(v), None)),
}


def _permuted_positions(perms: np.ndarray, n: int, with_diagonal: bool) -> np.ndarray:
    """Feature positions after relabelling stimulus ``i`` as ``perm[i]`` (one row per perm)."""
    i, j = np.triu_indices(n, 1)
    pos = _pair_index(perms[:, i], perms[:, j], n)
    return np.concatenate([pos, i.size + perms], axis=1) if with_diagonal else pos


def _null_scores(p: _Problem, perms: np.ndarray) -> np.ndarray:
    """Mean-over-subjects score of every model with its stimuli permuted, ``(P, K)``."""
    if p.method not in _FEATURES:  # Kendall: compare each permuted model RDM
        keep = _full_keep(p.x)
        pos = _permuted_positions(perms, p.n, False)
        return np.stack([_COMPARE[p.method](p.x[:, q], p.y, keep, None).mean(axis=1)
                         for q in pos])
    feats = _FEATURES[p.method]
    fx, z = feats(p.x), feats(p.y).mean(axis=0)
    inverse = np.argsort(perms, axis=1)  # <f(x) permuted by π, z> = <f(x), z permuted by π⁻¹>
    out = np.empty((perms.shape[0], p.x.shape[0]))
    step = max(1, int(2e6 // z.size))
    for start in range(0, perms.shape[0], step):
        pos = _permuted_positions(inverse[start:start + step], p.n, p.method.endswith("_cov"))
        out[start:start + step] = z[pos] @ fx.T
    return out


_ALTERNATIVES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "greater": lambda null, obs: null >= obs - 1e-12,
    "less": lambda null, obs: null <= obs + 1e-12,
}


def permutation_test(models: ArrayLike, data: ArrayLike, *, method: str = "corr_cov",
                     n_perm: int = 1000, seed: int | None = None,
                     alternative: str = "greater", join: str = "exact") -> xr.Dataset:
    """Permutation test of each model's score: relabel the stimuli of the model RDM.

    Parameters
    ----------
    models, data, method, join : as in :func:`evaluate_models`.
    n_perm : number of random permutations (the same ones for every model).
    seed : seed of ``numpy.random.default_rng``.
    alternative : ``"greater"`` (default: the model fits better than chance) or
        ``"less"``.

    Returns
    -------
    xarray.Dataset
        ``score(model)`` (mean over subjects), ``p_value(model)`` = (1 + #null at
        least as extreme) / (1 + n_perm), and ``null(permutation, model)``.

    Notes
    -----
    Every method except Kendall's compares through features that permuting the
    stimuli only reorders (centred/ranked/whitened and normalised RDM vectors),
    so the whole null is one gather and one matrix product against the mean
    data features. Null values equal to the observed score within 1e-12 (e.g.
    from permutations within a category of a categorical model) count as
    reaching it.
    """
    test = choose(_ALTERNATIVES, alternative, "alternative")
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    p = _problem(models, data, method, join)
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.tile(np.arange(p.n), (n_perm, 1)), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = _COMPARE[method](p.x, p.y, _full_keep(p.x), None).mean(axis=1)
        null = _null_scores(p, perms)
    p_value = (1 + test(null, observed[None, :]).sum(axis=0)) / (1 + n_perm)
    return xr.Dataset(
        {"score": ("model", observed), "p_value": ("model", p_value),
         "null": (("permutation", "model"), null)},
        coords={"model": p.models},
        attrs=result_attrs("permutation_test", method=method, n_perm=n_perm, seed=seed,
                           alternative=alternative, n_stimuli=p.n,
                           n_subjects=int(p.y.shape[0])))


# --------------------------------------------------------------------------- corrections

def _bonferroni(p: np.ndarray) -> np.ndarray:
    return np.minimum(p * p.size, 1.0)


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values."""
    order = np.argsort(p)
    scaled = p[order] * p.size / np.arange(1, p.size + 1)
    out = np.empty_like(p)
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out


_CORRECTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "holm": _holm, "bonferroni": _bonferroni, "fdr": _fdr, "none": lambda p: p.copy()}


def correct_pvalues(p: np.ndarray, *, correction: str = "holm") -> np.ndarray:
    """Multiple-comparison adjusted p-values over a family (NaN entries are ignored).

    ``correction``: ``"holm"`` (default), ``"bonferroni"``, ``"fdr"``
    (Benjamini–Hochberg) or ``"none"``.
    """
    adjust = choose(_CORRECTIONS, correction, "correction")
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = adjust(p[ok])
    return out


# --------------------------------------------------------------------------- model tests

def _bootstrap_tests(result: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rsatoolbox's bootstrap tests (``bootstrap_pair_tests`` and its 0 / ceiling tests)."""
    if "score_bootstrap" not in result:
        raise ValueError("test='bootstrap' needs a bootstrap distribution; run "
                         "evaluate_models with bootstrap='stimulus'|'subject'|'both' or use "
                         "test='t'")
    e = result["score_bootstrap"].values
    nc = result["noise_ceiling_bootstrap"].sel(bound="lower").values
    ok = np.isfinite(e).all(axis=1)
    e, nc, n = e[ok], nc[ok], int(ok.sum())
    less = (e[:, :, None] < e[:, None, :]).sum(axis=0)
    ties = (e[:, :, None] == e[:, None, :]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        prop = less / (n - ties)
    pair = (n - 1) / n * 2 * np.minimum(prop, 1 - prop) + 1 / n
    zero = ((e <= 0).sum(axis=0) + 1) / n
    below = ((nc[:, None] - e <= 0).sum(axis=0) + 1) / n
    return pair, np.minimum(zero, 1.0), np.minimum(below, 1.0)


def _t_tests(result: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t tests with variances of contrasts from the bootstrap (or across subjects)."""
    if "score_bootstrap" in result:
        z = result["score_bootstrap"].values
        nc = result["noise_ceiling_bootstrap"].sel(bound="lower").values
        ok = np.isfinite(z).all(axis=1)
        z, nc, factor = z[ok], nc[ok], 1.0
        n = {"stimulus": result.attrs["n_stimuli"], "subject": result.attrs["n_subjects"],
             "both": min(result.attrs["n_stimuli"], result.attrs["n_subjects"])}
        dof = n[result.attrs["bootstrap"]] - 1
    else:
        z = result["score_subject"].values.T
        nc = result["noise_ceiling_lower_subject"].values
        factor, dof = 1.0 / z.shape[0], z.shape[0] - 1
    score = result["score"].values
    with np.errstate(invalid="ignore", divide="ignore"):
        diff_var = (z[:, :, None] - z[:, None, :]).var(axis=0, ddof=1) * factor
        t_pair = (score[:, None] - score[None, :]) / np.sqrt(diff_var)
        t_zero = score / np.sqrt(z.var(axis=0, ddof=1) * factor)
        nc_var = (z - nc[:, None]).var(axis=0, ddof=1) * factor
        t_nc = (score - float(result["noise_ceiling_lower"])) / np.sqrt(nc_var)
    return (2 * scipy.stats.t.sf(np.abs(t_pair), dof), scipy.stats.t.sf(t_zero, dof),
            2 * scipy.stats.t.sf(np.abs(t_nc), dof))


_TESTS: dict[str, Callable[[xr.Dataset], tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
    "bootstrap": _bootstrap_tests, "t": _t_tests}


def pairwise_model_tests(result: xr.Dataset, *, test: str = "bootstrap",
                         correction: str = "holm") -> xr.Dataset:
    """Tests of every pair of models, of each model against 0 and against the noise ceiling.

    Parameters
    ----------
    result : the output of :func:`evaluate_models`.
    test : ``"bootstrap"`` (default; rsatoolbox's bootstrap tests on the
        replicates: two-sided for pairs, one-sided against 0 and against the
        lower noise ceiling) or ``"t"`` (rsatoolbox's t tests with the variance
        of each contrast from the bootstrap; without a bootstrap, paired t tests
        across subjects).
    correction : ``"holm"`` (default), ``"bonferroni"``, ``"fdr"``
        (Benjamini–Hochberg) or ``"none"``; applied within each family (the
        K(K-1)/2 pairs, the K tests against 0, the K tests against the ceiling).

    Returns
    -------
    xarray.Dataset
        ``difference(model_a, model_b)`` (score_a - score_b),
        ``p_pairwise(model_a, model_b)`` (NaN on the diagonal), ``p_zero(model)``
        (score > 0), ``p_noise_ceiling(model)`` (bootstrap: score below the lower
        ceiling; t: differs from it), each with a ``*_corrected`` version.

    Notes
    -----
    The bootstrap p-values are rsatoolbox's (``(#opposite + 1) / N``-type),
    capped at 1. The t tests use the full-data score and lower ceiling as the
    estimates (rsatoolbox uses the bootstrap means) and degrees of freedom
    ``n - 1`` for the resampled factor (the smaller one for ``"both"``).
    """
    run = choose(_TESTS, test, "test")
    choose(_CORRECTIONS, correction, "correction")
    pair, zero, below = run(result)
    pair = np.array(pair, dtype=np.float64)
    np.fill_diagonal(pair, np.nan)
    iu = np.triu_indices(pair.shape[0], 1)
    corrected = np.full(pair.shape, np.nan)
    corrected[iu] = correct_pvalues(pair[iu], correction=correction)
    corrected.T[iu] = corrected[iu]
    names = result["model"].values
    score = result["score"].values
    both = ("model_a", "model_b")
    return xr.Dataset(
        {"difference": (both, score[:, None] - score[None, :]),
         "p_pairwise": (both, pair), "p_pairwise_corrected": (both, corrected),
         "p_zero": ("model", zero),
         "p_zero_corrected": ("model", correct_pvalues(zero, correction=correction)),
         "p_noise_ceiling": ("model", below),
         "p_noise_ceiling_corrected": ("model", correct_pvalues(below, correction=correction))},
        coords={"model": names, "model_a": names, "model_b": names},
        attrs=result_attrs("pairwise_model_tests", method=result.attrs.get("method"),
                           test=test, correction=correction,
                           bootstrap=result.attrs.get("bootstrap"),
                           n_boot=result.attrs.get("n_boot")))
