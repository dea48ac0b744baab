"""RidgeEncoder, cross-validated scores and noise ceilings against independent references."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold, LeaveOneOut
from sklearn.utils.estimator_checks import parametrize_with_checks

from rsa_bias.analysis.encoding import (
    cross_validated_scores,
    response_noise_ceiling,
    spearman_brown,
)
from rsa_bias.analysis.encoding import ridge as encoding
from rsa_bias.analysis.encoding.ridge import DEFAULT_ALPHAS, RidgeEncoder

ALPHAS = np.logspace(-2, 6, 10)


def make_problem(n: int, p: int, t: int, seed: int = 0, offset: float = 3.0):
    """Targets with very different signal-to-noise ratios, so their best alphas differ."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.2, 3.0, size=p) + rng.normal(size=p)
    w = rng.normal(size=(p, t)) * np.logspace(-2, 0.5, t)
    y = x @ w + rng.normal(size=(n, t)) * rng.uniform(0.3, 3.0, size=t) + offset
    return x, y


def brute_force_kfold_alphas(x, y, alphas, splits, fit_intercept):
    """Sum of held-out squared errors of sklearn Ridge for every (alpha, target)."""
    sse = np.zeros((len(alphas), y.shape[1]))
    for train, test in splits:
        for j, alpha in enumerate(alphas):
            model = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(x[train], y[train])
            sse[j] += np.sum((model.predict(x[test]) - y[test]) ** 2, axis=0)
    return alphas[np.argmin(sse, axis=0)], sse / len(y)


# --- scikit-learn API ---------------------------------------------------------------------

@parametrize_with_checks([RidgeEncoder(), RidgeEncoder(cv=3),
                          RidgeEncoder(solver="dual", search_dtype="float64")])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --- agreement with scikit-learn ---------------------------------------------------------

@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", [(120, 25), (40, 90)], ids=["primal", "dual"])
@pytest.mark.parametrize("search_dtype", ["float32", "float64"])
def test_loo_matches_sklearn_ridgecv(fit_intercept, shape, search_dtype):
    x, y = make_problem(*shape, t=60, seed=shape[0])
    ours = RidgeEncoder(ALPHAS, fit_intercept=fit_intercept, search_dtype=search_dtype).fit(x, y)
    ref = RidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=fit_intercept).fit(x, y)
    assert len(np.unique(ref.alpha_)) >= 3  # the test can tell per-target alphas apart
    np.testing.assert_array_equal(ours.alpha_, ref.alpha_)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
    rtol = 1e-9 if search_dtype == "float64" else 1e-4
    np.testing.assert_allclose(ours.cv_mse_.min(axis=0), -ref.best_score_, rtol=rtol)
    x_new = make_problem(*shape, t=1, seed=99)[0]
    np.testing.assert_allclose(ours.predict(x_new), ref.predict(x_new), rtol=1e-8, atol=1e-8)


def test_loo_single_alpha_and_1d_target_match_sklearn():
    x, y = make_problem(60, 10, t=8, seed=3)
    ours = RidgeEncoder(ALPHAS, alpha_per_target=False).fit(x, y)
    ref = RidgeCV(alphas=ALPHAS).fit(x, y)
    assert ours.alpha_ == ref.alpha_
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    ours1 = RidgeEncoder(ALPHAS).fit(x, y[:, 2])
    ref1 = RidgeCV(alphas=ALPHAS).fit(x, y[:, 2])
    assert isinstance(ours1.alpha_, float) and ours1.alpha_ == ref1.alpha_
    assert ours1.coef_.shape == (10,)
    np.testing.assert_allclose(ours1.predict(x), ref1.predict(x), rtol=1e-9)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", [(100, 20), (48, 70)], ids=["primal", "dual"])
