"""Tests between RSA models and multiple-comparison corrections of their p-values.

:func:`pairwise_model_tests` tests every pair of models, each model against 0
and against the lower noise ceiling, from the output of
:func:`~rsa_bias.analysis.rsa.inference.evaluate_models` (rsatoolbox's bootstrap
tests or t tests); :func:`correct_pvalues` adjusts a family of p-values (Holm,
Bonferroni, Benjamini–Hochberg).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.stats
import xarray as xr

from rsa_bias._values import check_probabilities
from rsa_bias.analysis._inputs import choose
from rsa_bias.provenance import result_attrs

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

    Parameters
    ----------
    p : numpy.ndarray
        The family of p-values (any shape), each in [0, 1]; NaN entries (tests that could
        not be computed) are left out of the family and come back NaN. Values outside
        [0, 1] (inf included) are refused.
    correction : {"holm", "bonferroni", "fdr", "none"}, default "holm"
        ``"holm"`` (Holm–Bonferroni step-down), ``"bonferroni"``, ``"fdr"``
        (Benjamini–Hochberg) or ``"none"``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values of the shape of ``p``, capped at 1.

    Examples
    --------
    >>> import numpy as np
    >>> correct_pvalues(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    >>> correct_pvalues(np.array([0.01, 0.04, 0.03]), correction="fdr").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    adjust = choose(_CORRECTIONS, correction, "correction")
    p = check_probabilities(p, "p", nan_ok=True)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = adjust(p[ok])
    return out


# --------------------------------------------------------------------------- model tests

def _finite_replicates(result: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap scores ``(B, K)`` and lower ceilings ``(B,)`` of the replicates without NaN."""
    scores = result["score_bootstrap"].values
    nc = result["noise_ceiling_bootstrap"].sel(bound="lower").values
    ok = np.isfinite(scores).all(axis=1)
    return scores[ok], nc[ok]


def _bootstrap_tests(result: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rsatoolbox's bootstrap tests (``bootstrap_pair_tests`` and its 0 / ceiling tests)."""
    if "score_bootstrap" not in result:
        raise ValueError("test='bootstrap' needs a bootstrap distribution; run "
                         "evaluate_models with bootstrap='stimulus'|'subject'|'both' or use "
                         "test='t'")
    e, nc = _finite_replicates(result)
    n = e.shape[0]
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
        z, nc = _finite_replicates(result)
        factor = 1.0
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
    result : xarray.Dataset
        The output of :func:`~rsa_bias.analysis.rsa.inference.evaluate_models`.
    test : {"bootstrap", "t"}, default "bootstrap"
        ``"bootstrap"``: rsatoolbox's bootstrap tests on the replicates (two-sided for
        pairs, one-sided against 0 and against the lower noise ceiling; needs a
        ``result`` computed with a bootstrap). ``"t"``: rsatoolbox's t tests with the
        variance of each contrast from the bootstrap; without a bootstrap, paired t
        tests across subjects.
    correction : {"holm", "bonferroni", "fdr", "none"}, default "holm"
        ``"fdr"`` is Benjamini–Hochberg; applied within each family (the K(K-1)/2
        pairs, the K tests against 0, the K tests against the ceiling), see
        :func:`correct_pvalues`.

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

    Examples
    --------
    >>> import numpy as np
    >>> from rsa_bias.analysis.rsa import evaluate_models
    >>> rng = np.random.default_rng(0)
    >>> truth = rng.random(45)
    >>> data = truth + 0.5 * rng.random((5, 45))
    >>> models = np.stack([truth, rng.random(45)])
    >>> tests = pairwise_model_tests(evaluate_models(models, data, method="pearson",
    ...                                              n_boot=200))
    >>> tests.p_pairwise.dims, round(float(tests.p_pairwise[0, 1]), 3)
    (('model_a', 'model_b'), 0.005)
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
