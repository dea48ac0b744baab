"""Config values that parse but cannot run: NaN/inf floats, a batch larger than the training
set, seeds numpy or torch refuse, sizes beyond memory, unreadable files. Each is refused
before anything runs, with the key (or file) to fix."""

from __future__ import annotations

import dataclasses
import math
import types
import typing

import pytest

from rsa_bias.config import (
    ConfigError,
    ExperimentConfig,
    ModelConfig,
    TrainingConfig,
    config_from_dict,
    load_config,
)


def _raises_naming(data: dict, key: str) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    msg = str(info.value)
    assert msg.startswith(f"{key}:"), msg
    assert "\n" not in msg
    return msg


# --- NaN and inf, for every float field ------------------------------------------------------


def _holds_float(tp) -> bool:
    if tp is float:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType, tuple):
        return any(_holds_float(a) for a in typing.get_args(tp) if a is not Ellipsis)
    return False


def _float_fields(obj, path=()):
    """``(path, default)`` of every float field under ``obj``; a path step is a field name
    or ``(name, 0)`` for the first element of a tuple of sections."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        tp, value = hints[f.name], getattr(obj, f.name)
        if dataclasses.is_dataclass(tp):
            yield from _float_fields(value, (*path, f.name))
        elif typing.get_origin(tp) is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            if value:
                yield from _float_fields(value[0], (*path, (f.name, 0)))
        elif _holds_float(tp):
            yield (*path, f.name), value


FLOAT_FIELDS = list(_float_fields(ExperimentConfig()))


def _key(path) -> str:
    return ".".join(f"{p[0]}[{p[1]}]" if isinstance(p, tuple) else p for p in path)


def _data_with(path, value) -> dict:
    """Nested config dict setting ``path`` to ``value`` (tuple elements from the defaults)."""
    data: dict = {}
    node, obj = data, ExperimentConfig()
    for step in path[:-1]:
        if isinstance(step, tuple):
            name, i = step
            items = [dataclasses.asdict(x) for x in getattr(obj, name)]
            node[name] = items
            node, obj = items[i], getattr(obj, name)[i]
        else:
            node = node.setdefault(step, {})
            obj = getattr(obj, step)
    node[path[-1]] = value
    return data


def test_float_fields_are_discovered():
    keys = {_key(p) for p, _ in FLOAT_FIELDS}
    assert {"training.lr", "training.weight_decay", "training.momentum", "model.init_scale",
            "model.dropout", "analysis.unit_threshold", "task.images.noise",
            "task.images.shape_radius"} <= keys


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(("path", "default"), FLOAT_FIELDS, ids=[_key(p) for p, _ in FLOAT_FIELDS])
def test_non_finite_floats_refused_naming_the_key(path, default, bad):
    many = isinstance(default, tuple)
    msg = _raises_naming(_data_with(path, (bad,) if many else bad),
                         _key(path) + ("[0]" if many else ""))
    assert "finite" in msg


@pytest.mark.parametrize("override", ["training.lr=nan", "training.lr=inf",
                                      "model.init_scale=nan", "model.init_scale=-inf",
                                      "training.weight_decay=nan"])
def test_non_finite_override_refused(shipped_config, override):
    with pytest.raises(ConfigError, match=f"^{override.split('=')[0]}: .*finite"):
        load_config(shipped_config, [override])


def test_sections_refuse_non_finite_floats_on_their_own():
    with pytest.raises(ConfigError, match="^training.lr:"):
        TrainingConfig(lr=math.nan).validate()
    with pytest.raises(ConfigError, match="^model.init_scale:"):
        ModelConfig(init_scale=math.inf).validate()


# --- batch size ------------------------------------------------------------------------------


def test_batch_larger_than_the_enumerated_training_set_refused():
    # 1 + 4 + 3 bits = 256 inputs, 64 + 64 held out: 128 training inputs
    task = {"n_distractor": 3, "val_size": 64, "test_size": 64}
    msg = _raises_naming({"task": task, "training": {"batch_size": 129}}, "training.batch_size")
    assert "128" in msg
    config_from_dict({"task": task, "training": {"batch_size": 128}})


def test_batch_larger_than_n_train_refused():
    task = {"kind": "images", "n_train": 54, "val_size": 27, "test_size": 27}
    msg = _raises_naming({"task": task, "model": {"arch": "cnn"},
                          "training": {"batch_size": 64}}, "training.batch_size")
    assert "task.n_train" in msg and "54" in msg


# --- seeds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "key"), [
    ({"seeds": [0, -1]}, "seeds"),
    ({"seeds": [2 ** 32]}, "seeds"),
    ({"seeds": [2 ** 70]}, "seeds"),
    ({"task": {"seed": -1}}, "task.seed"),
    ({"task": {"seed": 2 ** 32}}, "task.seed"),
])
def test_seeds_outside_numpy_and_torch_range_refused(data, key):
    msg = _raises_naming(data, key)
    assert "2**32" in msg


def test_largest_seed_accepted():
    cfg = config_from_dict({"seeds": [0, 2 ** 32 - 1], "task": {"seed": 2 ** 32 - 1}})
    assert cfg.seeds == (0, 2 ** 32 - 1)


# --- sizes beyond memory ---------------------------------------------------------------------


@pytest.mark.parametrize(("data", "key"), [
    ({"task": {"n_distractor": 40, "n_train": 10 ** 12}}, "task.n_train"),
    ({"model": {"width": 10 ** 9}}, "model.width"),
    ({"task": {"kind": "images", "n_train": 27, "val_size": 27, "test_size": 27,
               "images": {"size": 10 ** 6}}, "model": {"arch": "cnn"},
      "training": {"batch_size": 27}}, "task.images.size"),
    ({"task": {"kind": "images", "n_train": 27, "val_size": 27, "test_size": 27},
      "model": {"arch": "cnn", "cnn": {"channels": [16, 10 ** 6]}},
      "training": {"batch_size": 27}}, "model.cnn.channels"),
    ({"task": {"n_distractor": 40, "n_train": 4, "val_size": 2 ** 22, "test_size": 2 ** 20},
      "training": {"batch_size": 4}}, "task.val_size"),
])
def test_sizes_beyond_memory_refused(monkeypatch, data, key):
    from rsa_bias.config import memory

    monkeypatch.setattr(memory, "memory_limit", lambda: 16 * 2 ** 30)
    msg = _raises_naming(data, key)
    assert "memory" in msg and "16.0 GiB" in msg


def test_memory_limit_is_the_machines():
    from rsa_bias.config.memory import memory_limit

    limit = memory_limit()
    assert 2 ** 28 < limit < 2 ** 60


def test_shipped_configs_fit(shipped_config):
    from rsa_bias.config.memory import estimate_bytes
    from rsa_bias.config.redshift import load_redshift_config
    from rsa_bias.config.spectral import load_spectral_config

    # the experiments that train no task from an ExperimentConfig have loaders of their own
    others = {"redshift.toml": load_redshift_config, "spectral_bias.toml": load_spectral_config}
    for path in sorted(shipped_config.parent.glob("*.toml")):
        if path.name in others:
            others.pop(path.name)(path)  # valid under its own loader
            continue
        cfg = load_config(path)
        assert estimate_bytes(cfg).total < 2 ** 31, path
    assert not others, f"shipped configs missing: {sorted(others)}"


# --- unreadable config files -----------------------------------------------------------------


def test_non_utf8_config_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[training]\nlr = 0.1  # d\xe9faut\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_folder_given_as_config_says_so(tmp_path):
    with pytest.raises(ConfigError, match="is a folder") as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_unreadable_config_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.toml"
    path.write_text("seeds = [0]\n")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_bytes", denied)
    monkeypatch.setattr(type(path), "read_text", denied)
    with pytest.raises(ConfigError, match="cannot be read") as info:
        load_config(path)
    assert str(path) in str(info.value)
