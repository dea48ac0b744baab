"""Tests between RSA models (rsatoolbox's bootstrap tests, t tests) and the multiple-comparison
corrections of their p-values, against rsatoolbox and reference implementations written here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from realdata import rsa92_rdms, small_problem

from rsa_bias.analysis.rsa.inference import evaluate_models
from rsa_bias.analysis.rsa.model_tests import correct_pvalues, pairwise_model_tests

pytest.importorskip("rsatoolbox.inference")
from rsatoolbox.util.inference_util import bootstrap_pair_tests  # noqa: E402


@pytest.fixture(scope="module")
def rsa92():
    return rsa92_rdms()


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    return small_problem()


def reference_holm(p: np.ndarray) -> np.ndarray:
    m, order = len(p), np.argsort(p)
    out, running = np.empty(m), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def reference_bh(p: np.ndarray) -> np.ndarray:
    m, order = len(p), np.argsort(p)
    out, running = np.empty(m), 1.0
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, p[i] * m / (rank + 1))
        out[i] = running
    return out


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_corrections_match_reference_implementations(values: list[float]) -> None:
    p = np.array(values)
    np.testing.assert_allclose(correct_pvalues(p, correction="holm"), reference_holm(p))
    np.testing.assert_allclose(correct_pvalues(p, correction="fdr"), reference_bh(p))
    np.testing.assert_allclose(correct_pvalues(p, correction="bonferroni"),
                               np.minimum(p * len(p), 1))


def test_correction_known_values() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(correct_pvalues(p, correction="holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(correct_pvalues(p, correction="fdr"), [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(correct_pvalues(np.array([np.nan, 0.1]))[0])


def test_pairwise_bootstrap_tests_match_rsatoolbox(small) -> None:
    x, y = small
    res = evaluate_models(x, y, method="corr_cov", n_boot=200, seed=1)
    tests = pairwise_model_tests(res, correction="none")
    e = res.score_bootstrap.values
    expected = bootstrap_pair_tests(e)
    np.fill_diagonal(expected, np.nan)
    np.testing.assert_allclose(tests.p_pairwise, expected)
    nc = res.noise_ceiling_bootstrap.sel(bound="lower").values
    np.testing.assert_allclose(tests.p_zero, np.minimum(((e <= 0).sum(0) + 1) / 200, 1))
    np.testing.assert_allclose(tests.p_noise_ceiling,
                               np.minimum(((nc[:, None] - e <= 0).sum(0) + 1) / 200, 1))
    holm = pairwise_model_tests(res, correction="holm")
    iu = np.triu_indices(3, 1)
    np.testing.assert_allclose(holm.p_pairwise_corrected.values[iu],
                               reference_holm(expected[iu]))
    assert tests.difference.dims == ("model_a", "model_b")


def test_t_tests_without_bootstrap_are_paired_t_tests(small) -> None:
    x, y = small
    res = evaluate_models(x, y, method="pearson", bootstrap=None)
    tests = pairwise_model_tests(res, test="t", correction="none")
    per = res.score_subject.values
    expected = scipy.stats.ttest_rel(per[0], per[2]).pvalue
    assert tests.p_pairwise.values[0, 2] == pytest.approx(expected)
    expected_zero = scipy.stats.ttest_1samp(per[0], 0, alternative="greater").pvalue
    assert tests.p_zero.values[0] == pytest.approx(expected_zero)


def test_true_model_beats_noise_model(rsa92) -> None:
    brain, models = rsa92
    res = evaluate_models(models.sel(model=["monkeyIT", "RADON"]), brain, method="corr_cov",
                          n_boot=200, seed=0)
    tests = pairwise_model_tests(res)
    assert tests.p_pairwise_corrected.values[0, 1] < 0.05
    assert tests.p_zero.values[0] < 0.05
