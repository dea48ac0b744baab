"""The init-gap experiment: complexity at initialisation of the very networks that are then
trained, joined with their R² gap after training."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from rsa_bias.config import load_config
from rsa_bias.experiments.init_gap import (
    init_complexity,
    init_functions,
    init_gap_table,
    init_network,
    input_plane,
    run_init_gap,
)
from rsa_bias.tasks import make_task
from rsa_bias.training.activations import capture
from rsa_bias.training.loop import train

TINY = ["task.n_distractor=3", "task.n_train=96", "task.val_size=40", "task.test_size=40",
        "model.width=16", "training.batch_size=32", "training.steps=30", "training.eval_every=10",
        "training.snapshot_steps=[0, 30]", "training.checkpoint_every=30", "seeds=[0, 1]"]


@pytest.fixture(scope="module")
def cfg():
    return load_config("models/complexity_bias.toml", TINY)


@pytest.mark.parametrize("coding,centre,half", [("01", 0.5, 0.5), ("pm1", 0.0, 1.0)])
def test_input_plane_is_a_plane_through_the_centre_reaching_a_corner(coding, centre, half):
    x = input_plane(8, coding=coding, grid_size=9, seed=3).astype(np.float64)
    assert x.shape == (81, 8)
    np.testing.assert_allclose(x[40], centre, atol=1e-6)  # the middle point is the centre
    d = x - centre
    assert np.linalg.matrix_rank(d, tol=1e-4) == 2  # a plane, not a line or more
    # the plane's corners (u, v = ±1) are sqrt(2) radii away; the edge midpoints one radius
    radius = math.sqrt(8) * half
    np.testing.assert_allclose(np.linalg.norm(d[4]), radius, rtol=1e-5)  # (u=0, v=-1)
    np.testing.assert_allclose(np.linalg.norm(d[0]), math.sqrt(2) * radius, rtol=1e-5)
    # row-major: the first coordinate u varies fastest
    np.testing.assert_allclose(d[1] - d[0], d[2] - d[1], atol=1e-5)


def test_init_network_is_the_network_training_starts_from(cfg):
    stimuli = make_task(cfg.task)
    mask = np.isin(stimuli.split.values, ["val", "test"])
    result = train(stimuli, cfg.model, cfg.training, seed=1, snapshot_mask=mask,
                   progress=False)
    net = init_network(cfg, 1, stimuli=stimuli)
    x = torch.as_tensor(stimuli.inputs.values[mask], dtype=torch.float32)
    acts = capture(net, x, net.layer_names)
    for layer in net.layer_names:
        np.testing.assert_array_equal(acts[layer], result.snapshots[0][layer])
    # and not the trained one
    assert not np.allclose(result.snapshots[30]["hidden_1"], acts["hidden_1"])


def test_init_functions_one_per_seed_and_head(cfg):
    f = init_functions(cfg, [0, 1], grid_size=12)
    assert f.shape == (2, 2, 12, 12)
    assert not np.allclose(f[0], f[1])  # seeds differ
    np.testing.assert_array_equal(f, init_functions(cfg, [0, 1], grid_size=12))


def test_init_complexity_rises_with_a_sine_activation_at_large_scale(cfg):
    relu = init_complexity(cfg, [0, 1, 2], grid_size=32, max_order=6)
    sine_cfg = dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, activation="sine", init_scale=30.0))
    sine = init_complexity(sine_cfg, [0, 1, 2], grid_size=32, max_order=6)
    for m in ("fourier_frequency", "polynomial_order", "lz_complexity"):
        assert float(sine[m].mean()) > float(relu[m].mean()), m


def test_init_network_refuses_other_architectures(cfg):
    cnn = load_config("models/cnn_trifeature.toml")
    with pytest.raises(ValueError, match="takes an MLP on a binary task"):
        init_network(cnn, 0)


def test_run_init_gap_joins_training_and_init(tmp_path):
    results, paths = run_init_gap(tmp_path, config="models/complexity_bias.toml",
                                  activations=["relu", "tanh"], scales=[0.1, 1.0],
                                  overrides=TINY, progress=False, figures=True)
    ds = results["init_gap"]
    assert dict(ds.sizes) == {"activation": 2, "init_scale": 2, "seed": 2, "feature": 2}
    np.testing.assert_allclose(ds.r2_gap, ds.r2.sel(feature="easy") - ds.r2.sel(feature="hard"))
    assert paths["init_gap"].exists() and paths["init_gap_figure"].exists()
    table = init_gap_table(results)
    assert len(table) == 4 and {"r2_gap", "gap_lo", "gap_hi", "min_accuracy"} <= set(table)