def test_kfold_matches_brute_force_sklearn_loop(fit_intercept, shape):
    x, y = make_problem(*shape, t=30, seed=7)
    ours = RidgeEncoder(ALPHAS, cv=4, fit_intercept=fit_intercept).fit(x, y)
    alpha, mse = brute_force_kfold_alphas(x, y, ALPHAS, list(KFold(4).split(x)),
                                          fit_intercept)
    assert len(np.unique(alpha)) >= 3
    np.testing.assert_array_equal(ours.alpha_, alpha)
    np.testing.assert_allclose(ours.cv_mse_, mse, rtol=1e-4)
    # final coefficients: one sklearn Ridge per target on all data at its alpha
    for j in (0, 11, 29):
        ref = Ridge(alpha=alpha[j], fit_intercept=fit_intercept).fit(x, y[:, j])
        np.testing.assert_allclose(ours.coef_[j], ref.coef_, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(ours.intercept_[j], ref.intercept_, rtol=1e-7, atol=1e-10)


def test_kfold_accepts_a_splitter():
    x, y = make_problem(60, 8, t=5, seed=2)
    splits = list(KFold(3, shuffle=True, random_state=1).split(x))
    ours = RidgeEncoder(ALPHAS, cv=KFold(3, shuffle=True, random_state=1)).fit(x, y)
    np.testing.assert_array_equal(ours.alpha_,
                                  brute_force_kfold_alphas(x, y, ALPHAS, splits, True)[0])


@pytest.mark.parametrize("cv", [None, 3])
def test_dual_equals_primal_when_features_outnumber_samples(cv):
    x, y = make_problem(30, 80, t=20, seed=5)
    primal = RidgeEncoder(ALPHAS, cv=cv, solver="primal", search_dtype="float64").fit(x, y)
    dual = RidgeEncoder(ALPHAS, cv=cv, solver="dual", search_dtype="float64").fit(x, y)
    auto = RidgeEncoder(ALPHAS, cv=cv).fit(x, y)
    assert auto.solver_ == "dual" and primal.solver_ == "primal"
    np.testing.assert_array_equal(dual.alpha_, primal.alpha_)
    np.testing.assert_allclose(dual.coef_, primal.coef_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dual.cv_mse_, primal.cv_mse_, rtol=1e-7)


def test_float32_search_chooses_the_float64_alphas():
    x, y = make_problem(150, 40, t=400, seed=11)
    for cv in (None, 5):
        fast = RidgeEncoder(ALPHAS, cv=cv).fit(x, y)
        exact = RidgeEncoder(ALPHAS, cv=cv, search_dtype="float64").fit(x, y)
        np.testing.assert_array_equal(fast.alpha_, exact.alpha_)
        np.testing.assert_allclose(fast.cv_mse_, exact.cv_mse_, rtol=1e-4)
        np.testing.assert_allclose(fast.coef_, exact.coef_, rtol=1e-12)


@pytest.mark.parametrize("cv", [None, 5], ids=["loo", "kfold"])
def test_cv_scores_match_direct_computation(cv):
    x, y = make_problem(50, 6, t=4, seed=4)
    model = RidgeEncoder(ALPHAS, cv=cv).fit(x, y)
    splitter = LeaveOneOut() if cv is None else KFold(cv)
    pred = np.empty_like(y)
    for j in range(y.shape[1]):
        for train, test in splitter.split(x):
            fit = Ridge(alpha=model.alpha_[j]).fit(x[train], y[train, j])
            pred[test, j] = fit.predict(x[test])
    s = model.cv_scores_
    r = [np.corrcoef(pred[:, j], y[:, j])[0, 1] for j in range(4)]
    r2 = 1 - np.sum((y - pred) ** 2, 0) / np.sum((y - y.mean(0)) ** 2, 0)
    np.testing.assert_allclose(s["pearson_r"], r, rtol=1e-5)
    np.testing.assert_allclose(s["r2"], r2, rtol=1e-5)
    np.testing.assert_allclose(s["mse"], np.mean((y - pred) ** 2, 0), rtol=1e-5)
    np.testing.assert_array_equal(s["alpha"], model.alpha_)


def test_torch_backend_matches_numpy(monkeypatch):
    torch = pytest.importorskip("torch")
    x, y = make_problem(60, 15, t=12, seed=8)
    expected = [RidgeEncoder(ALPHAS, cv=cv).fit(x, y) for cv in (None, 3)]
    monkeypatch.setattr(encoding, "_make_backend",
                        lambda device: encoding._ridge.TorchBackend("cpu"))
    for cv, ref in zip((None, 3), expected, strict=True):
        got = RidgeEncoder(ALPHAS, cv=cv, device="auto").fit(x, y)
        np.testing.assert_array_equal(got.alpha_, ref.alpha_)
        np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    assert torch.get_default_dtype() == torch.float32  # untouched


@pytest.mark.gpu
def test_gpu_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x, y = make_problem(200, 50, t=300, seed=9)
    cpu = RidgeEncoder(ALPHAS).fit(x, y)
    gpu = RidgeEncoder(ALPHAS, device="auto").fit(x, y)
    assert gpu.device_ == "cuda"
    np.testing.assert_array_equal(gpu.alpha_, cpu.alpha_)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-7, atol=1e-9)


