"""The bias suite's summaries and figures: learning curves per condition, R² by output
position, finished runs side by side (``rsa-bias compare``), the figures ``rsa-bias plot``
draws for each kind of sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from cli_helpers import one_line_error, run_main

from rsa_bias.cli import _grid_points, _point_name
from rsa_bias.experiments.bias_suite import position_table, read_runs, runs_table
from rsa_bias.experiments.sweep import run_sweep
from rsa_bias.experiments.sweep_result import sweep_dataset
from rsa_bias.plotting import (
    condition_labels,
    emission_positions,
    plot_learning_curves,
    plot_position_effect,
    plot_runs,
    save_sweep_figures,
)

CONFIG = Path(__file__).resolve().parent.parent / "models" / "complexity_bias.toml"
BASE = ["seeds=[0, 1, 2]", "task.n_distractor=3", "task.val_size=64", "task.test_size=64",
        "model.depth=2", "model.width=8", "training.steps=60", "training.eval_every=20",
        "training.snapshot_steps=[0, 30, 60]", "training.batch_size=32",
        "training.device=cpu", "analysis.n_pcs=3"]
ORDER = ["task.features.0.start_step=30", "task.features.1.start_step=30"]
KEY = "model.transformer.output_order"


@pytest.fixture(scope="module")
def order_sweep(tmp_path_factory):
    """A tiny learning-order sweep: simultaneous, hard first, easy first."""
    out = tmp_path_factory.mktemp("order")
    overrides = _grid_points(ORDER, one_at_a_time=True)
    points = [(_point_name(p), BASE + p, dict(o.split("=", 1) for o in p)) for p in overrides]
    run_sweep(CONFIG, out, points, figures=False, one_at_a_time=True)
    ds = sweep_dataset(out, [(name, factors) for name, _, factors in points], config=CONFIG,
                       one_at_a_time=True)
    return out, [name for name, _, _ in points], ds


def test_condition_labels_name_each_point(order_sweep):
    _, _, ds = order_sweep
    assert condition_labels(ds) == ["base", *ORDER]
    one = ds.isel(point=[1, 2]).rename({"point": "x"})
    with pytest.raises(ValueError, match="select one value"):
        condition_labels(one.drop_vars(["factor", "value"]).assign_attrs(factors='["a","b"]'))


def test_learning_curves_draw_the_seed_means_of_each_condition(order_sweep):
    _, _, ds = order_sweep
    fig = plot_learning_curves(ds)
    axes = np.array(fig.axes).reshape(2, -1) if len(fig.axes) == 4 else None
    assert axes is not None  # 2 rows x 2 features
    assert [ax.get_title() for ax in axes[0]] == ["easy: test accuracy", "hard: test accuracy"]
    assert axes[1, 0].get_title() == "easy: R² at hidden_1"
    # the first line of the top-left panel is the base point's mean test accuracy of "easy"
    want = ds.accuracy.sel(point="base", split="test", feature="easy").mean("seed")
    np.testing.assert_allclose(axes[0, 0].lines[0].get_ydata(), want.values)
    r2 = ds.r2.sel(point=ds.point[2], layer="hidden_1", feature="hard").mean("seed")
    np.testing.assert_allclose(axes[1, 1].lines[2].get_ydata(), r2.values)


def test_compare_table_and_cli(order_sweep, tmp_path):
    out, names, _ = order_sweep
    folders = [out / names[0], out / names[1]]
    results = read_runs(folders, labels=["together", "hard first"])
    table = runs_table(results)
    for label, res in results.items():
        final = res.r2.sel(layer="hidden_1").isel(step=-1)
        got = table[table.run == label].set_index("feature")
        np.testing.assert_allclose(got.R2, final.mean("seed").sel(feature=got.index).values)
        assert (got.R2_lo <= got.R2).all() and (got.R2 <= got.R2_hi).all()
        assert set(got.n) == {3}
    by_layer = runs_table(results, layers=["hidden_0", "hidden_0"])
    assert set(by_layer.layer) == {"hidden_0"}
    with pytest.raises(ValueError, match="no layer 'pool'"):
        runs_table(results, layers=["pool", "hidden_0"])
    with pytest.raises(ValueError, match="one per run"):
        read_runs(folders, labels=["a"])
    fig = plot_runs(results)
    assert len(fig.axes[0].patches) >= 4
    code, stdout, _ = run_main(["compare", *map(str, folders), "--labels", "a,b",
                                "--out", str(tmp_path / "f" / "cmp.png")])
    assert code == 0 and (tmp_path / "f" / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    assert "hidden_1" in stdout and stdout.count("easy") == 2
    code, _, err = run_main(["compare", str(folders[0]), str(tmp_path / "nothing")])
    assert code == 2 and "results.nc" in one_line_error(err)


def test_plot_writes_learning_curves_for_a_one_factor_sweep(order_sweep, tmp_path):
    _, _, ds = order_sweep
    paths = save_sweep_figures(ds, tmp_path)
    assert [p.name for p in paths] == ["sweep_r2.png", "learning_curves.png"]


def _order_sweep(r2_first: float, r2_second: float) -> xr.Dataset:
    """A synthetic sweep of two output orders: the feature emitted first has R² r2_first."""
    orders = ['["a", "b"]', '["b", "a"]']
    rng = np.random.default_rng(0)
    r2 = np.empty((2, 1, 10, 2))
    r2[0, :, :, 0] = r2[1, :, :, 1] = r2_first   # order 0 emits a first, order 1 emits b first
    r2[0, :, :, 1] = r2[1, :, :, 0] = r2_second
    r2 = r2 + rng.normal(0, 0.01, r2.shape)
    da = xr.DataArray(r2, dims=(KEY, "layer", "seed", "feature"),
                      coords={KEY: orders, "layer": ["block_1"], "seed": np.arange(10),
                              "feature": ["a", "b"]})
    return xr.Dataset({"r2_final": da}, attrs={"factors": f'["{KEY}"]'})


def test_positions_and_the_position_table():
    ds = _order_sweep(0.5, 0.2)
    pos = emission_positions(ds)
    assert pos.values.tolist() == [[1, 2], [2, 1]]
    table = position_table(ds)
    assert table.attrs["layer"] == "block_1"
    pooled = table[table.feature == "all"].set_index("position")
    np.testing.assert_allclose(pooled.R2, [0.5, 0.2], atol=0.01)
    assert list(pooled.n) == [20, 20]
    a = table[table.feature == "a"].set_index("position")
    want = ds.r2_final.isel({KEY: 0}).sel(feature="a").mean()
    np.testing.assert_allclose(a.R2.loc[1], float(want))
    assert len(plot_position_effect(ds).axes[0].lines) > 0
    with pytest.raises(ValueError, match="does not vary"):
        emission_positions(ds.rename({KEY: "model.depth"}))


def test_causal_checks_run_and_their_table(tmp_path):
    from rsa_bias.config import load_config
    from rsa_bias.experiments.causal_checks import causal_table, run_causal
    from rsa_bias.plotting import plot_causal
    from rsa_bias.store import read_results

    cfg = load_config(CONFIG, [b for b in BASE if not b.startswith("training.steps")
                               and not b.startswith("training.snapshot")]
                      + ["training.steps=200", "training.snapshot_steps=[0, 200]",
                         "model.width=16"])
    ds = run_causal(cfg, tmp_path, scales=(0.5, 1.0, 2.0), progress=False)
    back = read_results(tmp_path / "causal.nc")
    xr.testing.assert_allclose(back.flip_rate, ds.flip_rate)
    assert (tmp_path / "results.nc").is_file() and back.attrs["layer"] == "hidden_1"
    assert ds.sizes == {**ds.sizes, "seed": 3, "feature": 2, "scale": 3}
    np.testing.assert_allclose(ds.step_norm, ds.step_needed * ds.relative_norm)
    res = read_results(tmp_path / "results.nc")
    np.testing.assert_allclose(ds.r2, res.r2.sel(layer="hidden_1").isel(step=-1))
    assert ((ds.reliance_a >= 0) & (ds.reliance_a <= 1)).all()
    table = causal_table(ds)
    np.testing.assert_allclose(table.R2, ds.r2.mean("seed").values)
    np.testing.assert_allclose(table.loc["easy", "flips_at_1"],
                               ds.flip_rate.sel(feature="easy", target_feature="easy",
                                                scale=1.0).mean())
    assert table.loc["easy", "reliance_on_it"] == pytest.approx(float(ds.reliance_a.mean()))
    assert np.isnan(table.loc["hard", "reliance_on_it"])
    assert len(plot_causal(ds).axes) == 2


def test_steering_a_transformer_is_refused():
    from rsa_bias.config import load_config
    from rsa_bias.networks import build_model
    from rsa_bias.tasks import make_task
    from rsa_bias.training import steer

    cfg = load_config(CONFIG.parent / "output_position.toml", ["model.width=8"])
    stimuli = make_task(cfg.task)
    model = build_model(stimuli.inputs.shape[1:], {"a": 2, "b": 2}, cfg.model)
    with pytest.raises(ValueError, match="steering it would change nothing"):
        steer(model, stimuli=stimuli, layer="block_0", feature="a")
