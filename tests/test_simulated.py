"""Simulated populations: the realised variance shares are the requested ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from rsa_bias.analysis import feature_variance_explained, variance_shares
from rsa_bias.brain.simulated import component_bases, factorial_stimuli, simulate_population


def _class_mean_share(values: np.ndarray, labels: np.ndarray) -> float:
    """Share of the variance of ``values`` (stimulus, unit) between the classes of ``labels``,
    computed the textbook way (ANOVA between-class sum of squares), independently of the
    module's projections."""
    centred = values - values.mean(axis=0)
    between = sum(np.sum(labels == k) * np.sum(centred[labels == k].mean(axis=0) ** 2)
                  for k in np.unique(labels))
    return between / np.sum(centred**2)


def _interaction_share(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    cells = a * 100 + b
    return (_class_mean_share(values, cells) - _class_mean_share(values, a)
            - _class_mean_share(values, b))


@pytest.fixture(scope="module")
def stimuli() -> xr.Dataset:
    return factorial_stimuli({"a": 2, "b": 3, "c": 2}, repeats=4)


def test_factorial_stimuli_is_a_balanced_full_factorial():
    ds = factorial_stimuli({"shape": 3, "colour": 2}, repeats=5)
    assert ds.sizes["stimulus"] == 30
    assert ds.attrs["feature_names"] == ["shape", "colour"]
    assert len(np.unique(ds.stimulus)) == 30
    cells = ds.feature_shape.values * 10 + ds.feature_colour.values
    assert set(np.unique(cells, return_counts=True)[1]) == {5}
    np.testing.assert_array_equal(np.bincount(ds.exemplar.values), [6] * 5)


@pytest.mark.parametrize(("levels", "repeats", "match"), [
    ({}, 1, "empty"), ({"a": 1}, 1, "at least 2"), ({"a": 2}, 0, "repeats"),
    ({"a b": 2}, 1, "identifier")])
def test_factorial_stimuli_refuses_bad_levels(levels, repeats, match):
    with pytest.raises(ValueError, match=match):
        factorial_stimuli(levels, repeats=repeats)


@pytest.mark.parametrize("nonlinearity", ["none", "relu", "tanh"])
def test_realised_shares_equal_requested(stimuli, nonlinearity):
    shares = {"a": 0.5, "b": 0.2, "a:b": 0.1}
    pop = simulate_population(stimuli, shares, n_neurons=40, nonlinearity=nonlinearity, seed=3)
    s, f = pop.signal.values, {k: pop[f"feature_{k}"].values for k in "abc"}
    assert _class_mean_share(s, f["a"]) == pytest.approx(0.5, abs=1e-10)
    assert _class_mean_share(s, f["b"]) == pytest.approx(0.2, abs=1e-10)
    assert _interaction_share(s, f["a"], f["b"]) == pytest.approx(0.1, abs=1e-10)
    assert _class_mean_share(s, f["c"]) == pytest.approx(0.0, abs=1e-12)  # listed, not requested
    np.testing.assert_allclose(pop.signal.mean("stimulus"), 0, atol=1e-12)
    assert float((pop.signal**2).mean()) == pytest.approx(1.0)  # unit variance on average
    assert dict(zip(pop.component.values, pop.true_share.values, strict=True)) == \
        pytest.approx({"a": 0.5, "b": 0.2, "c": 0.0, "a:b": 0.1, "residual": 0.2})


def test_shares_on_a_binary_task_match_the_papers_metric(small_task):
    pop = simulate_population(small_task, {"easy": 0.55, "hard": 0.05}, n_neurons=30, seed=0)
    act = pop.signal.rename(neuron="unit")
    r2 = feature_variance_explained(act, fit_split=None, eval_split=None).r2
    np.testing.assert_allclose(r2.sel(feature=["easy", "hard"]), [0.55, 0.05], atol=1e-10)
    assert set(pop.split.values) == {"train", "val", "test"}  # stimulus coords carried over


def test_noise_level_and_independent_repeats(stimuli):
    pop = simulate_population(stimuli, {"a": 0.6, "b": 0.2}, n_neurons=300, noise_ratio=0.5,
                              n_repeats=3, seed=1)
    assert pop.response.dims == ("stimulus", "neuron", "repeat")
    noise = (pop.response - pop.signal).values
    assert noise.var() == pytest.approx(0.5, rel=0.03)
    r = np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]
    assert abs(r) < 0.03
    # On single trials each share shrinks by 1 / (1 + noise_ratio), within 0.02.
    one = pop.response.isel(repeat=0).values
    assert _class_mean_share(one, pop.feature_a.values) == pytest.approx(0.6 / 1.5, abs=0.02)
    assert _class_mean_share(one, pop.feature_b.values) == pytest.approx(0.2 / 1.5, abs=0.02)


def test_residual_rank_and_determinism(stimuli):
    kw = {"n_neurons": 25, "residual_rank": 3, "seed": 7}
    pop = simulate_population(stimuli, {"a": 0.3}, **kw)
    again = simulate_population(stimuli, {"a": 0.3}, **kw)
    xr.testing.assert_identical(pop.drop_attrs(), again.drop_attrs())
    s = pop.signal.values
    a = pop.feature_a.values
    residual = s - np.stack([s[a == k].mean(axis=0) for k in a])  # the a-part removed
    assert np.linalg.matrix_rank(residual, tol=1e-8) == 3


