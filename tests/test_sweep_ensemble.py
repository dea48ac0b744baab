"""Sweeps train the points that differ only in values as one ensemble, give the numbers each
point gives alone, run on a Dask LocalCluster with worker resources, and write sweep.nc."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import xarray as xr

from rsa_bias.cli import _grid_points, _point_name, main
from rsa_bias.experiments.sweep import run_sweep
from rsa_bias.experiments.sweep_groups import group_points

BASE = [
    "seeds=[0, 1]",
    "task.n_distractor=3", "task.val_size=64", "task.test_size=64",
    "model.depth=2", "model.width=16",
    "training.steps=30", "training.eval_every=10", "training.snapshot_steps=[0, 30]",
    "training.batch_size=32", "training.device=cpu",
    "analysis.n_pcs=3",
]


def _points(grid: list[str], one_at_a_time: bool = False):
    return [(_point_name(p), BASE + p, dict(o.split("=", 1) for o in p))
            for p in _grid_points(grid, one_at_a_time)]


def _sweep(config, out, grid, **options):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        run_sweep(config, out, _points(grid), figures=False, progress=False, **options)
    return xr.open_dataset(out / "sweep.nc").load(), stdout.getvalue()


VALUE_GRID = ["training.lr=0.001,0.01", "model.init_scale=0.1,1"]


def test_points_that_differ_in_values_train_as_one_ensemble_and_match_alone(
        tmp_path, shipped_config):
    grouped, said = _sweep(shipped_config, tmp_path / "grouped", VALUE_GRID)
    assert said.count("as one batched ensemble") == 1  # all 4 points x 2 seeds: one group
    alone, said_alone = _sweep(shipped_config, tmp_path / "alone", VALUE_GRID,
                               sequential=True)
    assert "as one batched ensemble" not in said_alone
    assert set(grouped.r2.dims) >= {"training.lr", "model.init_scale", "seed", "layer",
                                    "feature"}
    assert grouped["training.lr"].values.tolist() == [0.001, 0.01]
    # At these sizes the MLP ensemble computes what each point computes alone, to the bit,
    # on the CPU (widths that are not multiples of 16, e.g. 8 or 24, round differently, ~1e-8).
    for name in ("r2", "r2_final", "accuracy", "loss"):
        np.testing.assert_array_equal(grouped[name].values, alone[name].values, err_msg=name)
    # ... and the points really differ (a group that trained one config would not).
    final = grouped.r2_final.sel(feature="easy").isel(layer=-1).mean("seed")
    assert np.unique(np.round(final.values, 6)).size == 4


def test_group_points_splits_on_shape_memory_and_jobs(shipped_config):
    width = [(n, o) for n, o, _ in _points(["model.width=8,16", "training.lr=0.001,0.01"])]
    groups = group_points(shipped_config, width)
    assert [len(g) for g in groups] == [2, 2]  # width changes the shapes, lr does not
    assert all(len({dict(o.split("=", 1) for o in ov)["model.width"] for _, ov in g}) == 1
               for g in groups)
    assert [len(g) for g in group_points(shipped_config, width, max_members=2)] == [1] * 4
    assert [len(g) for g in group_points(shipped_config, width, jobs=4)] == [1] * 4
    assert [len(g) for g in group_points(shipped_config, width, sequential=True)] == [1] * 4
    steps = [(n, o) for n, o, _ in _points(["training.steps=30,40"])]
    assert len(group_points(shipped_config, steps)) == 2  # another schedule


def test_sweep_on_a_local_cluster_of_two_workers_with_resources(tmp_path, shipped_config):
    grid = ["model.width=16,32", "training.lr=0.001,0.01"]
    cluster, _ = _sweep(shipped_config, tmp_path / "cluster", grid, scheduler="local", jobs=2,
                        resources={"SLOT": 1})
    inline, _ = _sweep(shipped_config, tmp_path / "inline", grid)
    assert cluster.r2.sizes["model.width"] == 2 and cluster.r2.sizes["training.lr"] == 2
    assert cluster.attrs["method"] == "sweep"
    np.testing.assert_array_equal(cluster.r2.values, inline.r2.values)


def test_resources_no_worker_has_are_refused(shipped_config, tmp_path):
    from distributed import LocalCluster

    from rsa_bias.executors import executor

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, \
            pytest.raises(ValueError, match="no worker of the Dask cluster has the resources"), \
            executor(1, cluster.scheduler_address, resources={"GPU": 1}):
        pass
    with pytest.raises(ValueError, match="need a Dask scheduler"), \
            executor(1, None, resources={"GPU": 1}):
        pass
    with LocalCluster(n_workers=0, dashboard_address=None) as empty, \
            pytest.raises(ValueError, match="no worker joined the Dask scheduler"), \
            executor(1, empty.scheduler_address, resources={"GPU": 1}, timeout=1):
        pass


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_gpu_resource_for_a_local_cluster_without_cuda_is_refused(tmp_path, shipped_config):
    from rsa_bias.executors import executor

    with pytest.raises(ValueError, match="has no CUDA GPU"), \
            executor(2, "local", resources={"GPU": 1}):
        pass


@pytest.mark.parametrize(("extra", "message"), [
    (["--resources", "GPU=1"], "--resources needs --scheduler"),
    (["--resources", "GPU", "--scheduler", "local"], "must look like NAME=N"),
    (["--resources", "GPU=-1", "--scheduler", "local"], "must look like NAME=N"),
])
def test_cli_refuses_bad_resources(tmp_path, shipped_config, capsys, extra, message):
    code = main(["sweep", str(shipped_config), "--out", str(tmp_path), "--grid",
                 "training.lr=0.001,0.01", *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "sweep.nc").exists()


def test_one_at_a_time_sweep_has_a_point_dim(tmp_path, shipped_config):
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        run_sweep(shipped_config, tmp_path, _points(["training.lr=0.001,0.01"], True),
                  figures=False, progress=False, one_at_a_time=True)
    ds = xr.open_dataset(tmp_path / "sweep.nc")
    assert ds.sizes["point"] == 3
    assert ds["factor"].values.tolist() == ["", "training.lr", "training.lr"]


def test_seed_interval_agrees_with_scipy_bootstrap():
    from scipy.stats import bootstrap

    from rsa_bias.experiments.complexity_bias import seed_interval

    values = np.array([0.518, 0.433, 0.531, 0.562, 0.571, 0.407, 0.379, 0.481, 0.464, 0.546])
    lo, hi = seed_interval(values, n_boot=50_000)
    ref = bootstrap((values,), np.mean, n_resamples=50_000, method="percentile",
                    confidence_level=0.95, random_state=1).confidence_interval
    assert abs(lo - ref.low) < 2e-3 and abs(hi - ref.high) < 2e-3
    assert lo < values.mean() < hi
    assert seed_interval(values) == seed_interval(values)  # seeded: the same table each time
    assert np.isnan(seed_interval(values[:1])).all()
    assert np.isnan(seed_interval(np.append(values, np.nan))).all()


@pytest.mark.parametrize(("grid", "message"), [
    (["--grid", "training.lr=0.001", "--grid", "training.lr=0.003"], "is given twice"),
    (["--grid", "training.lr=0.001,0.001"], "lists 0.001 more than once"),
    (["--grid", "=1,2"], "must look like section.key=v1,v2"),
])
def test_a_grid_that_repeats_itself_is_refused_before_anything_runs(tmp_path, shipped_config,
                                                                    capsys, grid, message):
    out = tmp_path / "sweep"
    assert main(["sweep", str(shipped_config), "--out", str(out), *grid]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_sweep_nc_records_every_points_overrides(tmp_path, shipped_config):
    import json

    ds, _ = _sweep(shipped_config, tmp_path, ["training.lr=0.001,0.01"])
    overrides = json.loads(ds.attrs["overrides_json"])
    assert len(overrides) == 2
    assert all(set(BASE) <= set(ov) for ov in overrides.values())
    assert sorted(ov[-1] for ov in overrides.values()) == ["training.lr=0.001",
                                                           "training.lr=0.01"]


def test_force_replaces_a_checkpoint_of_another_config(tmp_path, shipped_config, capsys):
    from rsa_bias.config import load_config
    from rsa_bias.tasks import make_task
    from rsa_bias.training import seed_members, train_ensemble

    cfg = load_config(shipped_config, BASE)
    train_ensemble(make_task(cfg.task), seed_members(cfg.model, cfg.training, cfg.seeds),
                   checkpoint=tmp_path / "checkpoints" / "ensemble.pt", config_json="other",
                   progress=False)
    argv = ["run", str(shipped_config), "--out", str(tmp_path), "--no-figures", "--no-progress",
            *[a for o in BASE for a in ("--set", o)]]
    assert main(argv) == 2
    assert "written for a different config" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert (tmp_path / "results.nc").exists() and not (tmp_path / "checkpoints").exists()
