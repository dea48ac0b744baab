"""Inference for RSA: bootstrap evaluation of model RDMs and permutation tests.

A model's *score* is its comparison with each subject's data RDM
(:func:`~rsa_bias.analysis.rsa.compare.compare_rdms`), averaged over subjects, as
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
* ``kendall_tau_a``/``kendall_tau_b``: concordant minus discordant pairs of the
  weighted entries and the pairs tied in each vector, counted exactly in integers (a
  radix-partition inversion count, built once per model-subject pair and counted for
  all replicates together; where numba is installed, ``pip install
  "rsa_bias[fast]"``, compiled Fenwick-tree counts of the same integers); τ-b divides
  them as scipy's ``kendalltau`` does.

Replicates with fewer than 3 distinct stimuli are NaN (as rsatoolbox). They are
computed in :mod:`rsa_bias.analysis.rsa._resample`; tests between models and p-value
corrections are in :mod:`rsa_bias.analysis.rsa.model_tests`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.stats
import xarray as xr

from rsa_bias._values import check_count, check_number, check_seed
from rsa_bias.analysis._inputs import ArrayLike, choose
from rsa_bias.analysis._rdm_vectors import pair_index
from rsa_bias.analysis.rsa._resample import (
    _BOOTSTRAPS,
    _draw_counts,
    _Problem,
    _problem,
    _replicates,
)
from rsa_bias.analysis.rsa.ceilings import _ceiling_per_group
from rsa_bias.analysis.rsa.compare import _METHODS as _COMPARE
from rsa_bias.analysis.rsa.compare import _centred, _centred_ranks, _whiten
from rsa_bias.provenance import result_attrs

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
    """Standard error (ddof=1) and percentile interval of each column over its finite
    replicates (NaN with fewer than 2)."""
    out = np.full((3, values.shape[1]), np.nan)
    for k, column in enumerate(values.T):
        kept = column[np.isfinite(column)]
        if kept.size >= 2:
            out[0, k] = kept.std(ddof=1)
            out[1:, k] = np.quantile(kept, [(1 - ci) / 2, (1 + ci) / 2])
    return out[0], out[1], out[2]


def evaluate_models(models: ArrayLike, data: ArrayLike, *, method: str = "spearman",
                    bootstrap: str | None = "stimulus", n_boot: int = 1000,
                    seed: int | None = 0, ci: float = 0.95, join: str = "exact",
                    indices: Mapping[str, Any] | None = None) -> xr.Dataset:
    """Score model RDMs against subjects' data RDMs, with bootstrap intervals and noise ceiling.

    A model's score is its comparison with each subject's data RDM, averaged over
    subjects (rsatoolbox's ``eval_fixed`` / ``eval_bootstrap*``); the module docstring
    describes how the bootstrap replicates are computed.

    Parameters
    ----------
    models : xarray.DataArray with dims ("model", "stimulus_i", "stimulus_j")
        Or ("model", "pair"); any name for the leading dim (its coord gives the model
        names); a single RDM is one model. numpy: ``(K, n, n)`` or ``(K, m)``.
    data : xarray.DataArray with dims ("subject", "stimulus_i", "stimulus_j")
        Or ("subject", "pair") (any leading dim name), one RDM per subject; numpy
        ``(S, n, n)`` or ``(S, m)``. No NaN.
    method : str, default "spearman"
        Comparison method of :func:`~rsa_bias.analysis.rsa.compare.compare_rdms`
        (``"spearman"`` as everywhere in the package; pass ``"corr_cov"`` for
        cross-validated RDMs such as crossnobis, Diedrichsen et al. 2021).
    bootstrap : {"stimulus", "subject", "both"} or None, default "stimulus"
        ``"stimulus"`` (rsatoolbox's ``eval_bootstrap_pattern``), ``"subject"``
        (``eval_bootstrap_rdm``; needs at least 2 subjects), ``"both"``
        (``eval_bootstrap``) or ``None`` (no resampling; standard error over subjects).
    n_boot : int, default 1000
        Number of bootstrap replicates (ignored when ``indices`` gives the resamples).
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng``; stimulus draws ``(n_boot, n)`` are made
        before subject draws ``(n_boot, S)``. ``None`` draws afresh on each call.
    ci : float, default 0.95
        Coverage of the percentile interval, in (0, 1).
    join : {"exact", "inner"}, default "exact"
        ``"exact"`` refuses models and data over different stimuli (naming the ids);
        ``"inner"`` uses the stimuli both have (in the data's order).
    indices : mapping, optional
        Explicit resamples instead of random ones: ``{"stimulus": (B, n),
        "subject": (B, S)}`` integer positions into the data's stimulus / subject
        order (for paired analyses or to reproduce another tool's draws); only the
        keys the ``bootstrap`` resamples are accepted. Random draws (without
        ``indices``) pick stimuli in ascending id order, so the same data and seed give
        the same replicates however the stimuli are ordered.

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
        NaN and left out of the summaries). A replicate whose score is undefined
        for a model (NaN: τ-b or a correlation with an RDM constant on the drawn
        pairs) is left out of that model's summaries only, with a warning.

    See Also
    --------
    permutation_test : a permutation test of each model's score.
    rsa_bias.analysis.rsa.model_tests.pairwise_model_tests : tests between the models.

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
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.random(45)
    >>> data = truth + 0.5 * rng.random((5, 45))
    >>> models = np.stack([truth, rng.random(45)])
    >>> res = evaluate_models(models, data, method="pearson", n_boot=200, seed=0)
    >>> bool(res.score[0] > res.score[1]), res.score_bootstrap.dims
    (True, ('replicate', 'model'))
    """
    kind = choose(_BOOTSTRAPS, "none" if bootstrap is None else bootstrap, "bootstrap")
    check_number(ci, "ci", low=0, high=1, low_open=True, high_open=True)
    check_seed(seed)
    p = _problem(models, data, method, join)
    kind_name = "none" if bootstrap is None else str(bootstrap)
    if kind[1] and p.y.shape[0] < 2:
        raise ValueError("bootstrap over subjects needs RDMs of at least 2 subjects")
    full = None
    if kind_name != "none":
        w, v = _draw_counts(p, kind_name, n_boot, seed, indices)
        scores, nc, full = _replicates(p, w, v, with_full=True)
    per_subject, lower, upper = _full_data(p) if full is None else full
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
        valid = np.count_nonzero(w, axis=1) >= 3
        n_invalid = int((~valid).sum())
        if n_invalid > w.shape[0] / 2:
            scores = np.full_like(scores, np.nan)  # the rest all repeat the full data
        if n_invalid:
            warnings.warn(f"{n_invalid} of {w.shape[0]} bootstrap replicates drew fewer than 3 "
                          f"distinct stimuli and were left out"
                          + ("; that is most of them, so the interval is NaN: "
                             f"{p.n} stimuli are too few for a stimulus bootstrap"
                             if np.isnan(scores).all() else ""), RuntimeWarning, stacklevel=2)
        if n_invalid <= w.shape[0] / 2:
            _warn_undefined(scores, valid, p.models, method)
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


def _warn_undefined(scores: np.ndarray, valid: np.ndarray, models: np.ndarray,
                    method: str) -> None:
    """Warn about NaN scores of replicates that drew enough stimuli: the method is
    undefined there (a model or a drawn subject's RDM constant on the drawn pairs)."""
    bad = np.isnan(scores[valid]).sum(axis=0)
    if bad.any():
        named = ", ".join(f"{m}: {b}" for m, b in zip(models, bad, strict=True) if b)
        warnings.warn(f"{method} is undefined (NaN) in some bootstrap replicates, where a model "
                      f"or a drawn subject's RDM is constant on the drawn pairs (NaN "
                      f"replicates per model {named}); each model's interval is over its "
                      "other replicates", RuntimeWarning, stacklevel=3)


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
    pos = pair_index(perms[:, i], perms[:, j], n)
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


def permutation_test(models: ArrayLike, data: ArrayLike, *, method: str = "spearman",
                     n_perm: int = 1000, seed: int | None = 0,
                     alternative: str = "greater", join: str = "exact") -> xr.Dataset:
    """Permutation test of each model's score: relabel the stimuli of the model RDM.

    Parameters
    ----------
    models, data : xarray.DataArray or numpy.ndarray
        Model RDMs and one data RDM per subject, as in :func:`evaluate_models`.
    method : str, default "spearman"
        Comparison method, as in :func:`evaluate_models`.
    n_perm : int, default 1000
        Number of random permutations (the same ones for every model); at least 1.
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng``.
    alternative : {"greater", "less"}, default "greater"
        ``"greater"``: the model fits better than chance; ``"less"``: worse.
    join : {"exact", "inner"}, default "exact"
        As in :func:`evaluate_models`.

    Returns
    -------
    xarray.Dataset
        ``score(model)`` (mean over subjects), ``p_value(model)`` = (1 + #null at
        least as extreme) / (1 + n_perm), and ``null(permutation, model)``; flat attrs
        record ``method``, ``n_perm``, ``seed``, ``alternative``, ``n_stimuli`` and
        ``n_subjects``.

    Notes
    -----
    Every method except Kendall's compares through features that permuting the
    stimuli only reorders (centred/ranked/whitened and normalised RDM vectors),
    so the whole null is one gather and one matrix product against the mean
    data features. Null values equal to the observed score within 1e-12 (e.g.
    from permutations within a category of a categorical model) count as
    reaching it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> truth, noise = rng.random(45), rng.random((5, 45))
    >>> res = permutation_test(np.stack([truth, rng.random(45)]), truth + 0.5 * noise,
    ...                        method="pearson", n_perm=200)
    >>> res.null.dims, round(float(res.p_value[0]), 3)
    (('permutation', 'model'), 0.005)
    """
    test = choose(_ALTERNATIVES, alternative, "alternative")
    check_count(n_perm, "n_perm")
    check_seed(seed)
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
