"""RSA inference: noise ceilings, bootstrap evaluation and permutation tests (the tests between
models are in test_analysis_model_tests.py).

References: rsatoolbox (``boot_noise_ceiling``, ``eval_bootstrap_pattern``,
``eval_bootstrap_rdm``, ``eval_bootstrap``, ``bootstrap_pair_tests``) fed the very
same resamples (rsatoolbox draws them with ``np.random.randint``; we replay that
stream and inject the indices), plus independent formulas written here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.io
import scipy.stats
import xarray as xr
from hypothesis import example, given, settings
from hypothesis import strategies as st
from realdata import rsa92_rdms, small_problem
from scipy.spatial.distance import squareform as scipy_squareform

from rsa_bias.analysis.rsa import _resample as inference
from rsa_bias.analysis.rsa import rdm_noise_ceiling
from rsa_bias.analysis.rsa.ceilings import weighted_ranks
from rsa_bias.analysis.rsa.compare import compare_rdms
from rsa_bias.analysis.rsa.inference import evaluate_models, permutation_test
from rsa_bias.analysis.rsa.model_tests import correct_pvalues, pairwise_model_tests

rt_inference = pytest.importorskip("rsatoolbox.inference")
rt_rdm = pytest.importorskip("rsatoolbox.rdm")
rt_model = pytest.importorskip("rsatoolbox.model")

RSATOOLBOX_NAMES = {"pearson": "corr", "spearman": "spearman", "rho_a": "rho-a",
                    "kendall_tau_a": "tau-a", "kendall_tau_b": "kendall", "cosine": "cosine",
                    "cosine_cov": "cosine_cov", "corr_cov": "corr_cov"}
FAST_METHODS = ["pearson", "cosine", "cosine_cov", "corr_cov", "spearman", "rho_a"]
ATOL = 1e-10




@pytest.fixture(scope="module")
def rsa92() -> tuple[xr.DataArray, xr.DataArray]:
    """Human-IT RDMs (8 = 4 subjects x 2 sessions) and 8 model RDMs of the 92 images."""
    return rsa92_rdms()


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    return small_problem()


def rt_models(x: np.ndarray) -> list:
    return [rt_model.ModelFixed(f"m{k}", rt_rdm.RDMs(x[k][None])) for k in range(len(x))]


def replay_draws(kind: str, n: int, s: int, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """The indices rsatoolbox's eval_bootstrap* draw after ``np.random.seed(seed)``."""
    state = np.random.RandomState(seed)
    stim, subj = [], []
    for _ in range(n_boot):
        if kind in ("subject", "both"):
            subj.append(state.randint(0, s, size=s))
        if kind in ("stimulus", "both"):
            stim.append(state.randint(0, n, size=n))
    out = {}
    if stim:
        out["stimulus"] = np.array(stim)
    if subj:
        out["subject"] = np.array(subj)
    return out


RT_EVAL = {"stimulus": "eval_bootstrap_pattern", "subject": "eval_bootstrap_rdm",
           "both": "eval_bootstrap"}


def rsatoolbox_bootstrap(x: np.ndarray, y: np.ndarray, method: str, kind: str, n_boot: int,
                         seed: int):
    saved = np.random.get_state()  # noqa: NPY002 - rsatoolbox draws from the global stream
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(rt_inference, RT_EVAL[kind])(
                rt_models(x), rt_rdm.RDMs(y), method=RSATOOLBOX_NAMES[method], N=n_boot)
    finally:
        np.random.set_state(saved)  # noqa: NPY002


# ----------------------------------------------------------------- noise ceiling

