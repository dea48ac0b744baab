"""Learning order (issue 11): a feature's loss counts from its ``start_step`` on, so the
others are trained alone first; the same in the sequential loop and the ensemble."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from ensemble_helpers import assert_same_result

from rsa_bias.config import ConfigError, ModelConfig, TrainingConfig, load_config
from rsa_bias.tasks import make_task
from rsa_bias.tasks.binary import start_steps
from rsa_bias.training import seed_members, train, train_ensemble

SMALL = ["task.n_distractor=3", "task.val_size=64", "task.test_size=64"]
MODEL = ModelConfig(depth=2, width=16)
CFG = TrainingConfig(steps=60, eval_every=10, snapshot_steps=(0, 30, 60), batch_size=32,
                     lr=3e-3, device="cpu")


def _task(shipped_config, *overrides):
    return make_task(load_config(shipped_config, [*SMALL, *overrides]).task)


def test_a_late_feature_is_not_trained_before_its_start_step(shipped_config):
    stimuli = _task(shipped_config, "task.features.1.start_step=30")
    np.testing.assert_array_equal(start_steps(stimuli), [0, 30])
    assert start_steps(_task(shipped_config)) is None
    torch.manual_seed(7)
    from rsa_bias.networks import build_model
    from rsa_bias.tasks.images import n_classes

    init = build_model(stimuli.inputs.shape[1:], n_classes(stimuli), MODEL).state_dict()
    before = train(stimuli, MODEL, dataclasses.replace(CFG, steps=30, snapshot_steps=(0, 30)),
                   seed=7, progress=False)
    head = before.model.state_dict()
    # 30 steps with only the easy feature's loss: the hard head has had no gradient at all
    for key in ("heads.hard.weight", "heads.hard.bias"):
        assert torch.equal(head[key], init[key]), key
    assert not torch.equal(head["heads.easy.weight"], init["heads.easy.weight"])
    after = train(stimuli, MODEL, CFG, seed=7, progress=False)
    assert not torch.equal(after.model.state_dict()["heads.hard.weight"],
                           init["heads.hard.weight"])
    # (its test loss does move before: the shared hidden layers change under the easy loss)


def test_a_curriculum_trains_the_same_in_the_ensemble_and_alone(shipped_config):
    stimuli = _task(shipped_config, "task.features.0.start_step=20",
                    "task.features.1.prevalence=0.5")
    members = train_ensemble(stimuli, seed_members(MODEL, CFG, [2, 9]), progress=False)
    for member in members:
        assert_same_result(member, train(stimuli, MODEL, CFG, seed=member.seed,
                                         progress=False))
    plain = train(_task(shipped_config, "task.features.1.prevalence=0.5"), MODEL, CFG, seed=2,
                  progress=False)
    assert plain.history["test"]["loss"]["easy"] != members[0].history["test"]["loss"]["easy"]


@pytest.mark.parametrize(("override", "message"), [
    ("task.features.1.start_step=-1", "must be >= 0"),
    ("task.features.1.start_step=5000", "must be below training.steps=5000"),
])
def test_impossible_start_steps_are_refused(shipped_config, override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(shipped_config, [override])
