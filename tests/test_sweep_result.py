"""A sweep as one labelled result: the points' results.nc joined over a dim per swept factor
(or per point), written and read by the store, drawn by plot_sweep and ``rsa-bias plot``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from cli_helpers import one_line_error, run_main

from rsa_bias.cli import _grid_points, _point_name
from rsa_bias.experiments.sweep import run_sweep
from rsa_bias.experiments.sweep_result import sweep_dataset
from rsa_bias.plotting import plot_sweep, save_sweep_figure
from rsa_bias.store import StoreError, read_results, read_sweep, write_sweep

CONFIG = Path(__file__).resolve().parent.parent / "models" / "complexity_bias.toml"
#: A tiny run: 2 seeds of a width-8 MLP trained 50 steps (well under a second a point).
BASE = ["seeds=[0, 1]", "task.n_distractor=3", "task.val_size=64", "task.test_size=64",
        "model.depth=1", "model.width=8", "training.steps=50", "training.eval_every=25",
        "training.snapshot_steps=[0, 50]", "training.batch_size=32", "training.device=cpu",
        "analysis.n_pcs=3"]
GRID = ["model.depth=1,2", "training.lr=0.001,0.01"]
#: One-at-a-time: other snapshot steps and fewer seeds than the base, to be outer-joined.
ONE_AT_A_TIME = ["model.width=4,16", "training.snapshot_steps=[0,25,50]", "seeds=[0]"]


def _sweep(out: Path, grid: list[str], one_at_a_time: bool = False):
    """Run a tiny sweep into ``out``; its points as ``(name, {key: value text})``."""
    overrides = _grid_points(grid, one_at_a_time)
    run_sweep(CONFIG, out, [(_point_name(p), BASE + p) for p in overrides], figures=False)
    return [(_point_name(p), dict(o.split("=", 1) for o in p)) for p in overrides]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A 2x2 grid sweep whose last cell (depth 2, lr 0.01) is left out of the dataset."""
    out = tmp_path_factory.mktemp("grid")
    points = _sweep(out, GRID)
    assert points[-1][1] == {"model.depth": "2", "training.lr": "0.01"}
    ds = sweep_dataset(out, points[:3], config=CONFIG)
    path = write_sweep(ds, out / "sweep.nc")
    return out, points[:3], ds, path


@pytest.fixture(scope="module")
def oat(tmp_path_factory):
    out = tmp_path_factory.mktemp("oat")
    points = _sweep(out, ONE_AT_A_TIME, one_at_a_time=True)
    ds = sweep_dataset(out, points, config=CONFIG, one_at_a_time=True)
    return out, points, ds


def test_grid_file_has_a_typed_dim_per_factor(grid):
    _, points, _, path = grid
    with xr.open_dataset(path) as ds:
        assert ds["model.depth"].values.tolist() == [1, 2]
        assert ds["model.depth"].dtype.kind == "i"
        assert ds["training.lr"].values.tolist() == [0.001, 0.01]
        assert ds.r2.dims[:2] == ("model.depth", "training.lr")
        assert {"seed", "layer", "feature", "step"} <= set(ds.r2.dims)
        assert set(ds.accuracy.dims) >= {"split", "eval_step"}
        assert ds.attrs["rsa_bias_file"] == "sweep"
        assert ds.attrs["method"] == "sweep"
        assert json.loads(ds.attrs["factors"]) == ["model.depth", "training.lr"]
        assert json.loads(ds.attrs["points_json"]) == dict(points)
        assert ds.attrs["config_file"] == str(CONFIG)
        assert all(isinstance(v, (str, int, float, np.number)) for v in ds.attrs.values())


def test_a_cell_holds_exactly_its_points_results(grid):
    out, points, _, path = grid
    ds = read_sweep(path)
    for name, factors in points:
        res = read_results(out / name / "results.nc")
        cell = ds.sel({k: type(ds[k].values[0].item())(v) for k, v in factors.items()})
        r2 = cell.r2.sel(layer=res.layer).transpose(*res.r2.dims)
        assert np.array_equal(r2.values, res.r2.values)
        assert np.array_equal(cell.r2_final.sel(layer=res.layer).transpose(
            *res.r2.isel(step=-1).dims).values, res.r2.isel(step=-1).values)
        assert np.array_equal(cell.accuracy.transpose(*res.accuracy.dims).values,
                              res.accuracy.values)
        assert str(cell.config_hash.values) == res.attrs["config_hash"]
        if factors["model.depth"] == "1":  # a layer only the deeper points have
            assert cell.r2.sel(layer="hidden_1").isnull().all()


def test_a_grid_cell_without_a_point_is_nan(grid):
    ds = read_sweep(grid[3])
    missing = ds.sel({"model.depth": 2, "training.lr": 0.01})
    assert missing.r2.isnull().all() and missing.accuracy.isnull().all()
    assert str(missing.config_hash.values) == ""
    assert ds.r2_final.sel({"model.depth": 2, "training.lr": 0.001}).notnull().all()