@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_noise_ceiling_matches_rsatoolbox_random(small, method: str) -> None:
    _, y = small
    ours = rdm_noise_ceiling(y, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low, up = rt_inference.boot_noise_ceiling(rt_rdm.RDMs(y), method=RSATOOLBOX_NAMES[method])
    assert ours.lower.item() == pytest.approx(low, abs=ATOL)
    assert ours.upper.item() == pytest.approx(up, abs=ATOL)
    assert ours.lower < ours.upper
    assert ours.attrs["method"] == method


@pytest.mark.parametrize("method", ["corr_cov", "spearman", "pearson", "cosine"])
def test_noise_ceiling_matches_rsatoolbox_on_human_it(rsa92, method: str) -> None:
    brain, _ = rsa92
    ours = rdm_noise_ceiling(brain, method=method)
    vectors = np.stack([scipy_squareform(r, checks=False) for r in brain.values])
    low, up = rt_inference.boot_noise_ceiling(rt_rdm.RDMs(vectors), method=RSATOOLBOX_NAMES[method])
    assert ours.lower.item() == pytest.approx(low, abs=1e-9)
    assert ours.upper.item() == pytest.approx(up, abs=1e-9)
    assert list(ours.subject.values[:2]) == ["BE1", "BE2"]


def test_noise_ceiling_brackets_identical_subjects() -> None:
    y = np.tile(np.random.default_rng(0).random(36), (3, 1))
    nc = rdm_noise_ceiling(y, method="pearson")
    assert nc.lower.item() == pytest.approx(1.0) and nc.upper.item() == pytest.approx(1.0)


# ----------------------------------------------------------------- bootstrap vs rsatoolbox

@pytest.mark.parametrize("kind", ["stimulus", "subject", "both"])
@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_bootstrap_replicates_match_rsatoolbox(small, method: str, kind: str) -> None:
    x, y = small
    n_boot = 6 if method.startswith("kendall") else 12
    ref = rsatoolbox_bootstrap(x, y, method, kind, n_boot, seed=3)
    ours = evaluate_models(x, y, method=method, bootstrap=kind,
                           indices=replay_draws(kind, 8, 4, n_boot, seed=3))
    np.testing.assert_allclose(ours.score_bootstrap.values, ref.evaluations, atol=ATOL)
    np.testing.assert_allclose(ours.noise_ceiling_bootstrap.values.T, ref.noise_ceiling,
                               atol=ATOL)


def test_bootstrap_matches_rsatoolbox_on_human_it(rsa92) -> None:
    brain, models = rsa92
    pick = models.isel(model=[0, 2, 4])  # animacy (binary, tied), monkeyIT, HMAX
    draws = replay_draws("stimulus", 92, 8, 4, seed=0)
    ours = evaluate_models(pick, brain, method="corr_cov", indices=draws)
    vec = np.stack([scipy_squareform(r, checks=False) for r in pick.values])
    data = np.stack([scipy_squareform(r, checks=False) for r in brain.values])
    ref = rsatoolbox_bootstrap(vec, data, "corr_cov", "stimulus", 4, seed=0)
    np.testing.assert_allclose(ours.score_bootstrap.values, ref.evaluations, atol=1e-9)
    np.testing.assert_allclose(ours.noise_ceiling_bootstrap.values.T, ref.noise_ceiling,
                               atol=1e-9)
    assert list(ours.model.values) == list(pick.model.values)


@pytest.mark.parametrize("method", FAST_METHODS)
def test_full_data_score_and_ceiling_match_rsatoolbox(small, method: str) -> None:
    x, y = small
    ours = evaluate_models(x, y, method=method, bootstrap=None)
    ref = rt_rdm.compare(rt_rdm.RDMs(x), rt_rdm.RDMs(y), method=RSATOOLBOX_NAMES[method])
    np.testing.assert_allclose(ours.score.values, ref.mean(axis=1), atol=ATOL)
    low, up = rt_inference.boot_noise_ceiling(rt_rdm.RDMs(y), method=RSATOOLBOX_NAMES[method])
    assert ours.noise_ceiling_lower.item() == pytest.approx(low, abs=ATOL)
    assert ours.noise_ceiling_upper.item() == pytest.approx(up, abs=ATOL)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(3, 9), seed=st.integers(0, 2**16), method=st.sampled_from(FAST_METHODS),
       ties=st.booleans())
@example(n=6, seed=1498, method="corr_cov", ties=True)  # a drawn subject RDM is constant
@example(n=4, seed=334, method="pearson", ties=True)  # ... and it is the only one drawn
def test_closed_form_replicates_equal_resampled_rdms(n: int, seed: int, method: str,
                                                     ties: bool) -> None:
    """The vectorised replicates equal building and comparing each resampled RDM."""
    rng = np.random.default_rng(seed)
    m = n * (n - 1) // 2
    x, y = rng.random((2, m)), rng.random((4, m))  # 4 != m: never read as a square RDM
    if ties:
        x[0], y[1] = np.round(x[0] * 2), np.round(y[1] * 3)
    p = inference._problem(x, y, method, "exact")
    w = inference._counts(rng.integers(0, n, (6, n)), n)
    v = inference._counts(rng.integers(0, 4, (6, 4)), 4)
    fast = inference._replicates(p, w, v)
    slow = inference._replicates(p, w, v, family=inference._EXPLICIT)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_stimuli_drawn_twice_exclude_pairs_with_their_copy() -> None:
    """A draw with repeats: ours equals Pearson over the valid pairs, the naive one does not."""
    rng = np.random.default_rng(4)
    n = 10
    sq_model = scipy_squareform(rng.random(45))
    sq_data = scipy_squareform(rng.random(45) + scipy_squareform(sq_model))
    idx = np.array([0, 0, 0, 1, 2, 3, 3, 5, 7, 9])
    ours = evaluate_models(sq_model[None], sq_data[None], method="pearson",
                           indices={"stimulus": idx[None]})
    pos_i, pos_j = np.triu_indices(n, 1)
    valid = idx[pos_i] != idx[pos_j]
    a = sq_model[idx[pos_i], idx[pos_j]][valid]
    b = sq_data[idx[pos_i], idx[pos_j]][valid]
    expected = np.corrcoef(a, b)[0, 1]
    assert ours.score_bootstrap.item() == pytest.approx(expected, abs=1e-12)
    naive = compare_rdms(sq_model[idx][:, idx], sq_data[idx][:, idx], method="pearson")
    assert abs(naive - expected) > 1e-3