def test_analysis_does_not_import_torch():
    code = ("import sys, numpy as np; from rsa_bias.analysis.encoding.ridge import RidgeEncoder;"
            "RidgeEncoder().fit(np.random.rand(9, 2), np.random.rand(9));"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- labelled inputs and bad input ------------------------------------------------------

def labelled(x, y, stim=None):
    stim = np.array([f"img_{i:03d}" for i in range(len(x))]) if stim is None else stim
    xa = xr.DataArray(x, dims=("stimulus", "unit"), coords={"stimulus": stim})
    ya = xr.DataArray(y, dims=("stimulus", "voxel"),
                      coords={"stimulus": stim, "voxel": [f"v{j}" for j in range(y.shape[1])]})
    return xa, ya


def test_labelled_outputs_carry_target_ids_and_align_stimuli():
    x, y = make_problem(40, 5, t=6, seed=1)
    xa, ya = labelled(x, y)
    model = RidgeEncoder(ALPHAS).fit(xa, ya.isel(stimulus=np.random.default_rng(0)
                                                   .permutation(40)))
    ref = RidgeEncoder(ALPHAS).fit(x, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-10)  # aligned, not by position
    assert model.cv_scores_["pearson_r"].dims == ("voxel",)
    assert list(model.cv_scores_["voxel"].values) == [f"v{j}" for j in range(6)]
    pred = model.predict(xa.isel(stimulus=slice(0, 7)))
    assert pred.dims == ("stimulus", "voxel") and pred["voxel"].values[3] == "v3"
    assert pred["stimulus"].values[2] == "img_002"
    scores = cross_validated_scores(xa, ya, cv=4, estimator=RidgeEncoder(ALPHAS))
    assert scores["r2"].dims == ("voxel",) and scores["alpha"].dims == ("fold", "voxel")
    assert scores.attrs["method"] == "ridge_encoding_nested_cv"


def test_mismatched_stimuli_are_named():
    x, y = make_problem(20, 3, t=2)
    xa, ya = labelled(x, y)
    ya = ya.assign_coords(stimulus=[f"img_{i:03d}" for i in range(1, 21)])
    with pytest.raises(ValueError, match="img_000"):
        RidgeEncoder().fit(xa, ya)
    with pytest.raises(ValueError, match="img_020"):
        cross_validated_scores(xa, ya)


def test_nan_errors_say_where():
    x, y = make_problem(20, 3, t=2)
    x[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains 1 NaN/inf value\(s\).*sample 4"):
        RidgeEncoder().fit(x, y)
    x[4, 2] = 0.0
    xa, ya = labelled(x, y.copy())
    ya[7, 1] = np.inf
    with pytest.raises(ValueError, match="Y contains.*stimulus 'img_007', voxel 'v1'"):
        RidgeEncoder().fit(xa, ya)
    y[1, 0] = np.nan
    with pytest.raises(ValueError, match="Y contains.*sample 1, target 0"):
        RidgeEncoder().fit(x, y)
    model = RidgeEncoder().fit(x, np.nan_to_num(y))
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains"):
        model.predict(x)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"solver": "cholesky"}, r"unknown solver 'cholesky'; valid: \['auto', 'primal', 'dual'\]"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"search_dtype": "float16"}, "unknown search_dtype"),
    ({"alphas": [1.0, -1.0]}, "positive"),
])
def test_bad_parameters(kwargs, match):
    x, y = make_problem(20, 3, t=2)
    with pytest.raises(ValueError, match=match):
        RidgeEncoder(**kwargs).fit(x, y)


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_samples(n):
    with pytest.raises(ValueError, match=f"at least 3 samples.*got {n} sample"):
        RidgeEncoder().fit(np.ones((n, 3)), np.ones(n))


# --- noise ceiling ------------------------------------------------------------------------

def test_spearman_brown_formula():
    np.testing.assert_allclose(spearman_brown(0.5), 2 / 3)
    np.testing.assert_allclose(spearman_brown(0.25, factor=3.0), 0.75 / 1.5)
    r = np.linspace(-0.5, 0.95, 7)
    np.testing.assert_allclose(spearman_brown(r, factor=1.0), r)
    stepped = spearman_brown(r, factor=2.0)
    np.testing.assert_allclose(spearman_brown(stepped, factor=0.5), r)  # inverse
    # stepping up from m to R repeats = reliability of R repeats, for any m
    s2, n2 = 1.0, 3.0
    rel = lambda k: s2 / (s2 + n2 / k)  # noqa: E731
    np.testing.assert_allclose(spearman_brown(rel(2), factor=5 / 2), rel(5))


