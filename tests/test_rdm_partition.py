"""The RDM-level view of which feature drives an RSA score: feature-model RDMs, RDM variance
partitioning (against scikit-learn) and residualised RDMs, on simulated ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import LinearRegression

from rsa_bias import (
    feature_model_rdms,
    rdm,
    rdm_variance_partition,
    residualise_rdm,
    variance_shares,
)
from rsa_bias.analysis.rsa.forms import condensed
from rsa_bias.brain.simulated import factorial_stimuli, simulate_population


def test_feature_model_rdms(stimuli):
    models = feature_model_rdms(stimuli)
    assert models.dims == ("model", "stimulus_i", "stimulus_j")
    a = stimuli.feature_a.values
    np.testing.assert_array_equal(models.sel(model="a"), (a[:, None] != a[None, :]).astype(float))
    joint = feature_model_rdms(stimuli, features=["a:b"]).sel(model="a:b")
    np.testing.assert_array_equal(joint, np.maximum(models.sel(model="a"), models.sel(model="b")))


def test_pair_rdms_capture_any_geometry_of_a_feature(stimuli):
    c = stimuli.feature_c.values  # 3 values
    table = np.array([[0.1, 2.0, 0.5], [2.0, 0.3, 1.0], [0.5, 1.0, 0.2]])  # any symmetric map
    target = xr.DataArray(table[c[:, None], c[None, :]], dims=("stimulus_i", "stimulus_j"),
                          coords={"stimulus_i": stimuli.stimulus.values,
                                  "stimulus_j": stimuli.stimulus.values})
    pairs = feature_model_rdms(stimuli, features=["c"], geometry="pairs")
    assert pairs.sizes["model"] == 6 and "c[0,2]" in pairs.model.values
    assert float(rdm_variance_partition(target, pairs).r2) == pytest.approx(1.0)
    c_only = feature_model_rdms(stimuli, features=["c"])
    assert float(rdm_variance_partition(target, c_only).r2) < 0.9
    np.testing.assert_allclose(residualise_rdm(target, pairs), 0, atol=1e-10)


def test_pair_rdms_are_partitioned_by_feature():
    stim = factorial_stimuli({"a": 3, "b": 4}, repeats=2)
    x = simulate_population(stim, {"a": 0.6, "b": 0.2}, n_neurons=20, seed=0).signal
    target, pairs = rdm(x), feature_model_rdms(stim, geometry="pairs")
    assert pairs.sizes["model"] == 16  # one predictor per value pair: 6 + 10
    out = rdm_variance_partition(target, pairs)
    assert list(out.model.values) == ["a", "b"] and list(out.n_predictors.values) == [6, 10]
    design = condensed(pairs).values.T
    full = LinearRegression().fit(design, condensed(target).values)
    assert float(out.r2) == pytest.approx(full.score(design, condensed(target).values))
    assert float(out.share.sum()) == pytest.approx(float(out.r2), abs=1e-12)
    assert float(out.share.sel(model="a")) > float(out.share.sel(model="b"))
    a_only = [m for m in pairs.model.values if m.startswith("a[")]
    with pytest.raises(ValueError, match=r"11 predictor groups.*groups=\{name"):
        rdm_variance_partition(target, pairs, groups={"A": a_only})  # + 10 b's alone
    same_b = [f"b[{k},{k}]" for k in range(4)]
    mixed = rdm_variance_partition(target, pairs, groups={"A": a_only, "b same": same_b})
    assert mixed.sizes["model"] == 8 and float(mixed.r2) == pytest.approx(float(out.r2))
    with pytest.raises(ValueError, match="'a\\[9,9\\]'.*the predictors are"):
        rdm_variance_partition(target, pairs, groups={"A": ["a[9,9]"]})


def test_string_valued_features(stimuli, brain):
    named = brain.signal.assign_coords(feature_c=("stimulus", np.array(["x", "y", "z"])[
        brain.feature_c.values]))
    xr.testing.assert_allclose(variance_shares(named).share, variance_shares(brain.signal).share)


def test_rdm_variance_partition_against_sklearn(stimuli, brain):
    target = rdm(brain.response.mean("repeat"), method="sqeuclidean")
    models = feature_model_rdms(stimuli)
    out = rdm_variance_partition(target, models)
    design = condensed(models).values.T
    t = condensed(target).values
    assert float(out.r2) == pytest.approx(LinearRegression().fit(design, t).score(design, t))
    assert float(out.share.sum()) == pytest.approx(float(out.r2), abs=1e-12)
    assert float(out.unique.sum() + out.shared) == pytest.approx(float(out.r2), abs=1e-12)
    assert list(out.share.to_series().sort_values().index) == ["c", "b", "a"]  # by loudness
    shuffled = models.isel(stimulus_i=slice(None, None, -1), stimulus_j=slice(None, None, -1))
    xr.testing.assert_allclose(rdm_variance_partition(target, shuffled).share, out.share)


def test_residualised_rdm_is_orthogonal_to_the_predictors(stimuli, brain):
    target = rdm(brain.response.mean("repeat"), method="sqeuclidean")
    models = feature_model_rdms(stimuli, features=["a"])
    res = residualise_rdm(target, {"a": models.sel(model="a")})
    v = condensed(res).values
    assert abs(v.mean()) < 1e-10 and abs(v @ condensed(models.sel(model="a")).values) < 1e-8
    assert res.attrs["predictors"] == ["a"]


def test_a_stack_under_one_predictor_name_is_refused():
    """A mapping value holding several RDMs used to enter as its first RDM alone, silently."""
    rng = np.random.default_rng(0)
    a, b = rng.random(45), rng.random(45)
    with pytest.raises(ValueError, match="stack of 2 RDMs"):
        rdm_variance_partition(2 * a + b, {"ab": np.stack([a, b])})
    grouped = rdm_variance_partition(2 * a + b, np.stack([a, b]), groups={"ab": ["model_0",
                                                                                 "model_1"]})
    assert float(grouped.r2) == pytest.approx(1.0, abs=1e-10)
