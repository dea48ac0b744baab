"""Config loading: every mistake is rejected with the dotted key that needs fixing."""

from __future__ import annotations

import copy
import re
import sys

import pytest

from rsa_bias.config import (
    ConfigError,
    ExperimentConfig,
    apply_override,
    config_from_dict,
    load_config,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TWO_FEATURES = [{"name": "easy", "type": "linear", "k": 1},
                {"name": "hard", "type": "parity", "k": 4}]


def _raises_naming(data: dict, key: str) -> ConfigError:
    """``config_from_dict(data)`` must fail with a message that starts with ``key:``."""
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert str(info.value).startswith(f"{key}:"), str(info.value)
    return info.value


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- the shipped config ----------------------------------------------------------------------


def test_shipped_config_loads_with_its_values(shipped_config):
    cfg = load_config(shipped_config)
    raw = tomllib.loads(shipped_config.read_text())
    as_dict = cfg.to_dict()
    for section, table in raw.items():
        if not isinstance(table, dict):
            assert as_dict[section] == (tuple(table) if isinstance(table, list) else table)
            continue
        for key, value in table.items():
            got = as_dict[section][key]
            if key == "features":  # each as written, plus the defaults it leaves out
                assert [{k: f[k] for k in v} for f, v in zip(got, value, strict=True)] == value
                assert all(f["prevalence"] == v.get("prevalence", 1.0)
                           for f, v in zip(got, value, strict=True))
            elif isinstance(value, list):
                assert list(got) == value, f"{section}.{key}"
            else:
                assert got == value, f"{section}.{key}"


def test_config_round_trips_through_dict(shipped_config):
    cfg = load_config(shipped_config)
    assert config_from_dict(copy.deepcopy(cfg.to_dict())) == cfg


def test_defaults_are_valid():
    assert config_from_dict({}) == ExperimentConfig().validate()


def test_all_snapshot_steps_include_final_step():
    cfg = config_from_dict({"training": {"steps": 40, "snapshot_steps": [0, 10]}})
    assert cfg.training.all_snapshot_steps == (0, 10, 40)


def test_int_is_accepted_for_float_and_converted():
    cfg = config_from_dict({"training": {"lr": 1}})
    assert type(cfg.training.lr) is float and cfg.training.lr == 1.0


def test_lists_become_tuples():
    cfg = config_from_dict({"seeds": [4, 2], "task": {"features": TWO_FEATURES}})
    assert cfg.seeds == (4, 2)
    assert isinstance(cfg.task.features, tuple)
    assert [f.name for f in cfg.task.features] == ["easy", "hard"]


# --- unknown keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "key"), [
    ({"nmae": "x"}, "nmae"),
    ({"model": {"widht": 3}}, "model.widht"),
    ({"training": {"step": 3}}, "training.step"),
    ({"task": {"features": [TWO_FEATURES[0], {"name": "b", "type": "parity", "kk": 2}]}},
     "task.features[1].kk"),
])
def test_unknown_keys_rejected_with_dotted_key(data, key):
    err = _raises_naming(data, key)
    assert "unknown key" in str(err)


# --- wrong types -----------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "key"), [
    ({"training": {"steps": "100"}}, "training.steps"),
    ({"training": {"steps": True}}, "training.steps"),
    ({"model": {"width": 16.0}}, "model.width"),
    ({"model": {"dropout": False}}, "model.dropout"),
    ({"training": {"lr": "0.1"}}, "training.lr"),
    ({"seeds": [0, "1"]}, "seeds[1]"),
    ({"seeds": 3}, "seeds"),
    ({"task": {"n_train": True}}, "task.n_train"),
    ({"task": {"n_train": 12.5}}, "task.n_train"),
    ({"task": {"coding": 1}}, "task.coding"),
    ({"model": "big"}, "model"),
    ({"task": {"features": [{"name": "a", "k": "1"}]}}, "task.features[0].k"),
])
def test_wrong_types_rejected_with_dotted_key(data, key):
    _raises_naming(data, key)


# --- impossible values -----------------------------------------------------------------------


