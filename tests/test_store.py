"""The store: round-trips of every file kind, clear errors for damaged or foreign files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr

from rsa_bias.config import FeatureSpec, TaskConfig
from rsa_bias.provenance import provenance_attrs
from rsa_bias.store import (
    StoreError,
    activation_tree,
    layer_activation,
    read_activations,
    read_attrs,
    read_results,
    write_activations,
    write_results,
)
from rsa_bias.tasks import make_binary_task

PROVENANCE_KEYS = ("config_json", "seed", "rsa_bias_version", "git_sha", "created")


def _eval_stimuli(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(stimulus=np.isin(ds.split.values, ("val", "test")))


@pytest.fixture(scope="module")
def tree(small_task) -> xr.DataTree:
    stim = _eval_stimuli(small_task)
    n = stim.sizes["stimulus"]
    rng = np.random.default_rng(0)
    layers = {"hidden_0": rng.normal(size=(2, 3, n, 4)).astype(np.float32),
              "hidden_1": rng.normal(size=(2, 3, n, 5)).astype(np.float32)}
    attrs = provenance_attrs({"name": "test", "steps": 10}, [0, 1], method="unit-test")
    return activation_tree(stim, layers, seeds=[0, 1], steps=[0, 5, 10], attrs=attrs)


@pytest.fixture
def results() -> xr.Dataset:
    rng = np.random.default_rng(1)
    ds = xr.Dataset(
        {"r2": (("seed", "layer", "feature", "step"), rng.random((2, 2, 2, 3))),
         "n_silent": (("seed", "layer"), rng.integers(0, 5, (2, 2))),
         "accuracy": (("seed", "split", "feature"), rng.random((2, 2, 2)))},
        coords={"seed": [0, 1], "layer": ["hidden_0", "hidden_1"], "feature": ["easy", "hard"],
                "step": [0, 5, 10], "split": ["val", "test"]})
    ds.attrs.update(provenance_attrs({"name": "test"}, [0, 1], method="unit-test"))
    ds.attrs["elapsed_s"] = 1.25
    return ds


@pytest.fixture
def act_path(tree, tmp_path):
    return write_activations(tree, tmp_path / "activations.nc")


@pytest.fixture
def res_path(results, tmp_path):
    return write_results(results, tmp_path / "results.nc")


# --- round trips -----------------------------------------------------------------------------


def test_activations_round_trip(tree, act_path):
    back = read_activations(act_path)
    assert back.attrs["rsa_bias_file"] == "activations"
    for key in PROVENANCE_KEYS:
        assert back.attrs[key] == tree.attrs[key], key
    assert list(back.attrs["feature_names"]) == ["easy", "hard"]
    assert back.attrs["task_json"] == tree.attrs["task_json"]
    xr.testing.assert_equal(back.to_dataset(), tree.to_dataset())
    assert list(back.children) == list(tree.children)
    assert "rsa_bias_file" not in tree.attrs  # the caller's tree is not modified
    for name in tree.children:
        got = back[name].to_dataset(inherit=False)
        want = tree[name].to_dataset(inherit=False)
        xr.testing.assert_identical(got, want)
        assert got["activation"].dtype == np.float32


def test_activations_are_compressed_losslessly(tree, tmp_path):
    tree = tree.copy()
    for name in tree.children:  # mostly zeros, like ReLU units
        act = tree[name]["activation"]
        tree[name]["activation"] = act.where(act > act.quantile(0.8), 0.0).astype(np.float32)
    packed = write_activations(tree, tmp_path / "packed.nc")
    plain = write_activations(tree, tmp_path / "plain.nc", compression=0)
    assert packed.stat().st_size < plain.stat().st_size
    for name in tree.children:
        a = read_activations(packed)[name]["activation"]
        b = read_activations(plain)[name]["activation"]
        np.testing.assert_array_equal(a.values, b.values)
        assert a.encoding.get("zlib") is True and not b.encoding.get("zlib")
    with pytest.raises(ValueError, match="zlib level"):
        write_activations(tree, tmp_path / "bad.nc", compression=10)


def test_layer_activation_carries_stimulus_labels(small_task, tree, act_path):
    back = read_activations(act_path, layers=["hidden_1"])
    act = layer_activation(back, "hidden_1")
    assert act.dims == ("seed", "step", "stimulus", "unit")
    stim = _eval_stimuli(small_task)
    np.testing.assert_array_equal(act.stimulus.values, stim.stimulus.values)
    for coord in ("feature_easy", "feature_hard", "split"):
        np.testing.assert_array_equal(act[coord].values, stim[coord].values)
    np.testing.assert_array_equal(act.values, tree["hidden_1"]["activation"].values)
    assert list(act.attrs["feature_names"]) == ["easy", "hard"]
    with pytest.raises(StoreError, match="hidden_9"):
        layer_activation(back, "hidden_9")


def test_single_feature_activations_round_trip(tmp_path):
    """A one-feature task must read back with its one feature name intact."""
    ds = make_binary_task(TaskConfig(features=(FeatureSpec("easy"),), n_distractor=5,
                                     val_size=16, test_size=16))
    stim = _eval_stimuli(ds)
    phi = np.random.default_rng(0).normal(size=(stim.sizes["stimulus"], 3))
    tree = activation_tree(stim, {"hidden_0": phi}, attrs=provenance_attrs({}, 0))
    back = read_activations(write_activations(tree, tmp_path / "a.nc"))
    assert list(back.attrs["feature_names"]) == ["easy"]
    act = layer_activation(back, "hidden_0")
    assert list(act.attrs["feature_names"]) == ["easy"]
    np.testing.assert_array_equal(act.feature_easy.values, stim.feature_easy.values)


def test_results_round_trip(results, res_path):
    back = read_results(res_path)
    xr.testing.assert_equal(back, results)
    assert back.attrs["rsa_bias_file"] == "results"
    for key in (*PROVENANCE_KEYS, "method", "elapsed_s"):
        assert back.attrs[key] == results.attrs[key], key
    assert "rsa_bias_file" not in results.attrs  # the caller's object is not modified


def test_read_attrs_gives_the_root_attrs_of_the_right_kind_only(tree, act_path, results,
                                                               res_path):
    attrs = read_attrs(act_path, kind="activations")
    assert attrs["config_json"] == read_activations(act_path).attrs["config_json"]
    assert read_attrs(res_path, kind="results")["method"] == results.attrs["method"]
    with pytest.raises(StoreError, match="not an rsa_bias results file"):
        read_attrs(act_path, kind="results")
    act_path.write_bytes(act_path.read_bytes()[:200])
    with pytest.raises(StoreError, match="truncated or corrupt"):
        read_attrs(act_path, kind="activations")


def test_write_overwrites_previous_file(results, res_path):
    write_results(results * 2, res_path)
    np.testing.assert_array_equal(read_results(res_path).r2.values, 2 * results.r2.values)


# --- damaged and foreign files ---------------------------------------------------------------


def _truncate(path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 0.99])
def test_truncated_activations(act_path, fraction):
    _truncate(act_path, fraction)
    with pytest.raises(StoreError, match="truncated or corrupt") as info:
        read_activations(act_path)
    assert str(act_path) in str(info.value)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 0.99])
def test_truncated_results(res_path, fraction):
    _truncate(res_path, fraction)
    with pytest.raises(StoreError, match="truncated or corrupt"):
        read_results(res_path)


@pytest.mark.parametrize("reader", [read_activations, read_results])
def test_garbage_bytes(tmp_path, reader):
    path = tmp_path / "garbage.nc"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(StoreError, match="truncated or corrupt"):
        reader(path)


@pytest.mark.parametrize("reader", [read_activations, read_results])
def test_missing_file(tmp_path, reader):
    with pytest.raises(StoreError, match="does not exist"):
        reader(tmp_path / "absent.nc")


def test_missing_layer_group_named(act_path):
    with pytest.raises(StoreError, match="'hidden_7' is missing") as info:
        read_activations(act_path, layers=["hidden_0", "hidden_7"])
    assert "hidden_1" in str(info.value)  # lists what is there


def test_write_refuses_tree_without_feature_coord(tree, tmp_path):
    broken = tree.copy()
    broken.attrs["feature_names"] = ["easy", "hard", "lost"]
    with pytest.raises(StoreError, match="feature_lost"):
        write_activations(broken, tmp_path / "a.nc")
    assert not list(tmp_path.iterdir())


def test_read_refuses_file_without_feature_coord(tree, tmp_path):
    root = tree.to_dataset().drop_vars("feature_hard")
    root.attrs["rsa_bias_file"] = "activations"
    broken = xr.DataTree.from_dict(
        {"/": root, "/hidden_0": tree["hidden_0"].to_dataset(inherit=False)})
    path = tmp_path / "a.nc"
    broken.to_netcdf(path, engine="netcdf4")
    with pytest.raises(StoreError, match="feature_hard"):
        read_activations(path)


def test_results_file_is_not_activations(res_path):
    with pytest.raises(StoreError, match="not an rsa_bias activations file"):
        read_activations(res_path)


def test_activations_file_is_not_results(act_path):
    with pytest.raises(StoreError, match="not an rsa_bias results file"):
        read_results(act_path)


def test_plain_netcdf_is_not_results(tmp_path):
    path = tmp_path / "plain.nc"
    xr.Dataset({"x": ("a", [1, 2])}).to_netcdf(path, engine="netcdf4")
    with pytest.raises(StoreError, match="rsa_bias_file=None"):
        read_results(path)


# --- atomic writes ---------------------------------------------------------------------------


def _failing_to_netcdf(self, path, *args, **kwargs):
    """Start writing the (temporary) file, then die."""
    with open(path, "wb") as fh:
        fh.write(b"\x89HDF\r\n\x1a\n half a file")
    raise RuntimeError("killed mid-write")


def test_failed_results_write_keeps_previous_file(results, res_path, monkeypatch):
    before = res_path.read_bytes()
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _failing_to_netcdf)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_results(results * 3, res_path)
    assert res_path.read_bytes() == before
    assert os.listdir(res_path.parent) == [res_path.name]
    monkeypatch.undo()
    xr.testing.assert_equal(read_results(res_path), results)


def test_failed_activations_write_keeps_previous_file(tree, act_path, monkeypatch):
    before = act_path.read_bytes()
    monkeypatch.setattr(xr.DataTree, "to_netcdf", _failing_to_netcdf)
    with pytest.raises(RuntimeError, match="killed mid-write"):
        write_activations(tree, act_path)
    assert act_path.read_bytes() == before
    assert os.listdir(act_path.parent) == [act_path.name]


def test_failed_first_write_leaves_nothing(results, tmp_path, monkeypatch):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _failing_to_netcdf)
    with pytest.raises(RuntimeError):
        write_results(results, tmp_path / "sub" / "results.nc")
    assert os.listdir(tmp_path / "sub") == []