def test_replicates_with_fewer_than_three_stimuli_are_nan(small) -> None:
    x, y = small
    idx = np.array([[0, 0, 0, 1, 1, 1, 1, 1], [0, 1, 2, 3, 4, 5, 6, 7]])
    res = evaluate_models(x, y, method="pearson", indices={"stimulus": idx})
    assert np.isnan(res.score_bootstrap[0]).all() and np.isfinite(res.score_bootstrap[1]).all()
    assert res.attrs["n_invalid"] == 1
    np.testing.assert_allclose(res.score_bootstrap[1], res.score)  # identity draw


# ----------------------------------------------------------------- result structure

def test_result_labels_attrs_and_seed(rsa92) -> None:
    brain, models = rsa92
    res = evaluate_models(models.isel(model=[0, 1, 2]), brain, method="pearson",
                          bootstrap="both", n_boot=50, seed=7)
    again = evaluate_models(models.isel(model=[0, 1, 2]), brain, method="pearson",
                            bootstrap="both", n_boot=50, seed=7)
    xr.testing.assert_equal(res.drop_attrs(), again.drop_attrs())
    assert list(res.model.values) == ["animacy", "FaceBodyManmadeNatobj", "monkeyIT"]
    assert res.score_bootstrap.dims == ("replicate", "model")
    assert res.attrs["method"] == "pearson" and res.attrs["n_boot"] == 50
    assert res.attrs["seed"] == 7 and res.attrs["bootstrap"] == "both"
    assert all(isinstance(v, (str, int, float, np.integer, np.floating))
               for v in res.attrs.values())
    assert (res.ci_low < res.score).all() and (res.score < res.ci_high).all()
    boot = res.score_bootstrap.values
    np.testing.assert_allclose(res.standard_error, boot.std(axis=0, ddof=1))
    assert res.noise_ceiling_lower < res.noise_ceiling_upper


def test_stimulus_order_of_models_is_aligned_to_data(small) -> None:
    x, y = small
    ids = np.arange(8)
    perm = np.random.default_rng(0).permutation(8)

    def labelled(v: np.ndarray, dim: str, order: np.ndarray) -> xr.DataArray:
        sq = np.stack([scipy_squareform(r) for r in v])[:, order][:, :, order]
        return xr.DataArray(sq, dims=(dim, "stimulus_i", "stimulus_j"),
                            coords={"stimulus_i": ids[order], "stimulus_j": ids[order]})

    a = evaluate_models(labelled(x, "model", perm), labelled(y, "subject", ids),
                        method="corr_cov", bootstrap=None)
    b = evaluate_models(x, y, method="corr_cov", bootstrap=None)
    np.testing.assert_allclose(a.score, b.score, atol=1e-12)


def test_no_bootstrap_gives_standard_error_over_subjects(small) -> None:
    x, y = small
    res = evaluate_models(x, y, method="pearson", bootstrap=None)
    per = res.score_subject.values
    np.testing.assert_allclose(res.standard_error, per.std(axis=1, ddof=1) / 2)
    assert "score_bootstrap" not in res and res.attrs["n_boot"] == 0


# ----------------------------------------------------------------- permutation tests

@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_permutation_null_equals_scores_of_permuted_models(small, method: str) -> None:
    x, y = small
    res = permutation_test(x, y, method=method, n_perm=4, seed=2)
    perms = np.random.default_rng(2).permuted(np.tile(np.arange(8), (4, 1)), axis=1)
    sq = np.stack([scipy_squareform(r) for r in x])
    for k, perm in enumerate(perms):
        permuted = sq[:, perm][:, :, perm]
        expected = compare_rdms(permuted, y, method=method).mean("rdm_b").values
        np.testing.assert_allclose(res.null.values[k], expected, atol=1e-10)
    np.testing.assert_allclose(res.score, compare_rdms(x, y, method=method).mean("rdm_b"))