@pytest.mark.parametrize(("data", "key"), [
    ({"training": {"lr": -1e-3}}, "training.lr"),
    ({"training": {"lr": 0.0}}, "training.lr"),
    ({"model": {"dropout": 1.0}}, "model.dropout"),
    ({"model": {"depth": 0}}, "model.depth"),
    ({"model": {"init_scale": 0.0}}, "model.init_scale"),
    ({"model": {"activation": "relux"}}, "model.activation"),
    ({"training": {"optimizer": "rmsprop"}}, "training.optimizer"),
    ({"training": {"momentum": 1.0}}, "training.momentum"),
    ({"training": {"batch_size": 0}}, "training.batch_size"),
    ({"training": {"steps": 100, "snapshot_steps": [0, 101]}}, "training.snapshot_steps"),
    ({"training": {"steps": 100, "snapshot_steps": [50, 10]}}, "training.snapshot_steps"),
    ({"training": {"device": "tpu"}}, "training.device"),
    ({"task": {"coding": "binary"}}, "task.coding"),
    ({"task": {"features": [{"name": "a", "type": "xor", "k": 2}]}}, "task.features[0].type"),
    ({"task": {"features": [TWO_FEATURES[0], {"name": "t", "type": "threshold", "k": 4}]}},
     "task.features[1].k"),
    ({"task": {"features": [{"name": "a", "type": "linear", "k": 2}]}}, "task.features[0].k"),
    ({"task": {"features": [{"name": "a", "type": "parity", "k": 1}]}}, "task.features[0].k"),
    ({"task": {"features": [{"name": "not valid", "type": "linear"}]}},
     "task.features[0].name"),
    ({"task": {"features": [TWO_FEATURES[0], TWO_FEATURES[0]]}}, "task.features"),
    ({"task": {"features": []}}, "task.features"),
    ({"task": {"n_distractor": -1}}, "task.n_distractor"),
    ({"task": {"n_train": "some"}}, "task.n_train"),
    ({"task": {"n_train": 0}}, "task.n_train"),
    ({"seeds": []}, "seeds"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"analysis": {"unit_threshold": 1.0}}, "analysis.unit_threshold"),
    ({"analysis": {"n_pcs": 0}}, "analysis.n_pcs"),
])
def test_bad_values_rejected_with_dotted_key(data, key):
    _raises_naming(data, key)


@pytest.mark.parametrize(("data", "valid"), [
    ({"model": {"activation": "relux"}}, "gelu"),
    ({"training": {"optimizer": "rmsprop"}}, "sgd"),
    ({"task": {"coding": "binary"}}, "pm1"),
    ({"task": {"features": [{"name": "a", "type": "xor", "k": 2}]}}, "threshold"),
])
def test_enum_errors_list_valid_choices(data, valid):
    with pytest.raises(ConfigError, match=valid):
        config_from_dict(data)


# --- overrides -------------------------------------------------------------------------------


@pytest.mark.parametrize(("item", "path", "value"), [
    ("training.steps=500", ("training", "steps"), 500),
    ("training.lr=3e-4", ("training", "lr"), 3e-4),
    ('task.coding="01"', ("task", "coding"), "01"),
    ("task.coding=01", ("task", "coding"), "01"),  # not valid TOML -> taken as a string
    ("training.device=cpu", ("training", "device"), "cpu"),
    ("seeds=[0, 1]", ("seeds",), [0, 1]),
    ("training.snapshot_steps=[0,10]", ("training", "snapshot_steps"), [0, 10]),
    ("analysis.n_pcs=3", ("analysis", "n_pcs"), 3),  # creates the missing table
    ("name=a=b", ("name",), "a=b"),
])
def test_apply_override_sets_parsed_value(item, path, value):
    data = {"name": "x", "training": {"steps": 1, "lr": 0.1}, "task": {"coding": "pm1"}}
    apply_override(data, item)
    node = data
    for p in path:
        node = node[p]
    assert node == value and type(node) is type(value)


def test_apply_override_leaves_other_keys_alone():
    data = {"training": {"steps": 1, "lr": 0.1}}
    apply_override(data, "training.steps=7")
    assert data == {"training": {"steps": 7, "lr": 0.1}}


@pytest.mark.parametrize("item", ["training.steps", "name.sub=1"])
def test_apply_override_rejects_malformed(item):
    with pytest.raises(ConfigError):
        apply_override({"name": "x"}, item)


def test_load_config_applies_overrides(shipped_config):
    cfg = load_config(shipped_config, ["training.steps=10", "training.snapshot_steps=[0, 5]",
                                       "seeds=[3]", 'task.coding="01"', "model.width=8"])
    assert cfg.training.steps == 10
    assert cfg.training.snapshot_steps == (0, 5)
    assert cfg.seeds == (3,)
    assert cfg.task.coding == "01"
    assert cfg.model.width == 8
    base = load_config(shipped_config)
    assert cfg.model.depth == base.model.depth  # untouched keys keep the file's values


@pytest.mark.parametrize(("override", "key"), [
    ("training.stpes=10", "training.stpes"),
    ("training.steps=ten", "training.steps"),
    ("model.dropout=1.0", "model.dropout"),
    ("training.steps=100", "training.snapshot_steps"),  # the file snapshots step 5000
])
def test_load_config_rejects_bad_overrides(shipped_config, override, key):
    with pytest.raises(ConfigError) as info:
        load_config(shipped_config, [override])
    assert str(info.value).startswith(f"{key}:")


def test_load_config_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.toml"))):
        load_config(tmp_path / "nope.toml")


def test_load_config_invalid_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[training\nsteps = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_load_config_unknown_key_in_file(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text("[model]\nwidht = 3\n")
    with pytest.raises(ConfigError, match=r"^model\.widht:"):
        load_config(path)
