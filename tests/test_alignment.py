"""The unit-neuron alignment score (Higgins et al. 2021) on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bias.analysis.similarity.alignment import _score_from_weights, alignment_score


@pytest.fixture(scope="module")
def units():
    return np.random.default_rng(0).standard_normal((200, 6))


def test_weights_formula_against_hand_computed_entropy():
    r = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    score, per, rho = _score_from_weights(r)
    p = np.array([0.25, 0.25, 0.5])
    expected_mid = 1 - (-(p * np.log(p)).sum()) / np.log(3)
    np.testing.assert_allclose(per[:2], [1.0, expected_mid])
    assert np.isnan(per[2])                       # a neuron with no weight has no score
    np.testing.assert_allclose(rho, [0.2, 0.8, 0.0])
    assert score == pytest.approx(0.2 * 1.0 + 0.8 * expected_mid)


def test_all_zero_weights_are_undefined():
    assert np.isnan(_score_from_weights(np.zeros((3, 2)))[0])


def test_one_to_one_units_score_near_one_and_beat_the_null(units):
    rng = np.random.default_rng(1)
    neurons = units[:, ::-1] * [1, 2, 3, 1, 2, 3] + 0.1 * rng.standard_normal(units.shape)
    res = alignment_score(units, neurons, n_perm=30, n_boot=30)
    assert float(res.score) > 0.95
    assert float(res.p_value) == pytest.approx(1 / 31)
    assert float(res.ci_low) < float(res.ci_high)
    assert abs(float(res.ci_low) - float(res.score)) < 0.05
    assert res.neuron_score.shape == (6,)


def test_neuron_bootstrap_resamples_the_neurons_of_the_fit(units):
    """Each replicate is the score over neurons drawn with replacement, their weights rho
    renormalised (recomputed here from the returned per-neuron scores and weights, with the
    same draws); the interval holds the one-to-one score, which the stimulus bootstrap's
    refits on repeated stimuli pull below."""
    rng = np.random.default_rng(1)
    neurons = units[:, ::-1] * [1, 2, 3, 1, 2, 3] + 0.1 * rng.standard_normal(units.shape)
    res = alignment_score(units, neurons, n_perm=4, n_boot=25, seed=7)
    draws = np.random.default_rng(7)
    for _ in range(4):
        draws.permutation(200)
    per, rho = res.neuron_score.values, res.neuron_weight.values
    for b in range(25):
        j = draws.integers(0, 6, 6)
        assert float(res.bootstrap[b]) == pytest.approx((rho[j] * per[j]).sum() / rho[j].sum())
    assert float(res.ci_low) <= float(res.score) <= float(res.ci_high)
    assert res.attrs["bootstrap"] == "neuron"
    refit = alignment_score(units, neurons, n_perm=4, n_boot=10, seed=7, bootstrap="stimulus")
    assert float(refit.score) == float(res.score)
    assert float(refit.null[0]) == float(res.null[0])
    with pytest.raises(ValueError, match="bootstrap"):
        alignment_score(units, neurons, n_perm=2, n_boot=2, bootstrap="subjects")


def test_rotated_units_score_clearly_lower(units):
    rng = np.random.default_rng(2)
    neurons = units + 0.1 * rng.standard_normal(units.shape)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    aligned = float(alignment_score(units, neurons, n_perm=5, n_boot=5).score)
    rotated = float(alignment_score(units @ q, neurons, n_perm=5, n_boot=5).score)
    assert rotated < aligned - 0.5


def test_permuted_neurons_fall_in_the_null(units):
    rng = np.random.default_rng(3)
    neurons = (units + 0.1 * rng.standard_normal(units.shape))[rng.permutation(200)]
    res = alignment_score(units, neurons, n_perm=40, n_boot=5, seed=4)
    assert float(res.p_value) > 0.05


def test_labelled_inputs_are_aligned_by_stimulus_id(units):
    rng = np.random.default_rng(5)
    neurons = units + 0.1 * rng.standard_normal(units.shape)
    ids = np.arange(200)
    x = xr.DataArray(units, dims=("stimulus", "unit"), coords={"stimulus": ids})
    order = rng.permutation(200)
    y = xr.DataArray(neurons[order], dims=("stimulus", "neuron"), coords={"stimulus": ids[order]})
    a = alignment_score(x, y, n_perm=3, n_boot=3)
    b = alignment_score(units, neurons, n_perm=3, n_boot=3)
    assert float(a.score) == pytest.approx(float(b.score), abs=1e-9)


def test_bad_input_is_refused(units):
    with pytest.raises(ValueError, match="constant"):
        alignment_score(units, np.ones((200, 2)), n_perm=2, n_boot=2)
    with pytest.raises(ValueError, match="too few"):
        alignment_score(units[:6], units[:6], n_perm=2, n_boot=2)
    with pytest.raises(ValueError, match="ci"):
        alignment_score(units, units, ci=1.5)
