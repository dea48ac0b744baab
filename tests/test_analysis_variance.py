"""Feature variance explained: agrees with scikit-learn and with the analytic value."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression

from rsa_bias.analysis import (
    feature_variance_explained,
    normalise_by_final,
    variance_explained_arrays,
)
from rsa_bias.config import FeatureSpec, TaskConfig
from rsa_bias.tasks import make_binary_task


def sklearn_r2(phi_fit, x_fit, phi_eval, x_eval) -> float:
    """R² of an encoding model fitted on one split and scored on another."""
    model = LinearRegression().fit(x_fit, phi_fit)
    sse = np.sum((phi_eval - model.predict(x_eval)) ** 2)
    sst = np.sum((phi_eval - phi_fit.mean(axis=0)) ** 2)
    return 1.0 - sse / sst


def _split(act: xr.DataArray, name: str):
    mask = act.split.values == name
    phi = act.values[mask]
    f = np.stack([act[f"feature_{n}"].values[mask] for n in act.attrs["feature_names"]], 1)
    return phi, f.astype(float)


# --- reference: scikit-learn -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_per_feature_and_joint(make_activation, seed):
    rng = np.random.default_rng(seed)
    n, d = 260, 6
    f = rng.integers(0, 2, size=(n, 3))
    phi = np.tanh(f @ rng.normal(size=(3, d)) + rng.normal(size=(n, d))) + rng.normal(
        scale=0.3, size=(n, d))
    split = rng.choice(np.array(["train", "val", "test"]), size=n)
    act = make_activation(phi, {"a": f[:, 0], "b": f[:, 1], "c": f[:, 2]}, split)
    res = feature_variance_explained(act)
    (phi_v, f_v), (phi_t, f_t) = _split(act, "val"), _split(act, "test")
    for j, name in enumerate(["a", "b", "c"]):
        want = sklearn_r2(phi_v, f_v[:, [j]], phi_t, f_t[:, [j]])
        assert float(res.r2.sel(feature=name)) == pytest.approx(want, abs=1e-10)
    assert float(res.r2_joint) == pytest.approx(sklearn_r2(phi_v, f_v, phi_t, f_t), abs=1e-10)
    total = np.sum((phi_t - phi_v.mean(axis=0)) ** 2)
    assert float(res.total) == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(res.explained.values, res.r2.values * total, rtol=1e-10)
    assert float(res.explained_joint) == pytest.approx(float(res.r2_joint) * total, rel=1e-10)


def test_arrays_kernel_matches_sklearn():
    rng = np.random.default_rng(7)
    phi_fit, phi_eval = rng.normal(size=(50, 4)), rng.normal(size=(40, 4))
    f_fit, f_eval = rng.integers(0, 2, (50, 2)), rng.integers(0, 2, (40, 2))
    phi_fit[:, 0] += 3 * f_fit[:, 0]
    phi_eval[:, 0] += 3 * f_eval[:, 0]
    out = variance_explained_arrays(phi_fit, f_fit.astype(float), phi_eval, f_eval.astype(float))
    for j in range(2):
        want = sklearn_r2(phi_fit, f_fit[:, [j]], phi_eval, f_eval[:, [j]])
        assert out["r2"][j] == pytest.approx(want, abs=1e-10)
    assert out["r2_joint"] == pytest.approx(sklearn_r2(phi_fit, f_fit, phi_eval, f_eval),
                                            abs=1e-10)


def test_in_sample_fit_with_same_split(random_activation):
    res = feature_variance_explained(random_activation, fit_split="val", eval_split="val")
    phi, f = _split(random_activation, "val")
    for j, name in enumerate(["a", "b", "c"]):
        want = sklearn_r2(phi, f[:, [j]], phi, f[:, [j]])
        assert float(res.r2.sel(feature=name)) == pytest.approx(want, abs=1e-10)
        assert 0 <= want <= 1  # in-sample least squares never does worse than the mean


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fixture is read-only
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 100.0),
       shift=st.floats(-50.0, 50.0))
def test_invariant_to_rotation_scaling_and_shift(random_activation, seed, scale, shift):
    """R² depends on Euclidean geometry only: φ -> scale · φ Q + shift leaves it unchanged."""
    rng = np.random.default_rng(seed)
    d = random_activation.sizes["unit"]
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    moved = random_activation.copy(data=scale * random_activation.values @ q + shift)
    a = feature_variance_explained(random_activation)
    b = feature_variance_explained(moved)
    np.testing.assert_allclose(b.r2.values, a.r2.values, rtol=1e-7, atol=1e-9)
    assert float(b.r2_joint) == pytest.approx(float(a.r2_joint), rel=1e-7, abs=1e-9)
    assert float(b.total) == pytest.approx(scale**2 * float(a.total), rel=1e-7)


# --- analytic cases --------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "sigma", "d"), [(2.0, 0.5, 8), (1.0, 0.5, 4), (3.0, 0.2, 16)])
@pytest.mark.parametrize("seed", range(3))
def test_signal_plus_isotropic_noise(make_activation, a, sigma, d, seed):
    rng = np.random.default_rng(seed)
    n = 8000  # per split
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    split = np.repeat(["val", "test"], n)
    f = np.tile([0, 1], n)  # exactly balanced in each split: var(f) = 1/4
    phi = a * np.outer(f - 0.5, u) + sigma * rng.normal(size=(2 * n, d)) + rng.normal(size=d)
    act = make_activation(phi, {"f": f}, split)
    signal = a**2 * 0.25
    expected = signal / (signal + d * sigma**2)
    # R² = 1 - SSE/SST; SSE and SST are sums of ~n*d squared Gaussians, whose relative
    # sd is sqrt(2/(n d)); the fitted W adds a bias of order d/n.
    tol = 5 * (1 - expected) * np.sqrt(2 / (n * d)) + d / n
    assert float(feature_variance_explained(act).r2.sel(feature="f")) == pytest.approx(
        expected, abs=tol)


def test_noiseless_representation_fully_explained(make_activation):
    rng = np.random.default_rng(0)
    f = np.tile([0, 1, 1, 0, 1], 40)
    phi = np.outer(2.5 * f, rng.normal(size=5)) + rng.normal(size=5)
    act = make_activation(phi, {"f": f}, np.tile(["val", "test"], 100))
    res = feature_variance_explained(act)
    assert float(res.r2.sel(feature="f")) == pytest.approx(1.0, abs=1e-12)
    assert float(res.r2_joint) == pytest.approx(1.0, abs=1e-12)


@pytest.fixture(scope="module")
def independent_task() -> xr.Dataset:
    return make_binary_task(TaskConfig(
        features=(FeatureSpec("a", "linear", 1), FeatureSpec("b", "parity", 2),
                  FeatureSpec("c", "threshold", 3)),
        n_distractor=3, val_size=128, test_size=128, seed=2))


def test_exactly_independent_feature_explains_nothing(independent_task):
    """A layer that depends on feature a only: b and c explain exactly zero."""
    rng = np.random.default_rng(1)
    fa = independent_task.feature_a.values
    phi = np.where(fa[:, None] == 1, rng.normal(size=4), rng.normal(size=4))
    act = xr.DataArray(phi, dims=("stimulus", "unit"),
                       coords={"stimulus": independent_task.stimulus.values})
    res = feature_variance_explained(act, stimuli=independent_task)
    np.testing.assert_allclose(res.r2.sel(feature=["b", "c"]).values, 0.0, atol=1e-12)
    assert float(res.r2.sel(feature="a")) == pytest.approx(1.0, abs=1e-12)


def test_independent_features_add_up_in_sample(independent_task):
    """Exactly orthogonal regressors: the joint R² is the sum of the single R²s."""
    rng = np.random.default_rng(2)
    fv = np.stack([independent_task[f"feature_{n}"].values for n in "abc"], 1)
    phi = fv @ rng.normal(size=(3, 5)) + rng.normal(size=(len(fv), 5))
    act = xr.DataArray(phi, dims=("stimulus", "unit"),
                       coords={"stimulus": independent_task.stimulus.values})
    res = feature_variance_explained(act, stimuli=independent_task, fit_split="test",
                                     eval_split="test")
    assert float(res.r2_joint) == pytest.approx(float(res.r2.sum()), abs=1e-12)


# --- extra dims, labels and stimulus alignment -----------------------------------------------


def test_extra_dims_looped_slice_by_slice(random_activation):
    rng = np.random.default_rng(3)
    n, d = random_activation.shape
    big = xr.concat([xr.concat([random_activation * rng.normal() + rng.normal(size=(n, d))
                                for _ in range(3)], dim="step") for _ in range(2)], dim="seed")
    big = big.assign_coords(seed=[10, 11], step=[0, 50, 100]).transpose(
        "stimulus", "seed", "unit", "step")
    big.attrs = random_activation.attrs
    res = feature_variance_explained(big)
    assert res.r2.dims == ("seed", "step", "feature")
    np.testing.assert_array_equal(res.seed.values, [10, 11])
    np.testing.assert_array_equal(res.step.values, [0, 50, 100])
    for seed in (10, 11):
        for step in (0, 50, 100):
            one = feature_variance_explained(big.sel(seed=seed, step=step))
            for var in ("r2", "r2_joint", "explained", "explained_joint", "total"):
                np.testing.assert_allclose(res[var].sel(seed=seed, step=step).values,
                                           one[var].values, rtol=1e-12, err_msg=var)
    # the slices really differ, so a loop that reused one slice would fail above
    assert not np.allclose(res.r2.sel(seed=10, step=0), res.r2.sel(seed=11, step=100))


def test_normalise_by_final(random_activation):
    rng = np.random.default_rng(4)
    steps = [random_activation * s + rng.normal(size=random_activation.shape) * 0.1
             for s in (0.2, 1.0, 3.0)]
    acts = xr.concat(steps, dim="step").assign_coords(step=[0, 10, 20])
    acts.attrs = random_activation.attrs
    res = feature_variance_explained(acts)
    norm = normalise_by_final(res)
    xr.testing.assert_allclose(norm.r2_final_norm.sel(step=20), res.r2.sel(step=20))
    assert float(norm.r2_joint_final_norm.sel(step=20)) == pytest.approx(
        float(res.r2_joint.sel(step=20)), rel=1e-12)
    final_total = float(res.total.sel(step=20))
    for step in (0, 10):
        np.testing.assert_allclose(norm.r2_final_norm.sel(step=step).values,
                                   res.explained.sel(step=step).values / final_total,
                                   rtol=1e-12)
    with pytest.raises(ValueError, match="step"):
        normalise_by_final(res.isel(step=0))


def test_stimuli_argument_aligns_by_id(independent_task):
    rng = np.random.default_rng(5)
    phi = rng.normal(size=(independent_task.sizes["stimulus"], 4))
    phi[:, 0] += 2 * independent_task.feature_c.values
    bare = xr.DataArray(phi, dims=("stimulus", "unit"),
                        coords={"stimulus": independent_task.stimulus.values})
    labelled = bare.assign_coords({k: ("stimulus", independent_task[k].values)
                                   for k in ("feature_a", "feature_b", "feature_c", "split")})
    labelled.attrs["feature_names"] = ["a", "b", "c"]
    want = feature_variance_explained(labelled)
    shuffled = independent_task.isel(
        stimulus=rng.permutation(independent_task.sizes["stimulus"]))
    got = feature_variance_explained(bare, stimuli=shuffled)
    xr.testing.assert_allclose(got.r2, want.r2)
    assert list(got.feature.values) == ["a", "b", "c"]


def test_stimuli_missing_ids_named(independent_task):
    ids = independent_task.stimulus.values.copy()
    ids[[3, 9]] = [10_000_001, 10_000_002]
    bare = xr.DataArray(np.zeros((len(ids), 2)), dims=("stimulus", "unit"),
                        coords={"stimulus": ids})
    with pytest.raises(ValueError, match="10000001") as info:
        feature_variance_explained(bare, stimuli=independent_task)
    assert "2 stimulus ids" in str(info.value)


def test_features_subset(random_activation):
    full = feature_variance_explained(random_activation)
    sub = feature_variance_explained(random_activation, features=["c", "a"])
    assert list(sub.feature.values) == ["c", "a"]
    xr.testing.assert_allclose(sub.r2, full.r2.sel(feature=["c", "a"]))
    two = feature_variance_explained(random_activation, features=["a", "c"]).r2_joint
    assert float(two) != pytest.approx(float(full.r2_joint))


# --- errors ----------------------------------------------------------------------------------


def test_nan_in_activations_refused(random_activation):
    bad = random_activation.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        feature_variance_explained(bad)


def test_missing_feature_coord_lists_available(random_activation):
    with pytest.raises(ValueError, match=r"available: \['a', 'b', 'c'\]") as info:
        feature_variance_explained(random_activation, features=["a", "nope"])
    assert "nope" in str(info.value)


def test_activation_without_feature_coords_refused():
    act = xr.DataArray(np.zeros((4, 2)), dims=("stimulus", "unit"),
                       coords={"split": ("stimulus", ["val", "val", "test", "test"])})
    with pytest.raises(ValueError, match="feature"):
        feature_variance_explained(act)


def test_missing_split_refused(random_activation):
    with pytest.raises(ValueError, match="'holdout'"):
        feature_variance_explained(random_activation, eval_split="holdout")


def test_constant_feature_on_fit_split_refused(make_activation):
    f = np.array([1, 1, 1, 1, 0, 1, 0, 1])
    split = np.array(["val"] * 4 + ["test"] * 4)
    act = make_activation(np.arange(16.0).reshape(8, 2), {"f": f}, split)
    with pytest.raises(ValueError, match="constant"):
        feature_variance_explained(act)



# --- categorical (multi-valued) features ------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_categorical_feature_matches_sklearn_on_indicators(make_activation, seed):
    rng = np.random.default_rng(seed)
    n, d = 300, 5
    colour, bit = rng.integers(0, 4, n), rng.integers(0, 2, n)
    means = rng.normal(size=(4, d))
    means[2] = 5.0  # value 2 is far from values 1 and 3: no linear order of the ids fits it
    phi = means[colour] + np.outer(bit, rng.normal(size=d)) + rng.normal(size=(n, d))
    split = rng.choice(np.array(["val", "test"]), size=n)
    act = make_activation(phi, {"colour": colour, "bit": bit}, split)
    res = feature_variance_explained(act)
    assert res.attrs["categorical_features"] == "colour"
    fit, ev = split == "val", split == "test"
    onehot = (colour[:, None] == np.arange(1, 4)).astype(float)
    want = sklearn_r2(phi[fit], onehot[fit], phi[ev], onehot[ev])
    assert float(res.r2.sel(feature="colour")) == pytest.approx(want, abs=1e-10)
    both = np.column_stack([onehot, bit])
    assert float(res.r2_joint) == pytest.approx(
        sklearn_r2(phi[fit], both[fit], phi[ev], both[ev]), abs=1e-10)
    numeric = feature_variance_explained(act, categorical=False)
    assert float(numeric.r2.sel(feature="colour")) < float(res.r2.sel(feature="colour")) - 0.1
    # a binary feature is the same either way
    assert float(numeric.r2.sel(feature="bit")) == pytest.approx(
        float(res.r2.sel(feature="bit")), abs=1e-12)
