"""PCA summary and single-unit tuning, checked against scikit-learn and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.decomposition import PCA

from rsa_bias.analysis import pca_summary, unit_tuning


def _test_split(act: xr.DataArray):
    mask = act.split.values == "test"
    f = np.stack([act[f"feature_{n}"].values[mask] for n in act.attrs["feature_names"]], 1)
    return act.values[mask], f


# --- PCA -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_pca_matches_sklearn(make_activation, seed):
    rng = np.random.default_rng(seed)
    n, d = 240, 10
    f = rng.integers(0, 2, size=(n, 2))
    phi = (f @ rng.normal(size=(2, d)) * 3 + rng.normal(size=(n, d)) @ rng.normal(size=(d, d)))
    act = make_activation(phi, {"a": f[:, 0], "b": f[:, 1]},
                          rng.choice(np.array(["val", "test"]), size=n))
    res = pca_summary(act, n_pcs=6)
    phi_t, f_t = _test_split(act)
    pca = PCA().fit(phi_t)
    np.testing.assert_allclose(res.variance_fraction.values, pca.explained_variance_ratio_[:6],
                               rtol=0, atol=1e-8)
    scores = pca.transform(phi_t)[:, :6]
    for i in range(6):
        for j, name in enumerate(["a", "b"]):
            want = abs(np.corrcoef(scores[:, i], f_t[:, j])[0, 1])
            got = float(res.feature_corr.sel(pc=i + 1, feature=name))
            assert got == pytest.approx(want, abs=1e-8)
    np.testing.assert_array_equal(res.pc.values, np.arange(1, 7))


def test_pca_split_none_uses_all_stimuli(random_activation):
    res = pca_summary(random_activation, split=None, n_pcs=3)
    pca = PCA().fit(random_activation.values)
    np.testing.assert_allclose(res.variance_fraction.values, pca.explained_variance_ratio_[:3],
                               atol=1e-8)


def test_pca_beyond_rank_is_nan(make_activation):
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(12, 3))
    act = make_activation(phi, {"a": np.tile([0, 1], 6)}, None)
    res = pca_summary(act, split=None, n_pcs=5)
    frac = res.variance_fraction.values
    assert np.all(np.isfinite(frac[:3])) and np.all(np.isnan(frac[3:]))
    assert frac[:3].sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.isnan(res.feature_corr.values[3:]))


def test_pca_one_dimensional_feature_code(make_activation):
    """A layer that codes only a feature along one axis: PC1 carries all variance, |r| = 1."""
    rng = np.random.default_rng(1)
    f = np.tile([0, 1], 50)
    phi = np.outer(f, rng.normal(size=6)) + 5.0
    act = make_activation(phi, {"a": f}, None)
    res = pca_summary(act, split=None, n_pcs=2)
    assert float(res.variance_fraction.sel(pc=1)) == pytest.approx(1.0, abs=1e-10)
    assert float(res.feature_corr.sel(pc=1, feature="a")) == pytest.approx(1.0, abs=1e-10)


def test_pca_loops_over_seed(random_activation):
    rng = np.random.default_rng(2)
    stacked = xr.concat([random_activation, random_activation * 2 + rng.normal(
        size=random_activation.shape)], dim="seed").assign_coords(seed=[0, 1])
    stacked.attrs = random_activation.attrs
    res = pca_summary(stacked, n_pcs=4)
    for s in (0, 1):
        one = pca_summary(stacked.sel(seed=s), n_pcs=4)
        xr.testing.assert_allclose(res.variance_fraction.sel(seed=s, drop=True),
                                   one.variance_fraction)
        xr.testing.assert_allclose(res.feature_corr.sel(seed=s, drop=True), one.feature_corr)


# --- unit tuning -----------------------------------------------------------------------------


def test_unit_r2_is_squared_correlation(random_activation):
    res = unit_tuning(random_activation)
    phi_t, f_t = _test_split(random_activation)
    assert res.unit_r2.dims == ("unit", "feature")
    for u in range(phi_t.shape[1]):
        for j, name in enumerate(["a", "b", "c"]):
            want = np.corrcoef(phi_t[:, u], f_t[:, j])[0, 1] ** 2
            assert float(res.unit_r2.sel(unit=u, feature=name)) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.5, 0.9])
def test_n_selective_counts_units_above_threshold(make_activation, threshold):
    rng = np.random.default_rng(3)
    n = 200
    f = np.stack([np.tile([0, 1], n // 2), np.repeat([0, 1], n // 2)], 1)
    phi = np.stack([
        f[:, 0],                                   # r² = 1 with a
        f[:, 0] + rng.normal(scale=0.5, size=n),   # r² = 0.5 with a
        f[:, 0] + rng.normal(scale=1.5, size=n),   # r² = 0.1 with a
        f[:, 1] + rng.normal(scale=0.2, size=n),   # r² = 0.86 with b
        rng.normal(size=n),                        # nothing
    ], axis=1)
    act = make_activation(phi, {"a": f[:, 0], "b": f[:, 1]}, None)
    res = unit_tuning(act, split=None, threshold=threshold)
    r2 = np.array([[np.corrcoef(phi[:, u], f[:, j])[0, 1] ** 2 for j in range(2)]
                   for u in range(5)])
    np.testing.assert_array_equal(res.n_selective.values, (r2 > threshold).sum(axis=0))
    assert res.attrs["threshold"] == threshold


def test_n_selective_default_threshold_on_clear_units(make_activation):
    f = np.tile([0, 1], 30)
    g = np.repeat([0, 1], 30)
    phi = np.stack([f, 2 * f - 3, g, -g, f + g], axis=1).astype(float)
    act = make_activation(phi, {"a": f, "b": g}, None)
    res = unit_tuning(act, split=None)
    # units 0, 1 code a; units 2, 3 code b; unit 4 mixes both (r² = 0.5 each: not above 0.5)
    np.testing.assert_array_equal(res.n_selective.sel(feature=["a", "b"]).values, [2, 2])


@pytest.mark.parametrize("value", [0.0, 0.1, -2.7], ids=["zero", "0.1", "-2.7"])
def test_silent_units_give_zero_and_are_counted(make_activation, value):
    rng = np.random.default_rng(4)
    n = 100
    f = np.tile([0, 1], n // 2)
    phi = rng.normal(size=(n, 5)) + f[:, None]
    phi[:, 1] = value
    phi[:, 3] = value
    act = make_activation(phi, {"a": f}, None)
    res = unit_tuning(act, split=None)
    assert np.all(np.isfinite(res.unit_r2.values))
    np.testing.assert_array_equal(res.unit_r2.sel(unit=[1, 3]).values, 0.0)
    assert int(res.n_silent) == 2
    assert np.all(res.unit_r2.sel(unit=[0, 2, 4]).values > 0)


def test_units_silent_on_the_split_only(make_activation):
    """Silence is judged on the analysed split, not on all stimuli."""
    f = np.tile([0, 1], 20)
    split = np.repeat(["val", "test"], 20)
    phi = np.stack([np.where(split == "test", 0.0, f), f + 0.5 * np.arange(40) % 3], 1)
    act = make_activation(phi, {"a": f}, split)
    res = unit_tuning(act)
    assert int(res.n_silent) == 1
    assert float(res.unit_r2.sel(unit=0, feature="a")) == 0.0


def test_unit_tuning_loops_over_step(random_activation):
    stacked = xr.concat([random_activation, random_activation ** 2],
                        dim="step").assign_coords(step=[0, 9])
    stacked.attrs = random_activation.attrs
    res = unit_tuning(stacked)
    assert res.unit_r2.dims == ("step", "unit", "feature")
    for i, step in enumerate((0, 9)):
        one = unit_tuning(stacked.isel(step=i))
        xr.testing.assert_allclose(res.unit_r2.sel(step=step, drop=True), one.unit_r2)
        assert int(res.n_silent.sel(step=step)) == int(one.n_silent)


def test_tuning_needs_feature_coords(random_activation):
    with pytest.raises(ValueError, match="available"):
        unit_tuning(random_activation, features=["zzz"])
    with pytest.raises(ValueError, match="available"):
        pca_summary(random_activation, features=["zzz"])