def test_permutation_pvalues_uniform_under_null() -> None:
    rng = np.random.default_rng(11)
    p = [permutation_test(rng.random(28), rng.random((3, 28)), method="pearson", n_perm=49,
                          seed=int(rng.integers(1 << 31))).p_value.item() for _ in range(200)]
    assert scipy.stats.kstest(p, "uniform").pvalue > 0.01
    assert min(p) >= 1 / 50


def test_permutation_pvalue_small_for_true_model(rsa92) -> None:
    brain, models = rsa92
    res = permutation_test(models.sel(model=["monkeyIT"]), brain, method="corr_cov",
                           n_perm=199, seed=0)
    assert res.p_value.item() == pytest.approx(1 / 200)
    assert res.attrs["n_perm"] == 199


def test_categorical_model_counts_tied_permutations() -> None:
    """A permutation within a category leaves the RDM unchanged and must count as >=."""
    labels = np.array([0, 0, 0, 0, 1, 1])
    model = (labels[:, None] != labels[None, :]).astype(float)
    data = model + 0.01 * np.random.default_rng(0).random((2, 6, 6))
    data = (data + data.transpose(0, 2, 1)) / 2
    for d in data:
        np.fill_diagonal(d, 0)
    res = permutation_test(model, data, method="corr_cov", n_perm=500, seed=0)
    hits = (res.null.values[:, 0] >= res.score.item() - 1e-12).sum()
    assert hits > 5  # 4!2!/6! of permutations keep the categories
    assert res.p_value.item() == pytest.approx((1 + hits) / 501)


# ----------------------------------------------------------------- weighted ranks

@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.integers(0, 4), min_size=2, max_size=15),
       seed=st.integers(0, 1000))
def test_weighted_ranks_equal_ranks_of_expanded_vector(values: list[int], seed: int) -> None:
    v = np.array(values, dtype=float)
    w = np.random.default_rng(seed).integers(0, 3, v.size)
    expanded = scipy.stats.rankdata(np.repeat(v, w))
    ranks = weighted_ranks(v, w.astype(float))
    starts = np.cumsum(w) - w
    np.testing.assert_allclose(ranks[w > 0], expanded[starts[w > 0]])


# ----------------------------------------------------------------- bad input

def test_bad_input_errors(small) -> None:
    x, y = small
    with pytest.raises(ValueError, match=r"unknown comparison method 'corr'.*'pearson'"):
        evaluate_models(x, y, method="corr")
    with pytest.raises(ValueError, match=r"unknown bootstrap 'pattern'.*'stimulus'"):
        evaluate_models(x, y, bootstrap="pattern")
    with pytest.raises(ValueError, match=r"unknown correction 'bh'.*'fdr'"):
        correct_pvalues(np.array([0.1]), correction="bh")
    res = evaluate_models(x, y, method="pearson", bootstrap=None)
    with pytest.raises(ValueError, match=r"unknown test 'z'.*'bootstrap'"):
        pairwise_model_tests(res, test="z")
    with pytest.raises(ValueError, match="needs a bootstrap distribution"):
        pairwise_model_tests(res)
    with pytest.raises(ValueError, match=r"unknown alternative 'two'.*'greater'"):
        permutation_test(x, y, alternative="two")
    with pytest.raises(ValueError, match="at least 3"):
        evaluate_models(np.ones((2, 1)), np.ones((2, 1)))
    bad = y.copy()
    bad[2, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*\[2\]"):
        evaluate_models(x, bad)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        rdm_noise_ceiling(y[:1])
    with pytest.raises(ValueError, match=r"indices\['stimulus'\] must be integer positions"):
        evaluate_models(x, y, indices={"stimulus": np.full((2, 8), 8)})


def test_mismatched_stimuli_are_named(rsa92) -> None:
    brain, models = rsa92
    with pytest.raises(ValueError, match=r"stimuli differ: 2 ids of data are missing from "
                                         r"models \(e\.g\. \[91, 92\]\)"):
        evaluate_models(models.isel(stimulus_i=slice(0, 90), stimulus_j=slice(0, 90)), brain,
                        bootstrap=None)
    inner = evaluate_models(models.isel(stimulus_i=slice(0, 90), stimulus_j=slice(0, 90)),
                            brain, bootstrap=None, join="inner", method="pearson")
    assert inner.attrs["n_stimuli"] == 90