def test_provenance_attrs(stimuli):
    pop = simulate_population(stimuli, {"a": 0.5}, n_neurons=5, noise_ratio=0.1, seed=2)
    cfg = json.loads(pop.attrs["config_json"])
    assert cfg["shares"]["a"] == 0.5 and cfg["noise_ratio"] == 0.1
    assert pop.attrs["method"] == "simulate_population" and json.loads(pop.attrs["seed"]) == 2
    assert pop.attrs["feature_names"] == ["a", "b", "c"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"shares": {"a": 0.8, "b": 0.3}}, "add up to"),
    ({"shares": {"a": -0.1}}, ">= 0"),
    ({"shares": {"d": 0.1}}, "feature_d"),
    ({"shares": {"a": 0.5}, "nonlinearity": "cubic"}, r"valid: \['none', 'relu', 'tanh'\]"),
    ({"shares": {"a": 0.5}, "residual_rank": 1000}, "residual_rank"),
    ({"shares": {"a": 0.5, "residual": 0.2}}, "residual"),
    ({"shares": {"a:a": 0.3}}, r"'a:a' must name distinct features"),
    ({"shares": {"a": 0.3}, "nonlinearity": "relu", "residual_rank": 2},
     r"residual_rank=2 cannot hold with nonlinearity='relu'.*residual_rank=None"),
    ({"shares": {"a": 0.3}, "nonlinearity": "tanh", "residual_rank": 1}, "cannot hold"),
])
def test_bad_requests_are_refused(stimuli, kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_population(stimuli, **kwargs)


def test_no_room_for_residual_is_explained():
    full = factorial_stimuli({"a": 2, "b": 2})  # 4 stimuli: a, b and a:b use every direction
    with pytest.raises(ValueError, match="no room for residual"):
        simulate_population(full, {"a": 0.5, "b": 0.2, "a:b": 0.1})
    pop = simulate_population(full, {"a": 0.5, "b": 0.2, "a:b": 0.3}, n_neurons=3)
    assert float(pop.true_share.sel(component="residual")) == pytest.approx(0.0)
    # Unnamed, the interaction direction is where the residual goes.
    pop = simulate_population(full, {"a": 0.5, "b": 0.2}, n_neurons=3)
    s, a, b = pop.signal.values, pop.feature_a.values, pop.feature_b.values
    assert _interaction_share(s, a, b) == pytest.approx(0.3, abs=1e-10)


def test_conjunction_with_an_unlisted_feature_holds_no_main_effect(stimuli):
    only_a = stimuli.assign_attrs(feature_names=["a"])
    pop = simulate_population(only_a, {"a:c": 0.5}, n_neurons=40, seed=0)
    s, a, c = pop.signal.values, pop.feature_a.values, pop.feature_c.values
    assert _class_mean_share(s, c) == pytest.approx(0.0, abs=1e-12)
    assert _class_mean_share(s, a) == pytest.approx(0.0, abs=1e-12)
    assert _interaction_share(s, a, c) == pytest.approx(0.5, abs=1e-10)
    assert float(pop.true_share.sel(component="c")) == 0.0
    assert pop.attrs["feature_names"] == ["a"]


def test_residual_avoids_main_effects_and_requested_conjunctions_only(stimuli):
    """What the module docstring promises about the residual, and what it does not."""
    f = {k: stimuli[f"feature_{k}"].values for k in "abc"}
    pop = simulate_population(stimuli, {"a": 0.4, "b": 0.2, "a:b": 0.1}, n_neurons=40, seed=3)
    s = pop.signal.values
    assert _class_mean_share(s, f["c"]) == pytest.approx(0.0, abs=1e-12)
    assert _interaction_share(s, f["a"], f["b"]) == pytest.approx(0.1, abs=1e-10)
    assert _interaction_share(s, f["a"], f["c"]) > 1e-3      # unrequested: some residual
    kept = simulate_population(stimuli, {"a": 0.4, "b": 0.2, "a:b": 0.1, "a:c": 0.0},
                               n_neurons=40, seed=3).signal.values
    assert _interaction_share(kept, f["a"], f["c"]) == pytest.approx(0.0, abs=1e-12)
    assert _interaction_share(kept, f["b"], f["c"]) > 1e-3


def test_three_way_conjunction_is_the_same_subspace_as_the_analysis_uses():
    """One builder of feature subspaces: a three-way conjunction excludes the two-way
    interactions in the simulated brain and in the analysis alike, so the share the simulation
    sets is the share variance_shares reads back. (The earlier analysis builder kept the two-way
    interactions inside "a:b:c": a signal with an "a:b" share of 0.2 and no three-way
    interaction read 0.280 as "a:b:c".)"""
    stim = factorial_stimuli({"a": 2, "b": 2, "c": 2}, repeats=3)
    pop = simulate_population(stim, {"a": 0.3, "a:b:c": 0.2}, n_neurons=40, seed=0)
    shares = variance_shares(pop.signal, features=["a", "b", "c", "a:b:c"]).share
    np.testing.assert_allclose(shares, [0.3, 0.0, 0.0, 0.2], atol=1e-10)
    bases = component_bases(stim, ["a", "a:b:c"])
    from rsa_bias.analysis.features.subspaces import _bases, _labelled
    ours = _bases(_labelled(pop.signal, None, "x"), ["a", "b", "c", "a:b:c"], "strict")[-1]
    np.testing.assert_allclose(ours @ ours.T, bases["a:b:c"] @ bases["a:b:c"].T, atol=1e-12)
