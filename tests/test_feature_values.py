"""Bad values and degenerate inputs of the feature family: refused with a clear error, or (a
constant layer) reported as NaN with one warning so that an experiment still finishes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import rsa_bias.analysis as an
from rsa_bias.brain import factorial_stimuli, simulate_population
from rsa_bias.config import AnalysisConfig, ExperimentConfig
from rsa_bias.experiments.complexity_bias import analyse_tree, summary_table
from rsa_bias.store import (
    COMPLEXITY_BIAS_RESULTS,
    activation_tree,
    read_results,
    write_results,
)


@pytest.fixture(scope="module")
def stim() -> xr.Dataset:
    """24 factorial stimuli (features a, b, c) with ids 0..23 and a val/test split."""
    s = factorial_stimuli({"a": 2, "b": 2, "c": 3}, repeats=2)
    return s.assign_coords(split=("stimulus", np.where(s.exemplar.values == 0, "val", "test")))


@pytest.fixture(scope="module")
def act(stim) -> xr.DataArray:
    """A (stimulus, unit) layer of 9 units with the feature and split coords of ``stim``."""
    rng = np.random.default_rng(7)
    pop = simulate_population(stim, {"a": 0.5, "b": 0.2, "c": 0.1}, n_neurons=12, seed=1)
    values = np.tanh(pop.signal.values @ rng.normal(size=(12, 9))) + 0.3 * rng.normal(
        size=(24, 9))
    coords = {k: c for k, c in stim.coords.items() if c.dims == ("stimulus",)}
    return xr.DataArray(values, dims=("stimulus", "unit"), coords=coords,
                        attrs={"feature_names": ["a", "b", "c"]})


@pytest.fixture(scope="module")
def resp(stim) -> xr.DataArray:
    return simulate_population(stim, {"a": 0.2, "b": 0.5}, n_neurons=10, seed=2).signal


def _caught(fn):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in record if issubclass(w.category, RuntimeWarning)]


# --- 1. a constant (dead) layer -----------------------------------------------------------------


def test_constant_layer_gives_nan_and_one_warning(act):
    res, caught = _caught(lambda: an.feature_variance_explained(xr.ones_like(act)))
    assert len(caught) == 1 and "constant" in str(caught[0].message)
    for name in ("r2", "r2_joint", "explained", "explained_joint"):
        assert res[name].isnull().all(), name
    assert float(res.total) == 0.0


def test_constant_slice_is_named_and_the_others_kept(act):
    stacked = xr.concat([act, xr.zeros_like(act)], dim="seed").assign_coords(seed=[3, 4])
    res, caught = _caught(lambda: an.feature_variance_explained(stacked))
    assert len(caught) == 1 and "seed=4" in str(caught[0].message)
    assert "seed=3" not in str(caught[0].message)
    xr.testing.assert_allclose(res.r2.sel(seed=3, drop=True),
                               an.feature_variance_explained(act).r2)
    assert res.r2.sel(seed=4).isnull().all()


def test_arrays_kernel_constant_eval_split_gives_nan_with_warning():
    rng = np.random.default_rng(0)
    f = rng.choice([-1.0, 1.0], size=(20, 1))
    phi = f @ np.ones((1, 3)) + rng.normal(size=(20, 3))
    for eval_phi in (np.ones((10, 3)), np.tile(phi[:10].mean(0), (10, 1))):  # inf/NaN before
        out, caught = _caught(lambda e=eval_phi: an.variance_explained_arrays(
            phi[:10], f[:10], e, f[10:]))
        assert len(caught) == 1 and "constant" in str(caught[0].message)
        assert np.isnan(out["r2"]).all() and np.isnan(out["r2_joint"])


@pytest.mark.parametrize(("change", "match"), [
    ({"f_fit": np.ones((9, 1))}, "10 rows but f_fit has 9"),
    ({"f_fit": np.ones(10), "f_eval": np.ones(5)}, "2-D"),
    ({"phi_eval": np.ones((5, 4))}, "3 units but phi_eval has 4"),
    ({"f_eval": np.ones((5, 2))}, "1 columns but f_eval has 2"),
    ({"groups": [[3]]}, r"groups\[0\] holds \[3\]"),
    ({"groups": [[-1]]}, r"groups\[0\] column index must be at least 0"),
    ({"groups": [[]]}, r"groups\[0\] holds no column"),
    ({"groups": [0]}, r"groups\[0\] is 0; each group is a list"),
])
def test_arrays_kernel_refuses_mismatched_shapes_and_groups(change, match):
    rng = np.random.default_rng(1)
    args = {"phi_fit": rng.normal(size=(10, 3)), "f_fit": rng.normal(size=(10, 1)),
            "phi_eval": rng.normal(size=(5, 3)), "f_eval": rng.normal(size=(5, 1))}
    groups = change.pop("groups", None)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        an.variance_explained_arrays(args["phi_fit"], args["f_fit"], args["phi_eval"],
                                     args["f_eval"], groups=groups)


def _tree(n_steps: int = 3):
    """A small activation tree: layer "wide" (16 units, alive), layer "dead" (4 units,
    all zero for seed 1 at every step, as after training.lr=1)."""
    rng = np.random.default_rng(3)
    easy, hard = np.tile([0, 1], 40), np.repeat([0, 1, 0, 1], 20)
    stimuli = xr.Dataset(coords={"stimulus": np.arange(80), "feature_easy": ("stimulus", easy),
                                 "feature_hard": ("stimulus", hard),
                                 "split": ("stimulus", np.repeat(["val", "test"], 40))},
                         attrs={"feature_names": ["easy", "hard"]})
    wide = rng.normal(size=(2, n_steps, 80, 16)) + (2 * easy - 1)[:, None]
    dead = np.maximum(rng.normal(size=(2, n_steps, 80, 4)), 0)
    dead[1] = 0.0
    return activation_tree(stimuli, {"wide": wide, "dead": dead}, seeds=[0, 1],
                           steps=list(range(0, 5 * n_steps, 5)))


def test_experiment_with_a_dead_layer_and_huge_n_pcs_finishes(tmp_path: Path):
    cfg = ExperimentConfig(seeds=(0, 1), analysis=AnalysisConfig(n_pcs=1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = analyse_tree(_tree(), cfg)
    assert res.sizes["pc"] == 16  # the widest layer's PCs, not 1000
    frac = res.variance_fraction
    assert frac.sel(layer="wide").notnull().all()
    assert frac.sel(layer="dead", seed=0, pc=slice(1, 4)).notnull().all()
    assert frac.sel(layer="dead", pc=slice(5, None)).isnull().all()  # PCs it does not have
    assert frac.sel(layer="dead", seed=1).isnull().all()  # dead: no PCs at all
    assert res.r2.sel(layer="dead", seed=1).isnull().all()
    assert res.r2.sel(layer="dead", seed=0).notnull().all()
    accuracy = xr.DataArray(np.ones((2, 1, 2, 1)), dims=("seed", "split", "feature", "eval_step"),
                            coords={"seed": [0, 1], "split": ["test"],
                                    "feature": ["easy", "hard"], "eval_step": [10]})
    write_results(res.assign(accuracy=accuracy), tmp_path / "results.nc")
    back = read_results(tmp_path / "results.nc", variables=COMPLEXITY_BIAS_RESULTS)
    assert back.r2.sel(layer="dead", seed=1).isnull().all()  # the NaN survives the file
    table = summary_table(back, layer="dead")
    assert list(table.index) == ["easy", "hard"]
    assert table["R2_mean"].isnull().all()  # the dead seed shows instead of dropping out


# --- 2. a constant target RDM -------------------------------------------------------------------


@pytest.mark.parametrize("fn", [an.residualise_rdm, an.rdm_variance_partition])
def test_constant_target_rdm_refused(stim, act, fn):
    with pytest.raises(ValueError, match="target RDM is constant"):
        fn(xr.ones_like(an.rdm(act)), an.feature_model_rdms(stim))


# --- 3. normalise_by_final ------------------------------------------------------------------------


def _over_steps(act, scales=(1.0, 2.0, 3.0)) -> xr.DataArray:
    return xr.concat([act * s for s in scales], dim="step").assign_coords(step=[0, 10, 20])


def test_normalise_by_final_uses_the_largest_step_whatever_the_order(act):
    res = an.feature_variance_explained(_over_steps(act))
    want = an.normalise_by_final(res)
    got = an.normalise_by_final(res.isel(step=[2, 0, 1]))
    xr.testing.assert_allclose(got.sortby("step"), want)
    final = res.total.sel(step=20)
    np.testing.assert_allclose(want.r2_final_norm.sel(step=0),
                               res.explained.sel(step=0) / final)


def test_normalise_by_final_zero_total_gives_nan_with_warning(act):
    res = an.feature_variance_explained(_over_steps(act))
    res["total"] = res.total.where(res.step != 20, 0.0)
    out, caught = _caught(lambda: an.normalise_by_final(res))
    assert len(caught) == 1 and "0" in str(caught[0].message)
    assert out.r2_final_norm.isnull().all() and not np.isinf(out.r2_joint_final_norm).any()


def test_normalise_by_final_needs_the_whole_result(act):
    res = an.feature_variance_explained(_over_steps(act))
    for bad in (res.r2, res.drop_vars("total")):
        with pytest.raises(ValueError, match="needs the whole Dataset"):
            an.normalise_by_final(bad)


# --- 4. out-of-range options ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [2, 1, float("nan"), -1, "x"])
def test_min_share_outside_unit_interval_refused(act, value):
    with pytest.raises(ValueError, match="min_share"):
        an.equalise_feature_variance(act, min_share=value)


@pytest.mark.parametrize("value", ["x", float("nan"), None])
def test_min_f_ratio_not_a_number_refused(act, value):
    with pytest.raises(ValueError, match="min_f_ratio"):
        an.equalise_feature_variance(act, min_f_ratio=value)


@pytest.mark.parametrize("value", [-0.1, 0, 1, 1.5, float("nan"), "x", True])
def test_unit_threshold_outside_open_unit_interval_refused(act, value):
    with pytest.raises(ValueError, match="threshold"):
        an.unit_tuning(act, threshold=value)


@pytest.mark.parametrize("value", [0, -2, 2.5, "3", True])
def test_n_pcs_must_be_a_positive_integer(act, value):
    with pytest.raises(ValueError, match="n_pcs"):
        an.pca_summary(act, n_pcs=value)


def test_pca_keeps_only_the_pcs_there_are(act):
    res = an.pca_summary(act, split=None, n_pcs=100)
    assert res.sizes["pc"] == 9 and res.pc.values.tolist() == list(range(1, 10))
    assert res.variance_fraction.notnull().all()
    assert an.pca_summary(act, n_pcs=100).sizes["pc"] == 9  # 12 test stimuli: rank <= 9


def test_pca_past_the_numerical_rank_is_nan(act):
    rng = np.random.default_rng(4)
    low_rank = rng.normal(size=(24, 3)) @ rng.normal(size=(3, 9))  # centred rank <= 3
    res = an.pca_summary(act.copy(data=low_rank), split=None, n_pcs=6)
    assert res.sizes["pc"] == 6
    assert res.variance_fraction.sel(pc=[1, 2, 3]).notnull().all()
    assert res.variance_fraction.sel(pc=[4, 5, 6]).isnull().all()
    assert res.feature_corr.sel(pc=[4, 5, 6]).isnull().all()


@pytest.mark.parametrize("value", ["yes", "no", 2])
def test_categorical_must_be_a_bool(act, value):
    with pytest.raises(ValueError, match="categorical must be True or False"):
        an.feature_variance_explained(act, categorical=value)


# --- 5. feature lists, measures, numpy input, feature_names=None, lists of RDMs ------------


def _feature_calls(act, stim, resp):
    return {
        "feature_variance_explained": lambda f: an.feature_variance_explained(act, features=f),
        "pca_summary": lambda f: an.pca_summary(act, features=f),
        "unit_tuning": lambda f: an.unit_tuning(act, features=f),
        "feature_decomposition": lambda f: an.feature_decomposition(act, features=f),
        "variance_shares": lambda f: an.variance_shares(act, features=f),
        "remove_features": lambda f: an.remove_features(act, features=f),
        "equalise_feature_variance": lambda f: an.equalise_feature_variance(act, features=f),
        "attribute_cka": lambda f: an.attribute_cka(act, resp, features=f),
        "attribute_rsa": lambda f: an.attribute_rsa(act, resp, features=f),
        "compare_controlled": lambda f: an.compare_controlled(act, resp, features=f,
                                                              measures=["cka"]),
        "feature_model_rdms": lambda f: an.feature_model_rdms(stim, features=f),
    }


@pytest.mark.parametrize("name", list(_feature_calls(None, None, None)))
def test_empty_or_string_features_refused(act, stim, resp, name):
    call = _feature_calls(act, stim, resp)[name]
    with pytest.raises(ValueError, match="features is empty"):
        call([])
    with pytest.raises(ValueError, match=r"not the string 'ab'; pass \['ab'\]"):
        call("ab")


@pytest.mark.parametrize(("measures", "match"), [("rsa", "not the string 'rsa'"),
                                                 ((), "measures is empty")])
def test_measures_must_be_a_nonempty_list(act, resp, measures, match):
    with pytest.raises(ValueError, match=match):
        an.compare_controlled(act, resp, measures=measures)


def test_numpy_activations_need_stimuli(act, stim):
    for fn in (an.feature_variance_explained, an.pca_summary, an.unit_tuning):
        with pytest.raises(ValueError, match="carries no feature labels; pass stimuli="):
            fn(act.values)
    bare = act.drop_vars([c for c in act.coords if c != "stimulus"])
    xr.testing.assert_allclose(an.feature_variance_explained(act.values, stimuli=stim).r2,
                               an.feature_variance_explained(bare, stimuli=stim).r2)
    xr.testing.assert_allclose(an.pca_summary(act.values, stimuli=stim).feature_corr,
                               an.pca_summary(bare, stimuli=stim).feature_corr)
    xr.testing.assert_allclose(an.unit_tuning(act.values, stimuli=stim).unit_r2,
                               an.unit_tuning(bare, stimuli=stim).unit_r2)
    other = stim.assign_coords(stimulus=stim.stimulus.values + 100)
    with pytest.raises(ValueError, match="label it"):
        an.feature_variance_explained(act.values, stimuli=other)


def test_feature_names_none_is_treated_as_absent(act, stim):
    want = an.feature_variance_explained(act)
    xr.testing.assert_allclose(
        an.feature_variance_explained(act.assign_attrs(feature_names=None)).r2, want.r2)
    bare = act.drop_vars([c for c in act.coords if c != "stimulus"])
    xr.testing.assert_allclose(an.feature_variance_explained(
        bare, stimuli=stim.assign_attrs(feature_names=None)).r2, want.r2)
    xr.testing.assert_allclose(an.variance_shares(act.assign_attrs(feature_names=None)).share,
                               an.variance_shares(act).share)


def test_list_of_labelled_rdms_keeps_their_ids(stim, act):
    ids = stim.stimulus.values + 1000  # ids that are not positions
    target = an.rdm(act.assign_coords(stimulus=ids))
    models = an.feature_model_rdms(stim.assign_coords(stimulus=ids))
    want = an.rdm_variance_partition(target, models)
    items = [models.sel(model=m) for m in ("a", "b", "c")]
    xr.testing.assert_allclose(an.rdm_variance_partition(target, items), want)
    shuffled = [m.isel(stimulus_i=np.arange(24)[::-1], stimulus_j=np.arange(24)[::-1])
                for m in items]
    xr.testing.assert_allclose(an.rdm_variance_partition(target, shuffled).share,
                               want.share)
    xr.testing.assert_allclose(an.residualise_rdm(target, items),
                               an.residualise_rdm(target, models))


# --- 6. seeds ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0"])
def test_bad_seeds_refused_at_the_start(act, resp, seed):
    with pytest.raises(ValueError, match="seed must be None or an integer"):
        an.attribute_encoding(act, resp, seed=seed)
    with pytest.raises(ValueError, match="seed must be None or an integer"):
        an.compare_controlled(act, resp, measures=["encoding"], seed=seed)
