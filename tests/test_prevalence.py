"""Prevalence (issue 11): a feature supervised on a fraction of the training examples.

The mask is part of the stimulus set (``supervised_<name>``), drawn with the task seed on its
own stream, so the task is otherwise unchanged; the loss of a feature is its mean over the
examples that supervise it, in the sequential loop and in the ensemble alike.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ensemble_helpers import assert_same_result

from rsa_bias.config import ConfigError, ModelConfig, TrainingConfig, load_config
from rsa_bias.tasks import make_task
from rsa_bias.tasks.binary import supervision_matrix
from rsa_bias.training import seed_members, train, train_ensemble
from rsa_bias.training.loop import feature_losses

SMALL = ["task.n_distractor=3", "task.val_size=64", "task.test_size=64"]


def _task(shipped_config, *overrides):
    return make_task(load_config(shipped_config, [*SMALL, *overrides]).task)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_mask_supervises_the_fraction_of_training_examples_and_all_held_out(shipped_config, p):
    full = _task(shipped_config)
    rare = _task(shipped_config, f"task.features.1.prevalence={p}")
    train_split = rare.split.values == "train"
    mask = rare["supervised_hard"].values
    assert mask[train_split].sum() == round(p * train_split.sum())
    assert mask[~train_split].all()  # evaluation sees every held-out stimulus
    assert "supervised_easy" not in rare.coords  # prevalence 1: no mask
    # the stimulus set itself is unchanged, and the mask is the same every time
    np.testing.assert_array_equal(rare.inputs.values, full.inputs.values)
    np.testing.assert_array_equal(rare.stimulus.values, full.stimulus.values)
    again = _task(shipped_config, f"task.features.1.prevalence={p}")
    np.testing.assert_array_equal(again["supervised_hard"].values, mask)
    other_seed = _task(shipped_config, f"task.features.1.prevalence={p}", "task.seed=1")
    assert not np.array_equal(other_seed["supervised_hard"].values, mask)
    weights = supervision_matrix(rare)
    assert weights.shape == (rare.sizes["stimulus"], 2)
    np.testing.assert_array_equal(weights[:, 0], 1.0)
    np.testing.assert_array_equal(weights[:, 1], mask.astype(np.float32))
    assert supervision_matrix(full) is None


@pytest.mark.parametrize("bad", ["0", "-0.5", "1.5", "nan"])
def test_prevalence_outside_0_1_is_refused(shipped_config, bad):
    with pytest.raises(ConfigError, match="prevalence"):
        load_config(shipped_config, [f"task.features.1.prevalence={bad}"])


def test_masked_loss_counts_only_supervising_examples_over_the_whole_batch():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 2)  # (member, batch, feature)
    y = torch.randint(0, 2, (2, 6, 2)).float()
    w = torch.ones(2, 6, 2)
    w[0, :4, 1] = 0  # member 0: feature 1 supervised by examples 4 and 5 only
    w[1, :, 1] = 0   # member 1: no example supervises feature 1 in this batch
    out = {"a": logits[..., 0], "b": logits[..., 1]}
    _, loss = feature_losses(out, y, ["a", "b"], w)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    # counted on the supervising examples, 0 on the others, averaged over the whole batch
    assert torch.allclose(loss[0, 1], bce(logits[0, 4:, 1], y[0, 4:, 1], reduction="sum") / 6)
    assert loss[1, 1] == 0
    assert torch.allclose(loss[:, 0], bce(logits[..., 0], y[..., 0], reduction="none").mean(1))
    # the targets of unsupervised examples do not matter
    flipped = y.clone()
    flipped[0, :4, 1] = 1 - flipped[0, :4, 1]
    assert torch.equal(feature_losses(out, flipped, ["a", "b"], w)[1][0], loss[0])
    # all-ones weights give the unweighted loss
    _, plain = feature_losses(out, y, ["a", "b"])
    torch.testing.assert_close(feature_losses(out, y, ["a", "b"], torch.ones_like(w))[1], plain)


def test_prevalence_trains_the_same_in_the_ensemble_and_alone(shipped_config):
    stimuli = _task(shipped_config, "task.features.1.prevalence=0.25")
    model = ModelConfig(depth=2, width=16)
    cfg = TrainingConfig(steps=40, eval_every=10, snapshot_steps=(0, 40), batch_size=32,
                         lr=3e-3, device="cpu")
    members = train_ensemble(stimuli, seed_members(model, cfg, [3, 5]), progress=False)
    for member in members:
        assert_same_result(member, train(stimuli, model, cfg, seed=member.seed,
                                         progress=False))
    # ... and the mask changed the training (not silently ignored)
    plain = train(_task(shipped_config), model, cfg, seed=3, progress=False)
    assert plain.history["test"]["loss"]["hard"] != members[0].history["test"]["loss"]["hard"]
    assert plain.history["test"]["loss"]["easy"] != members[0].history["test"]["loss"]["easy"]


def test_an_override_indexes_an_array_of_tables(shipped_config):
    cfg = load_config(shipped_config, ["task.features.1.prevalence=0.5", "task.features.0.k=1"])
    assert [f.prevalence for f in cfg.task.features] == [1.0, 0.5]
    for bad, message in [("task.features.2.k=3", "not an index of its list of 2 tables"),
                         ("task.features.x.k=3", "not an index"),
                         ("task.features.1=3", "give an index and a key")]:
        with pytest.raises(ConfigError, match=message):
            load_config(shipped_config, [bad])


def test_a_prevalence_sweep_has_a_typed_prevalence_dim(tmp_path, shipped_config):
    import contextlib
    import io

    import xarray as xr

    from rsa_bias.cli import _grid_points, _point_name
    from rsa_bias.experiments.sweep import run_sweep

    base = [*SMALL, "seeds=[0, 1]", "model.depth=2", "model.width=16", "training.steps=30",
            "training.eval_every=10", "training.snapshot_steps=[0, 30]",
            "training.batch_size=32", "training.device=cpu", "analysis.n_pcs=3"]
    points = [(_point_name(p), base + p, dict(o.split("=", 1) for o in p))
              for p in _grid_points(["task.features.1.prevalence=0.25,1.0"])]
    with contextlib.redirect_stdout(io.StringIO()):
        run_sweep(shipped_config, tmp_path, points, figures=False, progress=False)
    ds = xr.open_dataset(tmp_path / "sweep.nc")
    assert ds["task.features.1.prevalence"].values.tolist() == [0.25, 1.0]


def test_shipped_prevalence_config(shipped_config):
    cfg = load_config(shipped_config.parent / "prevalence.toml")
    common, rare = cfg.task.features
    assert (common.type, common.k) == (rare.type, rare.k)  # identical type: only p differs
    assert (common.prevalence, rare.prevalence) == (1.0, 0.25)
    assert len(cfg.seeds) >= 10
