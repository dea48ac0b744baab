"""Findings of a hostile-user probe of the command line, the config overrides and the store:
each was silent or ended in a confusing error, and is now refused (or done right) up front."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cli_helpers import QUICK, one_line_error, run_main

import rsa_bias.cli as cli
from rsa_bias.config import ConfigError, apply_override, load_config
from rsa_bias.store import (
    activation_tree,
    layer_activation,
    read_activations,
    read_results,
    validate_activations,
    validate_results,
    write_activations,
    write_results,
)


@pytest.fixture
def no_run(monkeypatch):
    """Make any experiment run (or sweep) fail the test: the refusal must come first."""
    import rsa_bias.experiments.sweep as sweep

    def ran(*args, **kwargs):
        raise AssertionError("the experiment ran")

    monkeypatch.setattr(cli, "run_verb", ran)
    monkeypatch.setattr(sweep, "run_sweep", ran)


@pytest.fixture
def fake_run(monkeypatch):
    """Replace the experiment runs by a recorder returning a small summary table."""
    calls = []

    def run(name, out, **options):
        calls.append((name, out, options))
        table = pd.DataFrame({"R2_mean": [0.5, 0.25]}, index=["easy", "hard"])
        table.attrs["noise_ceiling"] = (0.3, 0.6)
        return types.SimpleNamespace(table=table, paths={}, elapsed_s=0.0)

    monkeypatch.setattr(cli, "run_verb", run)
    return calls


# --- 1. an inline table merges into the table -----------------------------------------------


def test_inline_table_override_merges_like_each_key(shipped_config):
    assert load_config(shipped_config, ["model={depth=1}"]) == \
        load_config(shipped_config, ["model.depth=1"])
    assert load_config(shipped_config, ["task={}"]) == load_config(shipped_config)


def test_inline_table_override_merges_deeply():
    data = {"task": {"a": 1, "images": {"x": 1, "y": 2}}}
    apply_override(data, "task={images={x=5}, b=3}")
    assert data == {"task": {"a": 1, "b": 3, "images": {"x": 5, "y": 2}}}


def test_validate_with_inline_table_keeps_the_files_values(shipped_config):
    base = load_config(shipped_config)
    code, stdout, _ = run_main(["validate", str(shipped_config), "--set", "model={depth=1}"])
    assert code == 0
    assert f'"width": {base.model.width},' in stdout
    assert f'"init_scale": {base.model.init_scale},' in stdout


# --- 2. an empty --out -----------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["run", "{config}", "--out", "", *QUICK],
    ["sweep", "{config}", "--out", "", *QUICK[:-2], "--no-figures"],
    ["demo", "loud-feature", "--quick", "--out", ""],
    ["demo", "loud-feature", "--quick", "--out", "d", "--figures-dir", ""],
    ["brain", "--out", "", "--no-progress"],
], ids=["run", "sweep", "demo", "demo-figures-dir", "brain"])
def test_empty_out_is_refused(argv, tmp_path, monkeypatch, shipped_config, no_run):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main([a.format(config=shipped_config) for a in argv])
    assert code == 2
    line = one_line_error(err)
    assert "is empty" in line and ("--out" in line or "--figures-dir" in line)
    assert list(tmp_path.iterdir()) == []


# --- 3. the R2 ratio -------------------------------------------------------------------------


def _run_summary(monkeypatch, shipped_config, tmp_path, r2):
    def run(name, out, **options):
        table = pd.DataFrame({"R2_mean": r2}, index=["easy", "hard"])
        return types.SimpleNamespace(table=table, paths={}, elapsed_s=0.0)

    monkeypatch.setattr(cli, "run_verb", run)
    code, stdout, err = run_main(["run", str(shipped_config), "--out", str(tmp_path), *QUICK])
    assert code == 0, err
    return stdout


@pytest.mark.parametrize("r2", [[0.5, -0.0773], [0.5, 0.0], [-0.1, 0.2], [0.5, np.nan]])
def test_r2_ratio_undefined_unless_both_positive(monkeypatch, shipped_config, tmp_path, r2):
    stdout = _run_summary(monkeypatch, shipped_config, tmp_path, r2)
    line = next(line for line in stdout.splitlines() if line.startswith("R2 ratio"))
    assert "undefined" in line and "=" not in line.split(":")[0], line
    bad = "easy" if not r2[0] > 0 else "hard"
    assert f"R2 {bad}" in line


def test_r2_ratio_printed_when_both_positive(monkeypatch, shipped_config, tmp_path):
    stdout = _run_summary(monkeypatch, shipped_config, tmp_path, [0.5, 0.25])
    assert "R2 ratio easy/hard = 2.00" in stdout


# --- 4. --image-size -------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["0", "-5", "1", "3", "100000", "ten"])
def test_brain_image_size_checked_before_anything_runs(size, tmp_path, no_run):
    code, _, err = run_main(["brain", "--out", str(tmp_path / "o"), "--image-size", size])
    assert code == 2
    line = one_line_error(err)
    assert "--image-size" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("size", cli.BRAIN_IMAGE_SIZES)
def test_brain_image_size_bounds_are_accepted(size, tmp_path, fake_run):
    code, _, err = run_main(["brain", "--out", str(tmp_path), "--image-size", str(size),
                          "--no-progress"])
    assert code == 0, err
    assert fake_run[0][2]["image_size"] == size


def test_smallest_image_size_is_the_smallest_the_cnn_takes():
    import torch

    from rsa_bias.experiments.trifeature_cnn import random_models

    net = next(iter(random_models({"k": {}}).values()))
    lo = cli.BRAIN_IMAGE_SIZES[0]
    with torch.no_grad():
        net(torch.zeros(1, 3, lo, lo))
        with pytest.raises(RuntimeError):
            net(torch.zeros(1, 3, lo - 1, lo - 1))


# --- 5. --seed -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5"])
@pytest.mark.parametrize("verb", [["demo", "loud-feature", "--quick"], ["brain"]],
                         ids=["demo", "brain"])
def test_seed_checked_naming_the_flag(verb, seed, tmp_path, no_run):
    code, _, err = run_main([*verb, "--out", str(tmp_path / "o"), "--seed", seed])
    assert code == 2
    line = one_line_error(err)
    assert "--seed" in line and "task.seed" not in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("seed", [0, 2 ** 32 - 1])
def test_seed_bounds_are_accepted(seed, tmp_path, fake_run):
    code, _, err = run_main(["brain", "--out", str(tmp_path), "--seed", str(seed)])
    assert code == 0, err
    assert fake_run[0][2]["seed"] == seed


# --- 6. malformed --set values ---------------------------------------------------------------


@pytest.mark.parametrize(("item", "value"), [("training.lr=.5", 0.5), ("training.lr=5.", 5.0),
                                             ("training.lr=-.5e-2", -0.005)])
def test_float_without_leading_or_trailing_digit(item, value):
    data = {}
    apply_override(data, item)
    assert data["training"]["lr"] == value and type(data["training"]["lr"]) is float


def test_dot_five_learning_rate_loads(shipped_config):
    assert load_config(shipped_config, ["training.lr=.5"]).training.lr == 0.5


@pytest.mark.parametrize(("item", "key"), [("training.steps=[1,", "training.steps"),
                                           ("model={depth=", "model"),
                                           ('name="abc', "name"),
                                           ("seeds=[1 2]", "seeds")])
def test_malformed_list_or_table_is_a_syntax_error(shipped_config, item, key):
    with pytest.raises(ConfigError) as info:
        load_config(shipped_config, [item])
    msg = str(info.value)
    assert msg.startswith(f"{key}:") and "not a valid value" in msg, msg
    assert "(str)" not in msg and "column" not in msg


def test_malformed_set_is_one_line(shipped_config):
    code, _, err = run_main(["validate", str(shipped_config), "--set", "training.steps=[1,"])
    assert code == 2
    line = one_line_error(err)
    assert "training.steps" in line and "not a valid value" in line and "[1," in line


# --- 7. an --out that cannot be created ------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_out_that_cannot_be_created_says_so(shipped_config, no_run):
    code, _, err = run_main(["run", str(shipped_config), "--out", "/proc/x", *QUICK])
    assert code == 2
    line = one_line_error(err)
    assert "/proc/x" in line and "cannot be created" in line and "No such file" in line


def test_out_that_cannot_be_created_permission(shipped_config, tmp_path, monkeypatch,
                                               no_run):
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code, _, err = run_main(["demo", "loud-feature", "--quick", "--out", str(tmp_path / "o")])
    assert code == 2
    line = one_line_error(err)
    assert "cannot be created" in line and "Permission denied" in line


# --- 8. the store ----------------------------------------------------------------------------


@pytest.fixture
def stimuli() -> xr.Dataset:
    return xr.Dataset(coords={"stimulus": np.arange(4),
                              "feature_shape": ("stimulus", [0, 1, 0, 1])},
                      attrs={"feature_names": ["shape"]})


@pytest.fixture
def tree(stimuli) -> xr.DataTree:
    return activation_tree(stimuli, {"hidden_0": np.zeros((4, 3))})


def test_write_results_refuses_a_dataarray(tmp_path):
    with pytest.raises(TypeError, match="xarray.Dataset.*to_dataset"):
        write_results(xr.DataArray([1, 2]), tmp_path / "w.nc")
    assert list(tmp_path.iterdir()) == []


def test_write_activations_refuses_a_dataset(stimuli, tmp_path):
    with pytest.raises(TypeError, match="DataTree.*activation_tree"):
        write_activations(stimuli, tmp_path / "a.nc")
    assert list(tmp_path.iterdir()) == []


def test_validate_activations_refuses_a_dataset(stimuli):
    with pytest.raises(TypeError, match="DataTree.*activation_tree"):
        validate_activations(stimuli)


@pytest.mark.parametrize("what", ["dataset", "path"])
def test_layer_activation_refuses_a_dataset_or_path(stimuli, tmp_path, what):
    obj = stimuli if what == "dataset" else str(tmp_path / "a.nc")
    with pytest.raises(TypeError, match="DataTree.*read_activations"):
        layer_activation(obj, "hidden_0")


@pytest.mark.parametrize("kind", ["results", "activations"])
def test_writing_over_a_folder_says_it_is_a_folder(kind, tree, tmp_path):
    write = write_results if kind == "results" else write_activations
    obj = xr.Dataset({"r2": ("x", [1.0])}) if kind == "results" else tree
    with pytest.raises(IsADirectoryError) as info:
        write(obj, tmp_path)
    msg = str(info.value)
    assert f"{tmp_path} is a folder" in msg and ".tmp" not in msg
    assert list(tmp_path.iterdir()) == []


def test_bare_string_variables_refused(tmp_path):
    path = write_results(xr.Dataset({"r2": ("x", [1.0])}), tmp_path / "r.nc")
    with pytest.raises(ValueError, match=r"not the string 'r2'; pass \['r2'\]"):
        read_results(path, variables="r2")
    with pytest.raises(ValueError, match=r"pass \['r2'\]"):
        validate_results(xr.Dataset({"r2": ("x", [1.0])}), variables="r2")


def test_bare_string_layers_refused(tree, tmp_path):
    path = write_activations(tree, tmp_path / "a.nc")
    with pytest.raises(ValueError, match=r"not the string 'hidden_0'; pass \['hidden_0'\]"):
        read_activations(path, layers="hidden_0")
    with pytest.raises(ValueError, match=r"pass \['hidden_0'\]"):
        validate_activations(tree, layers="hidden_0")
    assert read_activations(path, layers=["hidden_0"]).children.keys() == {"hidden_0"}


def test_layer_name_with_a_slash_refused_at_build_time(stimuli):
    with pytest.raises(ValueError, match="'a/b'.*'/'"):
        activation_tree(stimuli, {"a/b": np.zeros((4, 3))})
