"""Feature attribution of RSA, CKA and encoding scores, checked on simulated ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from simulated_data import SHARES

from rsa_bias import (
    RidgeEncoder,
    attribute_cka,
    attribute_encoding,
    attribute_rsa,
    cka,
    compare_controlled,
    compare_rdms,
    cross_validated_scores,
    equalise_feature_variance,
    feature_decomposition,
    feature_variance_explained,
    rdm,
    remove_features,
    variance_shares,
)
from rsa_bias.analysis.features._shapley import MAX_EXACT_FEATURES
from rsa_bias.brain.simulated import factorial_stimuli, simulate_population

ALPHAS = np.logspace(-6, 6, 13)  # noise-free predictors want small penalties
RIDGE = RidgeEncoder(ALPHAS)
# Noise-free simulated targets would take alpha -> 0; the grid warning says nothing here.
pytestmark = pytest.mark.filterwarnings("ignore:.*smallest alpha of the grid")


def _model(stimuli, shares, seed, n=60):
    return simulate_population(stimuli, shares, n_neurons=n, seed=seed).signal


# --- decomposition and variance shares ---------------------------------------------------------


def test_variance_shares_recover_the_generating_shares(brain):
    exact = variance_shares(brain.signal)
    np.testing.assert_allclose(exact.share, list(SHARES.values()), atol=1e-10)
    assert float(exact.residual) == pytest.approx(0.2, abs=1e-10)
    noisy = variance_shares(brain.response)  # repeats averaged: noise ratio 0.1
    np.testing.assert_allclose(noisy.share, np.array(list(SHARES.values())) / 1.1, atol=0.02)


def test_binary_shares_equal_the_in_sample_variance_explained(brain):
    x = brain.response.mean("repeat").rename(neuron="unit")
    r2 = feature_variance_explained(x, features=["a", "b"], fit_split=None, eval_split=None).r2
    np.testing.assert_allclose(variance_shares(x, features=["a", "b"]).share, r2, rtol=1e-10)


def test_decomposition_reconstructs_and_removal_subtracts_class_means(brain):
    x = brain.response.isel(repeat=0)
    parts = feature_decomposition(x)
    assert list(parts.component.values) == ["a", "b", "c", "residual"]
    np.testing.assert_allclose(parts.sum("component") + x.mean("stimulus"), x, atol=1e-10)
    groups = x.groupby("feature_b")  # class means subtracted, the grand mean kept
    np.testing.assert_allclose(remove_features(x, features=["b"]),
                               groups - groups.mean() + x.mean("stimulus"), atol=1e-10)


def test_stimuli_can_come_from_a_separate_set(stimuli, brain):
    bare = xr.DataArray(brain.signal.values, dims=("stimulus", "neuron"),
                        coords={"stimulus": brain.stimulus.values})
    with_set = variance_shares(bare, stimuli=stimuli)
    np.testing.assert_allclose(with_set.share, list(SHARES.values()), atol=1e-10)
    with pytest.raises(ValueError, match="no feature coord"):
        variance_shares(bare)


# --- Shapley attribution: axioms and agreement with the direct scores --------------------------


@pytest.mark.parametrize("hsic", ["biased", "unbiased"])
def test_cka_attribution_is_efficient_and_total_is_cka(stimuli, brain, hsic):
    x = _model(stimuli, {"a": 0.3, "b": 0.4, "c": 0.1}, seed=1)
    out = attribute_cka(x, brain.response, hsic=hsic)
    assert float(out.total) == pytest.approx(cka(x, brain.response.mean("repeat"), hsic=hsic),
                                             abs=1e-12)
    assert float(out.share.sum()) == pytest.approx(float(out.features_score), abs=1e-12)
    assert float(out.residual) == pytest.approx(float(out.total - out.features_score), abs=1e-12)
    assert float(out.subset_score.sel(subset="a+b+c")) == pytest.approx(float(out.features_score))


@pytest.mark.parametrize(("rdm_method", "compare"), [
    ("sqeuclidean", "pearson"), ("euclidean", "pearson"), ("correlation", "pearson"),
    ("cosine", "cosine"), ("correlation", "cosine")])
def test_rsa_attribution_total_is_the_rsa_score(stimuli, brain, rdm_method, compare):
    x = _model(stimuli, {"a": 0.3, "b": 0.4}, seed=2)
    y = brain.response.mean("repeat")
    out = attribute_rsa(x, brain.response, rdm_method=rdm_method, compare_method=compare)
    direct = compare_rdms(rdm(x, method=rdm_method), rdm(y, method=rdm_method), method=compare)
    assert float(out.total) == pytest.approx(float(direct), abs=1e-10)
    assert float(out.share.sum()) == pytest.approx(float(out.features_score), abs=1e-12)


def test_cka_shares_match_the_closed_form_of_a_quadratic_game(stimuli, brain):
    """Linear biased HSIC(X_S, Y_S) = ||Σ_{f∈S} Y_fᵀX_f||², a quadratic form in the parts, whose
    Shapley value is φ_f = Σ_g <Y_fᵀX_f, Y_gᵀX_g> / norm (computed here without subsets)."""
    x = _model(stimuli, {"a": 0.2, "b": 0.5, "c": 0.2}, seed=3, n=8)
    y = brain.response.mean("repeat")
    px = feature_decomposition(x).values
    py = feature_decomposition(y).values
    cross = [py[f].T @ px[f] for f in range(3)]
    xc, yc = px.sum(0), py.sum(0)
    norm = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    expected = [sum(np.vdot(cross[f], cross[g]) for g in range(3)) / norm for f in range(3)]
    np.testing.assert_allclose(attribute_cka(x, y).share, expected, rtol=1e-10)


def test_cka_of_a_noiseless_copy_weights_features_by_squared_share(brain):
    """A feature holding a share s of both representations carries ~ s² / Σ s² of their
    CKA: a = 0.5, b = 0.2, c = 0.1 give 0.833, 0.133, 0.033 (within 0.02)."""
    out = attribute_cka(brain.response, brain.signal)
    s = np.array(list(SHARES.values()))
    np.testing.assert_allclose(out.share / out.features_score, s**2 / np.sum(s**2), atol=0.02)
    assert float(out.share.sel(feature="a")) > 0.8 * float(out.total)


def test_symmetric_features_get_equal_shares(stimuli):
    f = np.stack([stimuli[f"feature_{k}"].values - 0.5 for k in "ab"], axis=1)
    c = stimuli.feature_c.values[:, None] - 1.0
    x = xr.DataArray(np.hstack([f, 0.3 * c]), dims=("stimulus", "unit"), coords=stimuli.coords,
                     attrs=stimuli.attrs)
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    y = x.copy(data=x.values @ rotation)
    for out in (attribute_cka(x, y), attribute_rsa(x, y)):
        a, b = out.share.sel(feature=["a", "b"]).values
        assert a == pytest.approx(b, abs=1e-12)
        assert a > float(out.share.sel(feature="c"))


def test_a_feature_absent_from_one_representation_gets_no_share(stimuli, brain):
    only_a = _model(stimuli, {"a": 0.7}, seed=4)
    assert float(attribute_cka(only_a, brain.response).share.sel(feature="b")) == \
        pytest.approx(0.0, abs=1e-12)
    assert abs(float(attribute_rsa(only_a, brain.response).share.sel(feature="b"))) < 0.02
    enc = attribute_encoding(only_a, brain.response, estimator=RIDGE)
    assert abs(float(enc.share.sel(feature="b"))) < 0.02
    assert float(enc.share.sel(feature="a")) > 0.3


def test_stimulus_order_does_not_matter(stimuli, brain):
    x = _model(stimuli, {"a": 0.4, "b": 0.4}, seed=5)
    shuffled = brain.response.isel(stimulus=np.random.default_rng(0).permutation(144))
    xr.testing.assert_allclose(attribute_cka(x, brain.response).share,
                               attribute_cka(x, shuffled).share)


# --- encoding ----------------------------------------------------------------------------------


def test_encoding_total_is_the_cross_validated_r2(stimuli, brain):
    x = _model(stimuli, {"a": 0.4, "b": 0.3, "c": 0.2}, seed=6)
    out = attribute_encoding(x, brain.response, cv=4, seed=1, estimator=RIDGE)
    direct = cross_validated_scores(x, brain.response.mean("repeat"), cv=4, seed=1,
                                    estimator=RidgeEncoder(ALPHAS, device="cpu"))
    assert float(out.total) == pytest.approx(float(direct.r2.mean()), abs=1e-8)
    assert float(out.share.sum() + out.residual) == pytest.approx(float(out.total), abs=1e-12)
    predictor = attribute_encoding(x, brain.response, cv=4, seed=1, method="predictor",
                                   estimator=RIDGE)
    assert float(predictor.total) == pytest.approx(float(out.total), abs=1e-12)
    assert float(predictor.share.sum()) == pytest.approx(float(predictor.features_score))


def test_encoding_shares_follow_the_targets_feature_variance(brain):
    """A model that computes everything (the noiseless signal) predicts each feature's part of
    the responses: the shares are the responses' variance shares (per neuron, then averaged
    over neurons like R²), within 0.02."""
    out = attribute_encoding(brain.signal, brain.response, estimator=RIDGE)
    parts = feature_decomposition(brain.response)
    energy = (parts**2).sum("stimulus")
    per_neuron = (energy / energy.sum("component")).drop_sel(component="residual")
    np.testing.assert_allclose(out.share, per_neuron.mean("neuron"), atol=0.02)
    np.testing.assert_allclose(out.share_per_target.mean("neuron"), out.share, rtol=1e-12)


def test_encoding_does_not_depend_on_row_order(stimuli, brain):
    x = _model(stimuli, {"a": 0.4, "b": 0.3}, seed=6)
    perm = np.random.default_rng(1).permutation(144)
    kw = {"estimator": RIDGE, "cv": 4}
    out = attribute_encoding(x, brain.response, **kw)
    shuffled = attribute_encoding(x.isel(stimulus=perm), brain.response.isel(stimulus=perm),
                                  **kw)
    xr.testing.assert_allclose(shuffled.share, out.share)
    assert float(shuffled.total) == pytest.approx(float(out.total), abs=1e-12)
    raw = compare_controlled(x, brain.response, measures=["encoding"], **kw).score
    xr.testing.assert_allclose(compare_controlled(x.isel(stimulus=perm), brain.response,
                                                  measures=["encoding"], **kw).score, raw)


def test_median_encoding_score_splits_the_median_target(stimuli, brain):
    x = _model(stimuli, {"a": 0.4, "b": 0.3}, seed=6)
    out = attribute_encoding(x, brain.response, estimator=RIDGE, summary="median")
    r2 = cross_validated_scores(x, brain.response.mean("repeat"),
                                estimator=RidgeEncoder(ALPHAS, device="cpu")).r2
    assert float(out.total) == pytest.approx(float(r2.median()), abs=1e-8)
    assert float(out.share.sum() + out.residual) == pytest.approx(float(out.total), abs=1e-12)
    with pytest.raises(ValueError, match="summary='median' needs method='target'"):
        attribute_encoding(x, brain.response, method="predictor", summary="median")


def test_numpy_responses_with_repeats(brain):
    x, y = brain.signal, brain.response.transpose("stimulus", "neuron", "repeat")
    out = attribute_encoding(x.values, y.values, estimator=RIDGE, features=["a"],
                             stimuli=brain.drop_vars(["signal", "response"]))
    assert out.share_per_target.dims == ("feature", "unit")
    labelled = attribute_encoding(x, y, estimator=RIDGE, features=["a"])
    assert float(out.total) == pytest.approx(float(labelled.total), abs=1e-12)


def test_constant_pattern_gets_the_rdm_error(brain):
    x = brain.signal.copy()
    x[3] = 1.0
    with pytest.raises(ValueError, match=r"x \(positions.*undefined for 1 stimuli whose pattern "
                       r"is constant \(positions \[3\]\).*rdm_method='sqeuclidean'"):
        attribute_rsa(x, brain.signal, rdm_method="correlation")
    with pytest.raises(ValueError, match=r"^y .*all zero"):
        attribute_rsa(brain.signal, x - 1.0, rdm_method="cosine")


# --- bias control ------------------------------------------------------------------------------


def test_equalisation_makes_feature_shares_equal(stimuli):
    x = _model(stimuli, {"a": 0.6, "b": 0.05, "c": 0.0}, seed=7)
    before = variance_shares(x)
    after = variance_shares(equalise_feature_variance(x))
    np.testing.assert_allclose(after.share.sel(feature=["a", "b"]), 0.325, atol=1e-10)
    assert float(after.share.sel(feature="c")) == pytest.approx(0.0, abs=1e-12)  # not created
    assert float(after.residual) == pytest.approx(float(before.residual), abs=1e-10)
    assert float(after.total_variance) == pytest.approx(float(before.total_variance))


def test_equalised_comparison_sees_what_is_computed_not_how_loudly(stimuli):
    loud_a = _model(stimuli, {"a": 0.9, "b": 0.1}, seed=8)
    parts = feature_decomposition(loud_a)
    loud_b = 0.2 * parts.sel(component="a", drop=True) + 3.0 * parts.sel(component="b", drop=True)
    out = compare_controlled(loud_a, loud_b, estimator=RIDGE)
    raw, equalised = out.score.sel(condition="raw"), out.score.sel(condition="equalised")
    assert (raw.sel(measure=["rsa", "cka"]) < 0.5).all()
    np.testing.assert_allclose(equalised.sel(measure=["rsa", "cka"]), 1.0, atol=1e-10)
    assert float(equalised.sel(measure="encoding")) > 0.99


def test_equalisation_leaves_a_feature_at_chance_level_alone():
    """B is not coded: its share is what noise puts in 3 of 7 dims, far below 4 x chance."""
    a, b = np.repeat(np.arange(2), 4), np.tile(np.arange(4), 2)
    rng = np.random.default_rng(0)
    x = xr.DataArray(3 * rng.normal(size=(2, 5))[a] + 0.1 * rng.normal(size=(8, 5)),
                     dims=("stimulus", "unit"), coords={"feature_A": ("stimulus", a),
                                                         "feature_B": ("stimulus", b)},
                     attrs={"feature_names": ["A", "B"]})
    eq = equalise_feature_variance(x)
    xr.testing.assert_allclose(variance_shares(eq).share, variance_shares(x).share)
    assert eq.attrs["equalised_features"] == ["A"] and eq.attrs["equalised_f_ratio"][1] < 4
    old = variance_shares(equalise_feature_variance(x, min_f_ratio=0)).share  # boosts noise
    np.testing.assert_allclose(old, float(old.mean()), rtol=1e-10)
    with pytest.raises(ValueError, match="min_f_ratio must be >= 0"):
        equalise_feature_variance(x, min_f_ratio=-1)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "match"), [
    (lambda x, y: attribute_rsa(x, y, compare_method="spearman"),
     r"valid: \['cosine', 'pearson'\]"),
    (lambda x, y: attribute_rsa(x, y, rdm_method="crossnobis"), "valid:"),
    (lambda x, y: attribute_cka(x, y, hsic="debiased"), "valid: \\['biased', 'unbiased'\\]"),
    (lambda x, y: attribute_cka(x, y, orthogonalise="qr"), "sequential"),
    (lambda x, y: attribute_encoding(x, y, method="both"), "predictor"),
    (lambda x, y: attribute_cka(x, y, features=["a", "z"]), "available"),
    (lambda x, y: compare_controlled(x, y, measures=["svcca"]), "valid:"),
    (lambda x, y: attribute_cka(x, y.isel(stimulus=slice(1, None))), "stimuli differ"),
])
def test_bad_requests_get_clear_errors(brain, call, match):
    with pytest.raises(ValueError, match=match):
        call(brain.signal, brain.response)


def test_too_many_features_for_exact_shapley():
    k = MAX_EXACT_FEATURES + 1
    stim = factorial_stimuli({f"f{i}": 2 for i in range(k)})
    x = xr.DataArray(np.random.default_rng(0).normal(size=(2**k, 3)), dims=("stimulus", "unit"),
                     coords=stim.coords, attrs=stim.attrs)
    with pytest.raises(ValueError, match=f"at most {MAX_EXACT_FEATURES}"):
        attribute_cka(x, x)


def test_unbalanced_features_are_orthogonalised_with_a_warning(brain):
    keep = ~((brain.feature_a == 1) & (brain.feature_b == 1) & (brain.exemplar > 2)).values
    x = brain.signal.isel(stimulus=keep)
    with pytest.warns(UserWarning, match="not orthogonal"):
        parts = feature_decomposition(x)
    for call in (variance_shares, lambda v: attribute_cka(v, v), equalise_feature_variance,
                 lambda v: compare_controlled(v, v, measures=["cka"])):
        with pytest.warns(UserWarning, match="not orthogonal") as record:
            call(x)
        assert {w.filename for w in record} == {__file__}  # points at the user's call
    np.testing.assert_allclose(parts.sum("component") + x.mean("stimulus"), x, atol=1e-10)
    with pytest.raises(ValueError, match="orthogonalise='sequential'"):
        attribute_cka(x, x, orthogonalise="strict")
