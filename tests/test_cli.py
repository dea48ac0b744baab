"""Command line: validate, run (files, table, figures) and show."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest

from rsa_bias.analysis import feature_variance_explained
from rsa_bias.cli import _grid_points, _point_name, main
from rsa_bias.store import layer_activation, read_activations, read_results

TINY = [
    "seeds=[0, 1]",
    "task.n_distractor=3", "task.val_size=64", "task.test_size=64",
    "model.depth=2", "model.width=16",
    "training.steps=20", "training.eval_every=10", "training.snapshot_steps=[0, 10]",
    "training.batch_size=32", "training.checkpoint_every=10", "training.device=cpu",
    "analysis.n_pcs=3",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shipped_config):
    out = tmp_path_factory.mktemp("run")
    code, stdout, stderr = _run(["run", str(shipped_config), "--out", str(out), "--no-progress",
                                 "--no-figures", *_set(TINY)])
    return code, stdout, stderr, out


# --- validate --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    ("[training]\nlr = -0.1\n", "training.lr"),
    ("[model]\nwidht = 3\n", "model.widht"),
    ("[[task.features]]\nname = 'a'\ntype = 'threshold'\nk = 2\n", "task.features[0].k"),
])
def test_validate_invalid_config_exits_2_naming_key(tmp_path, capsys, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert key in captured.err
    assert captured.err.startswith("rsa-bias: error:")
    assert "valid" not in captured.out


def test_validate_bad_override_exits_2(shipped_config, capsys):
    assert main(["validate", str(shipped_config), "--set", "model.dropout=1.5"]) == 2
    assert "model.dropout" in capsys.readouterr().err


def test_validate_missing_file_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_validate_prints_resolved_config(shipped_config, capsys):
    assert main(["validate", str(shipped_config), "--set", "training.steps=5000",
                 "--set", "model.width=32"]) == 0
    out = capsys.readouterr().out
    body, last = out.rstrip("\n").rsplit("\n", 1)
    assert last == f"{shipped_config}: valid (run it with rsa-bias run)"
    cfg = json.loads(body)
    assert cfg["model"]["width"] == 32
    assert cfg["training"]["steps"] == 5000
    assert cfg["analysis"]["n_pcs"] == 8  # defaults are filled in


def test_run_with_invalid_override_exits_2_before_training(shipped_config, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(shipped_config), "--out", str(out), "--no-progress",
                 *_set(TINY), "--set", "task.n_distractor=0", "--set", "task.val_size=16",
                 "--set", "task.test_size=16"])
    assert code == 2
    assert "leaking" in capsys.readouterr().err
    assert not out.exists()


# --- run -------------------------------------------------------------------------------------


def test_run_writes_readable_files(tiny_run):
    code, _, stderr, out = tiny_run
    assert code == 0, stderr
    tree = read_activations(out / "activations.nc", layers=["hidden_0", "hidden_1"])
    act = tree["hidden_1"]["activation"]
    assert act.dims == ("seed", "step", "stimulus", "unit")
    assert act.shape == (2, 3, 128, 16)
    np.testing.assert_array_equal(act.seed.values, [0, 1])
    np.testing.assert_array_equal(act.step.values, [0, 10, 20])
    assert set(tree.to_dataset().split.values) == {"val", "test"}
    res = read_results(out / "results.nc")
    assert {"seed", "layer", "feature", "step"} <= set(res.r2.dims)
    assert list(res.layer.values) == ["hidden_0", "hidden_1"]
    assert list(res.feature.values) == ["easy", "hard"]
    cfg = json.loads(res.attrs["config_json"])
    assert cfg["training"]["steps"] == 20 and cfg["seeds"] == [0, 1]
    assert json.loads(res.attrs["seed"]) == [0, 1]
    for key in ("rsa_bias_version", "git_sha", "created"):
        assert res.attrs[key] == tree.attrs[key]
    assert not (out / "checkpoints").exists()
    assert not list(out.glob("*.png"))


def test_run_results_agree_with_stored_activations(tiny_run):
    out = tiny_run[3]
    tree = read_activations(out / "activations.nc")
    res = read_results(out / "results.nc")
    for layer in ("hidden_0", "hidden_1"):
        act = layer_activation(tree, layer).sel(seed=1, step=20)
        want = feature_variance_explained(act)
        np.testing.assert_allclose(res.r2.sel(layer=layer, seed=1, step=20).values,
                                   want.r2.values, rtol=1e-10)


def test_run_prints_summary_table(tiny_run):
    _, stdout, _, out = tiny_run
    res = read_results(out / "results.nc")
    assert "feature @ hidden_1" in stdout and "R2_mean" in stdout
    lines = {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}
    r2 = res.r2.sel(layer="hidden_1").isel(step=-1)
    acc = res.accuracy.sel(split="test").isel(eval_step=-1)
    for feat in ("easy", "hard"):
        row = lines[feat]
        assert row[1] == f"{float(r2.sel(feature=feat).mean('seed')):.3f}"
        assert row[-1] == f"{float(acc.sel(feature=feat).mean('seed')):.3f}"
    assert str(out / "activations.nc") in stdout


def test_show_prints_saved_run(tiny_run, capsys):
    out = tiny_run[3]
    assert main(["show", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "feature @ hidden_0" in printed and "feature @ hidden_1" in printed
    assert '"method": "complexity_bias"' in printed
    assert "config_json" not in printed


def test_run_with_figures(tmp_path, shipped_config):
    code, _, stderr = _run(["run", str(shipped_config), "--out", str(tmp_path),
                            "--no-progress", *_set(TINY), "--set", "seeds=[3]"])
    assert code == 0, stderr
    for name in ("r2_by_layer", "training_curves", "pca"):
        png = tmp_path / f"{name}.png"
        assert png.is_file(), name
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert png.stat().st_size > 1000
    assert json.loads(read_results(tmp_path / "results.nc").attrs["seed"]) == [3]


def test_show_missing_run_exits_2(tmp_path, capsys):
    assert main(["show", str(tmp_path)]) == 2
    assert "results.nc does not exist" in capsys.readouterr().err


# --- sweep -----------------------------------------------------------------------------------


def test_sweep_run_folders_are_distinct_for_distinct_points():
    """Each grid point needs its own output folder, or runs overwrite each other."""
    points = _grid_points(["training.snapshot_steps=[0,15],[0,1,5]", "model.width=8,16"])
    assert len(points) == 4
    names = [_point_name(p) for p in points]
    assert len(set(names)) == len(names), names


@pytest.mark.slow
def test_sweep_on_a_dask_local_cluster(tmp_path, shipped_config):
    pytest.importorskip("distributed")
    base = [o for o in TINY if not o.startswith(("seeds", "model.width"))]
    code, _, stderr = _run(["sweep", str(shipped_config), "--out", str(tmp_path), "--no-figures",
                            *_set(base), "--set", "seeds=[0]", "--grid", "model.width=8,12",
                            "--jobs", "2", "--scheduler", "local"])
    assert code == 0, stderr
    widths = sorted(read_activations(r / "activations.nc")["hidden_0"].sizes["unit"]
                    for r in tmp_path.iterdir() if r.is_dir())
    assert widths == [8, 12]
    assert len((tmp_path / "sweep.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_sweep_runs_every_grid_point(tmp_path, shipped_config):
    base = [o for o in TINY if not o.startswith(("seeds", "model.width"))]
    code, stdout, stderr = _run(["sweep", str(shipped_config), "--out", str(tmp_path),
                                 "--no-figures", *_set(base), "--set", "seeds=[0]",
                                 "--grid", "model.width=8,12"])
    assert code == 0, stderr
    rows = (tmp_path / "sweep.csv").read_text().splitlines()
    assert len(rows) == 3
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(runs) == 2
    widths = sorted(read_activations(r / "activations.nc")["hidden_0"].sizes["unit"]
                    for r in runs)
    assert widths == [8, 12]
    assert "sweep: 2 runs" in stdout


# --- brain -------------------------------------------------------------------------------------


def test_brain_command_prints_rsa_and_v4_scores(tmp_path, monkeypatch):
    """The command wires run_model_vs_brain's files into one table (the experiment itself
    is tested in test_model_vs_brain.py)."""
    import xarray as xr

    import rsa_bias.experiments as experiments
    from rsa_bias.store import write_results

    models, layers = ["random", "trained"], ["conv_0", "fc_0"]
    score = np.array([[[0.11, 0.12], [0.21, 0.22]], [[0.31, 0.32], [0.41, 0.42]]])
    rsa = xr.Dataset({"score": (("target", "model", "layer"), score),
                      "noise_ceiling_lower": ("target", [0.37, np.nan]),
                      "noise_ceiling_upper": ("target", [0.67, np.nan])},
                     coords={"target": ["human_it", "monkey_it"], "model": models,
                             "layer": layers})
    enc = xr.Dataset({"score": (("model", "layer"), [[0.5, 0.6], [0.7, 0.8]])},
                     coords={"model": models, "layer": layers})
    calls = {}

    def fake(out_dir, *, small, seed, image_size, progress):
        calls.update(small=small, seed=seed, image_size=image_size)
        return {"rsa_it": rsa, "encoding_v4": enc}, {
            "rsa_it": write_results(rsa, tmp_path / "rsa_it.nc"),
            "encoding_v4": write_results(enc, tmp_path / "encoding_v4.nc")}

    registry = experiments.EXPERIMENTS
    monkeypatch.setitem(registry, "model-vs-brain",
                        dataclasses.replace(registry["model-vs-brain"], run=fake))
    code, stdout, stderr = _run(["brain", "--out", str(tmp_path), "--seed", "3", "--full",
                                 "--no-progress"])
    assert code == 0, stderr
    assert calls == {"small": False, "seed": 3, "image_size": 64}
    assert "noise ceiling (Spearman): 0.370-0.670" in stdout
    row = next(line for line in stdout.splitlines() if "trained" in line and "fc_0" in line)
    assert row.split()[-3:] == ["0.220", "0.420", "0.800"]