@pytest.mark.parametrize("n_repeats", [4, 5])
def test_noise_ceiling_matches_analytic_reliability(n_repeats):
    """Signal variance 1, noise variance 4 (half A) or 1 (half B) per repeat.

    Reliability of the R-repeat mean: ρ = 1 / (1 + σn² / R). The split-half r of one
    neuron has SE ≈ (1 − r²)/√n_stim (≤ 0.045 here) and dρ/dr ≤ 1.13, so the mean over
    150 neurons has SE ≤ 0.0042; we allow 4 SE (split averaging only shrinks the SE;
    the O(1/n) bias of r, ~4e-4, is negligible).
    """
    rng = np.random.default_rng(n_repeats)
    n_stim, n_neur = 400, 300
    noise_sd = np.repeat([2.0, 1.0], n_neur // 2)
    signal = rng.normal(size=(n_stim, n_neur, 1))
    resp = signal + noise_sd[None, :, None] * rng.normal(size=(n_stim, n_neur, n_repeats))
    da = xr.DataArray(resp, dims=("stimulus", "neuron", "repeat"),
                      coords={"neuron": [f"n{i}" for i in range(n_neur)]})
    out = response_noise_ceiling(da)
    assert out["reliability"].dims == ("neuron",) and out["neuron"].values[5] == "n5"
    expected = 1.0 / (1.0 + noise_sd**2 / n_repeats)
    rel = out["reliability"].values
    for group in (slice(0, 150), slice(150, 300)):
        assert abs(rel[group].mean() - expected[group][0]) < 4 * 0.0042
    np.testing.assert_allclose(out["ceiling_r"], np.sqrt(rel))
    np.testing.assert_allclose(out["ceiling_r2"], rel)
    half = n_repeats // 2
    np.testing.assert_allclose(rel, spearman_brown(out["split_half_r"], factor=n_repeats / half))


def test_noise_ceiling_unreliable_targets_are_nan_and_bad_input():
    rng = np.random.default_rng(0)
    resp = rng.normal(size=(200, 40, 2))  # pure noise: reliability scatters around 0
    out = response_noise_ceiling(resp)
    neg = out["reliability"].values <= 0
    assert neg.any() and np.isnan(out["ceiling_r"].values[neg]).all()
    with pytest.raises(ValueError, match="2 repeats"):
        response_noise_ceiling(resp[:, :, :1])
    resp[3, 1, 0] = np.nan
    with pytest.raises(ValueError, match="stimulus 3, target 1, repeat 0"):
        response_noise_ceiling(resp)


def test_normalised_scores_near_one_for_a_perfectly_predictable_signal():
    """The signal is linear in 4 features; noise variance 4 per repeat, R = 4: ρ = 0.5.

    A near-perfect encoder reaches r ≈ √0.5 ≈ 0.71 and R² ≈ 0.5 raw, ≈ 1 normalised
    (estimation error of 4 coefficients from 480 stimuli costs ~1%).
    """
    rng = np.random.default_rng(1)
    n_stim, n_neur, n_rep = 600, 60, 4
    x = rng.normal(size=(n_stim, 4))
    w = rng.normal(size=(4, n_neur))
    signal = x @ (w / np.sqrt((w**2).sum(0)))                    # variance 1
    resp = signal[:, :, None] + 2.0 * rng.normal(size=(n_stim, n_neur, n_rep))
    out = cross_validated_scores(x, resp, cv=5, estimator=RidgeEncoder(ALPHAS))
    assert abs(out["pearson_r"].mean() - np.sqrt(0.5)) < 0.03     # raw scores are not ~1
    assert abs(out["pearson_r_normalised"].mean() - 1.0) < 0.03
    assert abs(out["r2_normalised"].mean() - 1.0) < 0.06
    assert out["pearson_r_normalised"].dims == ("target",)


def test_default_alphas_are_the_issue_grid():
    np.testing.assert_allclose(DEFAULT_ALPHAS, np.logspace(-2, 6, 10))


def test_warns_when_targets_choose_the_smallest_alpha():
    from rsa_bias.analysis.encoding import AlphaGridWarning

    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 5))
    y = x @ rng.standard_normal((5, 3))  # noiseless: the smallest alpha always wins
    with pytest.warns(AlphaGridWarning, match="3 of 3 targets chose the smallest alpha"):
        RidgeEncoder([1.0, 10.0, 100.0]).fit(x, y)
    noise = rng.standard_normal((200, 3))  # no signal: largest alpha, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", AlphaGridWarning)
        RidgeEncoder([1.0, 10.0, 100.0]).fit(x, noise)


def test_cross_validated_scores_warn_once_for_all_folds():
    from rsa_bias.analysis.encoding import AlphaGridWarning, one_alpha_warning

    rng = np.random.default_rng(4)
    x = rng.standard_normal((120, 4))
    y = x @ rng.standard_normal((4, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cross_validated_scores(x, y, cv=5, estimator=RidgeEncoder([1.0, 10.0]))
    edge = [w for w in caught if issubclass(w.category, AlphaGridWarning)]
    assert len(edge) == 1
    assert "in 5 ridge fit(s)" in str(edge[0].message)
    with pytest.warns(RuntimeWarning, match="unrelated"), one_alpha_warning("x"):
        warnings.warn("unrelated", RuntimeWarning, stacklevel=1)