def test_one_at_a_time_layout_and_outer_join(oat):
    out, points, ds = oat
    assert ds.point.values.tolist() == [n for n, _ in points]
    assert ds.factor.values.tolist() == ["", "model.width", "model.width",
                                         "training.snapshot_steps", "seeds"]
    assert ds.value.values.tolist() == ["", "4", "16", "[0,25,50]", "[0]"]
    assert ds.step.values.tolist() == [0, 25, 50]
    base = read_results(out / "base" / "results.nc")
    got = ds.r2.sel(point="base", step=[0, 50]).transpose(*base.r2.dims)
    assert np.array_equal(got.values, base.r2.values)
    assert ds.r2.sel(point="base", step=25).isnull().all()
    one_seed = points[-1][0]
    assert ds.r2.sel(point=one_seed, seed=1).isnull().all()
    assert ds.r2_final.sel(point=one_seed, seed=0).notnull().all()


def test_points_that_break_the_layout_are_refused(grid, oat):
    out, points, _, _ = grid
    with pytest.raises(ValueError, match="one_at_a_time=True"):
        sweep_dataset(oat[0], oat[1], config=CONFIG)
    with pytest.raises(ValueError, match="one_at_a_time=False"):
        sweep_dataset(out, points, config=CONFIG, one_at_a_time=True)
    with pytest.raises(ValueError, match="more than once"):
        sweep_dataset(out, [points[0], points[0]], config=CONFIG)
    with pytest.raises(StoreError, match="does not exist"):
        sweep_dataset(out, [("nowhere", {"model.depth": "1"})], config=CONFIG)


def test_read_sweep_refuses_missing_corrupt_and_other_files(grid, tmp_path):
    out, points, _, path = grid
    with pytest.raises(StoreError, match="does not exist"):
        read_sweep(tmp_path / "sweep.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(StoreError, match="truncated or corrupt"):
        read_sweep(bad)
    with pytest.raises(StoreError, match="not an rsa_bias sweep file"):
        read_sweep(out / points[0][0] / "results.nc")
    with pytest.raises(StoreError, match="r2_final"):
        write_sweep(read_sweep(path).drop_vars("r2_final"), tmp_path / "x.nc")


def _means(ax) -> list[np.ndarray]:
    """The y values of the mean lines of a pointplot (one per feature; not the intervals)."""
    return [line.get_ydata() for line in ax.lines
            if line.get_marker() == "o" and len(line.get_xdata())]


def test_plot_sweep_has_a_panel_per_factor_with_the_main_effects(grid):
    ds = read_sweep(grid[3])
    fig = plot_sweep(ds)
    assert len(fig.axes) == 2
    assert [ax.get_xlabel() for ax in fig.axes] == ["model.depth", "training.lr"]
    assert fig.axes[0].get_ylabel() == "R²"
    r2 = ds.r2_final.reset_coords(drop=True)
    last = xr.concat([r2.sel({"model.depth": d}).sel(layer=layer, drop=True)
                      for d, layer in ((1, "hidden_0"), (2, "hidden_1"))],
                     dim="model.depth", coords="minimal")  # each point's last layer
    want = last.mean("training.lr").mean("seed")  # the missing cell is left out
    got = _means(fig.axes[0])
    assert len(got) == 2
    for feat, ys in zip(ds.feature.values, got, strict=True):
        np.testing.assert_allclose(ys, want.sel(feature=feat).values)
    at = plot_sweep(ds, layer="hidden_0")  # depth 1 and 2 at their first layer
    np.testing.assert_allclose(_means(at.axes[1])[0], ds.r2_final.sel(
        layer="hidden_0", feature="easy").mean("model.depth").mean("seed").values)
    with pytest.raises(ValueError, match="hidden_0"):
        plot_sweep(ds, layer="nope")


def test_plot_one_at_a_time_draws_the_base_as_a_reference(oat, tmp_path):
    _, _, ds = oat
    fig = plot_sweep(ds)
    assert len(fig.axes) == 3
    assert [ax.get_xlabel() for ax in fig.axes] == ["model.width", "training.snapshot_steps",
                                                    "seeds"]
    base = ds.r2_final.sel(point="base", layer="hidden_0").mean("seed")
    flat = [line.get_ydata()[0] for line in fig.axes[0].lines
            if line.get_linestyle() == "--"]
    np.testing.assert_allclose(flat, base.values)
    widths = ds.r2_final.sel(point=ds.point[ds.factor == "model.width"], layer="hidden_0")
    np.testing.assert_allclose(_means(fig.axes[0])[0],
                               widths.sel(feature="easy").mean("seed").values)
    path = save_sweep_figure(ds, tmp_path / "figs")
    assert path == tmp_path / "figs" / "sweep_r2.png"
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_cli_plot_writes_the_png_or_says_what_is_wrong(grid, tmp_path):
    out = grid[0]
    code, stdout, _ = run_main(["plot", str(out)])
    assert code == 0
    assert stdout.strip() == str(out / "sweep_r2.png")
    assert (out / "sweep_r2.png").read_bytes()[:4] == b"\x89PNG"
    code, stdout, _ = run_main(["plot", str(out / "sweep.nc"), "--out", str(tmp_path / "f")])
    assert code == 0 and (tmp_path / "f" / "sweep_r2.png").is_file()
    code, _, err = run_main(["plot", str(tmp_path / "missing")])
    assert code == 2
    line = one_line_error(err)
    assert "does not exist" in line and "sweep.nc" in line
    code, _, err = run_main(["plot", str(out / grid[1][0][0] / "results.nc")])
    assert code == 2 and "not an rsa_bias sweep file" in one_line_error(err)
