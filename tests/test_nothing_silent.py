"""Cases that once gave a silently wrong number: alignment of inherited methods, seeded
results that followed the row order, and bad values that passed the boundary."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from rsa_bias.analysis import (
    RidgeEncoder,
    compare_rdms,
    correct_pvalues,
    cross_validated_scores,
    evaluate_models,
    permutation_test,
    rdm,
)


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = x @ rng.normal(size=(5, 3)) + 0.3 * rng.normal(size=(40, 3))
    ids = np.arange(40) + 100
    xa = xr.DataArray(x, dims=("stimulus", "feature"), coords={"stimulus": ids})
    ya = xr.DataArray(y, dims=("stimulus", "voxel"), coords={"stimulus": ids})
    return xa, ya, rng.permutation(40)


@pytest.fixture(scope="module")
def encoder(xy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RidgeEncoder().fit(xy[0], xy[1])


def test_score_aligns_y_on_stimulus_ids(xy, encoder):
    xa, ya, perm = xy
    aligned = encoder.score(xa, ya)
    assert aligned > 0.9
    assert encoder.score(xa, ya.isel(stimulus=perm)) == pytest.approx(aligned, abs=1e-12)
    assert encoder.score(xa.isel(stimulus=perm), ya) == pytest.approx(aligned, abs=1e-12)


def test_score_refuses_other_stimuli(xy, encoder):
    xa, ya, _ = xy
    with pytest.raises(ValueError, match="stimuli differ"):
        encoder.score(xa, ya.assign_coords(stimulus=ya.stimulus.values + 1000))


def test_score_pairs_a_numpy_y_as_fit_does(xy):
    """A numpy side has ids 0..n-1 in fit and in score alike."""
    xa, ya, perm = xy
    x0 = xa.assign_coords(stimulus=np.arange(40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = RidgeEncoder().fit(x0.isel(stimulus=perm), ya.values)
    assert enc.score(x0.isel(stimulus=perm), ya.values) == pytest.approx(
        enc.score(x0.values, ya.values), abs=1e-12)
    assert enc.score(x0.values, ya.values) > 0.9


def test_mixed_id_types_are_refused_by_name(xy, encoder):
    xa, ya, _ = xy
    text = ya.assign_coords(stimulus=ya.stimulus.astype(str))
    with pytest.raises(ValueError, match="different types"):
        encoder.score(xa, text)
    with pytest.raises(ValueError, match="different types"):
        cross_validated_scores(xa, text)


def test_cross_validated_scores_do_not_follow_row_order(xy):
    xa, ya, perm = xy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = cross_validated_scores(xa, ya, seed=3)
        b = cross_validated_scores(xa.isel(stimulus=perm), ya, seed=3)
    np.testing.assert_allclose(a.r2, b.r2, rtol=1e-12)


@pytest.fixture(scope="module")
def rdms():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(12, 6))
    data = xr.concat([rdm(truth + rng.normal(size=(12, 6))) for _ in range(4)], "subject")
    models = xr.concat([rdm(truth), rdm(rng.normal(size=(12, 6)))], "model")
    return models, data, rng.permutation(12)


def _permuted(r, perm):
    return r.isel(stimulus_i=perm, stimulus_j=perm)


def test_bootstrap_intervals_do_not_follow_row_order(rdms):
    models, data, perm = rdms
    a = evaluate_models(models, data, n_boot=200, seed=5)
    b = evaluate_models(models, _permuted(data, perm), n_boot=200, seed=5)
    np.testing.assert_allclose(a.ci_low, b.ci_low, rtol=1e-12)
    np.testing.assert_allclose(a.score_bootstrap, b.score_bootstrap, rtol=1e-12)


def test_permutation_p_values_do_not_follow_row_order(rdms):
    models, data, perm = rdms
    a = permutation_test(models, data, n_perm=200, seed=5)
    b = permutation_test(models, _permuted(data, perm), n_perm=200, seed=5)
    np.testing.assert_array_equal(a.p_value, b.p_value)


def test_explicit_indices_still_point_into_the_data_order(rdms):
    models, data, perm = rdms
    idx = np.random.default_rng(2).integers(0, 12, (20, 12))
    a = evaluate_models(models, data, indices={"stimulus": idx})
    pd_ = _permuted(data, perm)  # the same draws, expressed in the permuted data's order
    inverse = np.argsort(perm)
    b = evaluate_models(models, pd_, indices={"stimulus": inverse[idx]})
    np.testing.assert_allclose(a.score_bootstrap, b.score_bootstrap, rtol=1e-12)


@pytest.mark.parametrize(("kw", "match"), [({"n_boot": 0}, "n_boot"), ({"n_boot": -5}, "n_boot"),
                                           ({"n_boot": 2.5}, "n_boot")])
def test_evaluate_models_refuses_bad_counts(rdms, kw, match):
    with pytest.raises(ValueError, match=match):
        evaluate_models(rdms[0], rdms[1], **kw)


def test_permutation_test_refuses_zero_permutations(rdms):
    with pytest.raises(ValueError, match="n_perm"):
        permutation_test(rdms[0], rdms[1], n_perm=0)


@pytest.mark.parametrize("p", [[0.1, 1.2], [-0.01], [np.inf, 0.2]])
def test_correct_pvalues_refuses_non_probabilities(p):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        correct_pvalues(np.array(p))


def test_correct_pvalues_keeps_nan_entries_out_of_the_family():
    out = correct_pvalues(np.array([0.01, np.nan, 0.04]), correction="bonferroni")
    np.testing.assert_allclose(out, [0.02, np.nan, 0.08])


# --------------------------------------------------------------------------- values


@pytest.fixture(scope="module")
def patterns():
    return np.random.default_rng(3).normal(size=(8, 6))


@pytest.mark.parametrize("bad", [-np.eye(6), np.zeros((6, 6)), -np.ones(6),
                                 np.diag([1.0, 1, 1, 1, 1, -2])])
def test_noise_that_is_not_positive_definite_is_refused(patterns, bad):
    with pytest.raises(ValueError, match="positive definite"):
        rdm(patterns, method="mahalanobis", noise=bad)


def test_complex_patterns_are_refused_not_truncated(patterns):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a ComplexWarning: an error
        with pytest.raises(ValueError, match="Complex data not supported"):
            rdm(patterns + 1e-3j)
        with pytest.raises(ValueError, match="Complex"):
            compare_rdms(rdm(patterns).values + 0j, rdm(patterns).values)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e150, 1e-150])
@pytest.mark.parametrize(("method", "power"), [("euclidean", 1), ("correlation", 0),
                                               ("cosine", 0)])
def test_huge_and_tiny_patterns_are_rescaled(patterns, scale, method, power):
    big = rdm(patterns * scale, method=method).values
    ref = rdm(patterns, method=method).values * scale**power
    np.testing.assert_allclose(big, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("scale", "what"), [(1e200, "overflow"), (1e-200, "underflow")])
def test_squared_distances_out_of_range_are_refused(patterns, scale, what):
    with pytest.raises(ValueError, match=what):
        rdm(patterns * scale, method="sqeuclidean")
    assert np.all(np.isfinite(rdm(patterns * 1e100, method="sqeuclidean").values))


def test_empty_input_is_refused(patterns):
    with pytest.raises(ValueError, match="empty|at least"):
        rdm(patterns[:, :0])
    with pytest.raises(ValueError, match="empty|at least"):
        cross_validated_scores(patterns[:0], patterns[:0])


# --------------------------------------------------------------------------- probe findings


def test_a_stimulus_bootstrap_over_too_few_stimuli_has_no_interval():
    """With 3 stimuli most replicates are degenerate; the rest repeat the full data, which
    once reported a zero-width interval."""
    rng = np.random.default_rng(0)

    def one():
        a = rng.random((3, 3))
        return (a + a.T) / 2 * (1 - np.eye(3))

    with pytest.warns(RuntimeWarning, match="too few for a stimulus bootstrap"):
        res = evaluate_models(np.stack([one(), one()]), np.stack([one(), one(), one()]),
                              n_boot=200)
    assert np.isnan(res.ci_low).all() and np.isnan(res.standard_error).all()


def test_noise_precision_refuses_what_has_no_precision():
    from rsa_bias.analysis import noise_precision

    with pytest.raises(ValueError, match="constant"):
        noise_precision(np.zeros((50, 4)))
    noisy = np.random.default_rng(0).normal(size=(50, 4))
    for dof in (-3, 0, 2.5):
        with pytest.raises(ValueError, match="dof"):
            noise_precision(noisy, dof=dof)
    with pytest.raises(ValueError, match="more residuals") as err:
        noise_precision(np.random.default_rng(0).normal(size=(2, 9)))
    assert "use method='shrinkage_diag'" not in str(err.value)  # it was the method that failed


@pytest.mark.parametrize(("call", "match"), [
    (lambda x, y: cross_validated_scores(x, y, n_splits=0), "n_splits"),
    (lambda x, y: cross_validated_scores(x, y, seed=-1), "seed"),
    (lambda x, y: cross_validated_scores(x, y, cv="x"), "cv"),
    (lambda x, y: RidgeEncoder(alphas="abc").fit(x, y), "alphas"),
    (lambda x, y: RidgeEncoder(alpha_per_target="no").fit(x, y), "alpha_per_target"),
    (lambda x, y: rdm(x, remove_mean="yes"), "remove_mean"),
])
def test_bad_options_name_the_option(xy, call, match):
    with pytest.raises(ValueError, match=match):
        call(xy[0], xy[1])


@pytest.mark.parametrize(("kw", "match"), [({"ci": "0.9"}, "ci"), ({"ci": 1.0}, "ci"),
                                           ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed")])
def test_inference_options_name_the_option(rdms, kw, match):
    with pytest.raises(ValueError, match=match):
        evaluate_models(rdms[0], rdms[1], n_boot=10, **kw)


def test_noise_ceiling_and_spearman_brown_refuse_bad_options():
    from rsa_bias.analysis import response_noise_ceiling, spearman_brown

    responses = np.random.default_rng(0).normal(size=(10, 3, 4))
    with pytest.raises(ValueError, match="n_splits"):
        response_noise_ceiling(responses, n_splits=0)
    with pytest.raises(ValueError, match="factor"):
        spearman_brown(0.5, factor=-1)


def test_cuda_without_a_gpu_is_a_clear_error(xy):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        RidgeEncoder(device="cuda").fit(xy[0], xy[1])


@pytest.mark.parametrize(("call", "match"), [
    (lambda an: an.squareform(np.float64(1)), "scalar"),
    (lambda an: an.compare_rdms(np.zeros((3, 4)), np.zeros(6)), r"shape \(3, 4\)"),
    (lambda an: an.stack_runs(np.zeros((6, 3)), runs="abc", stimulus_ids=np.arange(6)),
     "run label of each row"),
])
def test_malformed_rdm_inputs_say_what_is_wrong(call, match):
    import rsa_bias.analysis as an

    with pytest.raises(ValueError, match=match):
        call(an)


def test_ids_that_mix_text_and_numbers_are_refused_by_name():
    from rsa_bias.analysis import cka

    x = xr.DataArray(np.random.default_rng(0).normal(size=(6, 3)), dims=("stimulus", "unit"),
                     coords={"stimulus": np.array([1, "a", 2, "b", 3, "c"], dtype=object)})
    with pytest.raises(ValueError, match="mix text and numbers"):
        cka(x, x)


def test_a_dead_seed_shows_in_the_summary_instead_of_dropping_out():
    from rsa_bias.experiments import summary_table

    r2 = np.array([[0.5, 0.1], [np.nan, np.nan]])  # seed 1's layer was constant
    res = xr.Dataset({"r2": (("seed", "feature"), r2),
                      "accuracy": (("seed", "split", "feature", "eval_step"),
                                   np.ones((2, 1, 2, 1)))},
                     coords={"seed": [0, 1], "feature": ["easy", "hard"], "split": ["test"]})
    res = res.expand_dims(layer=["hidden_0"])
    table = summary_table(res)
    assert np.isnan(table.R2_mean).all() and np.isnan(table.R2_min).all()
