"""Batched ensembles of CNNs (grouped convolutions, within float32 rounding), dropout and
resumable ensemble checkpoints; see test_ensemble.py for the MLP equivalence."""

from __future__ import annotations

import dataclasses
import shutil
import types

import pytest
import torch
from ensemble_helpers import (
    ATOL,
    CNN_STEPS,
    MLP,
    RTOL,
    SEEDS,
    SHORT,
    _cnn_configs,
    _gen,
    assert_close_result,
    assert_same_result,
    image_task,
)
from torch import nn

import rsa_bias.networks.stacked as stacked_mod
import rsa_bias.training.ensemble as ens_mod
from rsa_bias.networks import build_model
from rsa_bias.networks.stacked import StackedDropout, stack_models
from rsa_bias.training import (
    Member,
    seed_members,
    train,
    train_ensemble,
)
from rsa_bias.training.stacked_optim import StackedOptimizer


@pytest.fixture(scope="module")
def images():
    return image_task()


# --- 3. the CNN: grouped convolutions, within float32 rounding -------------------------------

# The grouped convolution sums in another order than the single one, so a CNN member differs
# from its sequential run by float32 rounding (eps 1.19e-7), which training amplifies step by
# step: measured after 20 steps, parameters and curves differ by <= ~1e-6 absolute, snapshots
# by <= ~7e-6 relative; over three sets of seeds no value used more than 0.3 of the tolerance
# |diff| <= ATOL + RTOL * |value| below. A member trained on another member's batches, or
# batch norm statistics shared over members, misses it by orders of magnitude (see
# test_cnn_tolerance_catches_wrong_implementations). Runs must stay short: without bitwise
# identity long runs diverge (training is chaotic).

# Batch norm is tested with SGD only: under batch norm a conv bias has no true gradient (the
# batch mean is subtracted), only rounding noise (~1e-8), which Adam normalises into lr-sized
# steps; the biases (and the eval outputs, through the running-mean lag) then differ by ~lr
# between any two orders of summation -- even between two sequential runs on 1 and 2 threads.
CNN_CASES = [("batch", "sgd", 0.05), ("group", "adam", 5e-3), ("group", "sgd", 0.05)]


@pytest.fixture(scope="module")
def cnn_sequential(images):
    """Sequential runs of every CNN case, trained once for the module."""
    return {case: [train(images, *_cnn_configs(*case), seed=s, progress=False) for s in SEEDS]
            for case in CNN_CASES}


@pytest.mark.parametrize("case", CNN_CASES, ids=["-".join(c[:2]) for c in CNN_CASES])
def test_cnn_ensemble_matches_sequential_within_rounding(images, cnn_sequential, case):
    model_cfg, cfg = _cnn_configs(*case)
    ens = train_ensemble(images, seed_members(model_cfg, cfg, SEEDS), progress=False)
    for a, b in zip(ens, cnn_sequential[case], strict=True):
        assert_close_result(a, b, rtol=RTOL, atol=ATOL)  # incl. BN running mean/var
    assert {k: v.shape for k, v in ens[0].snapshots[CNN_STEPS].items()} == {
        "conv_0": (54, 4), "conv_1": (54, 8), "pool": (54, 8), "fc_0": (54, 16)}
    if case[0] == "batch":  # each member its own statistics
        for name in ("conv.conv_0.norm.running_mean", "conv.conv_1.norm.running_var"):
            stats = [r.model.state_dict()[name] for r in ens]
            assert not any(torch.allclose(stats[i], stats[j], rtol=RTOL, atol=ATOL)
                           for i in range(len(SEEDS)) for j in range(i)), name
        for r in ens:
            assert int(r.model.state_dict()["conv.conv_0.norm.num_batches_tracked"]) == CNN_STEPS


class _RotatedBatches(types.SimpleNamespace):
    """``torch`` for ensemble.py with each member given the next member's minibatch (its one
    ``torch.stack`` stacks the members' batch indices)."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def stack(tensors, *args, **kwargs):
        tensors = list(tensors)
        return torch.stack(tensors[1:] + tensors[:1], *args, **kwargs)


class _SharedBatchNorm(types.SimpleNamespace):
    """``F`` for stacked.py with batch norm statistics pooled over the members (member 0's
    running buffers updated from them)."""

    def __getattr__(self, name):
        return getattr(nn.functional, name)

    @staticmethod
    def batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps):
        n, kc, h, w = x.shape
        k = len(SEEDS)
        c = kc // k
        pooled = x.reshape(n, k, c, h, w).transpose(0, 1).reshape(k * n, c, h, w)
        y = nn.functional.batch_norm(pooled, running_mean[:c], running_var[:c], None, None,
                                     training, momentum, eps)
        y = y.reshape(k, n, c, h, w).transpose(0, 1).reshape(n, kc, h, w)
        return y * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)


@pytest.mark.parametrize(("case", "module", "fake"), [
    (CNN_CASES[1], ens_mod, _RotatedBatches()),
    (CNN_CASES[0], stacked_mod, _SharedBatchNorm()),
], ids=["other-members-batches", "shared-batch-norm"])
def test_cnn_tolerance_catches_wrong_implementations(images, cnn_sequential, monkeypatch,
                                                     case, module, fake):
    """The tolerance above is tight enough: deliberately broken ensembles fail it (for every
    member)."""
    monkeypatch.setattr(module, "torch" if module is ens_mod else "F", fake)
    model_cfg, cfg = _cnn_configs(*case)
    bad = train_ensemble(images, seed_members(model_cfg, cfg, SEEDS), progress=False)
    for a, b in zip(bad, cnn_sequential[case], strict=True):
        with pytest.raises(AssertionError):
            assert_close_result(a, b, rtol=RTOL, atol=ATOL)


# --- 4. dropout ------------------------------------------------------------------------------


def test_dropout_rate_per_member_in_training_mode_only():
    p = [0.0, 0.25, 0.6]
    drop = StackedDropout(p, [_gen(s) for s in (0, 1, 2)])
    x = torch.ones(3, 400, 50)
    out = drop(x)
    for i, rate in enumerate(p):
        zeros = float((out[i] == 0).float().mean())
        assert zeros == pytest.approx(rate, abs=0.02), (i, zeros)
        kept = out[i][out[i] != 0]
        torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - rate)))
    drop.eval()
    assert torch.equal(drop(x), x)
    # stack_models reads each member's rate from its model
    models = []
    for s, rate in enumerate(p):
        torch.manual_seed(s)
        models.append(build_model((7,), {"a": 2}, dataclasses.replace(MLP, dropout=rate)))
    assert stack_models(models).layers["hidden_1"].dropout.p == p


def test_dropout_masks_follow_each_members_own_generator():
    x = torch.ones(3, 200, 30)
    masks = StackedDropout([0.5] * 3, [_gen(5), _gen(6), _gen(5)])(x)
    assert not torch.equal(masks[0], masks[1])  # other seed, other mask
    assert torch.equal(masks[0], masks[2])  # same seed, same mask stream
    alone = StackedDropout([0.5], [_gen(5)])(x[:1])  # not a function of the other members
    assert torch.equal(alone[0], masks[0])


def test_dropout_member_does_not_depend_on_its_ensemble(small_task):
    """Member seed 5 (dropout 0.3) trains to the same bits in ensembles [5, 6] and
    [7, 5, 8]; a dropout-free member beside it equals its own ``train`` run."""
    dropped = dataclasses.replace(MLP, dropout=0.3)
    no_drop = dataclasses.replace(MLP, dropout=0.0)
    a = train_ensemble(small_task, [Member(dropped, SHORT, 5), Member(no_drop, SHORT, 6)],
                       progress=False)
    b = train_ensemble(small_task, [Member(dataclasses.replace(MLP, dropout=0.1), SHORT, 7),
                                    Member(dropped, SHORT, 5),
                                    Member(dropped, dataclasses.replace(SHORT, lr=1e-2), 8)],
                       progress=False)
    assert_same_result(a[0], b[1])
    assert_same_result(a[1], train(small_task, no_drop, SHORT, seed=6, progress=False))
    # dropout was applied: without it member 5 trains otherwise
    plain = train_ensemble(small_task, [Member(no_drop, SHORT, 5)], progress=False)
    assert plain[0].history["val"]["loss"] != a[0].history["val"]["loss"]


# --- 5. resumable checkpoints ----------------------------------------------------------------


RESUME_CFG = dataclasses.replace(SHORT, checkpoint_every=10, snapshot_steps=(0, 15, 30))


def _resume_members(kind: str) -> list[Member]:
    if kind == "adam":  # dropout generators and three optimiser runs [a, b, a] to restore
        m = dataclasses.replace(MLP, dropout=0.2)
        return [Member(m, RESUME_CFG, 4),
                Member(m, dataclasses.replace(RESUME_CFG, lr=1e-2), 0),
                Member(m, RESUME_CFG, 7)]
    t = dataclasses.replace(RESUME_CFG, optimizer="sgd", lr=0.05, momentum=0.9)
    return seed_members(MLP, t, SEEDS)  # momentum buffers to restore


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_resume_from_mid_run_checkpoint_is_identical(small_task, tmp_path, monkeypatch, kind):
    members = _resume_members(kind)
    real_save = ens_mod.save_checkpoint

    def save_and_copy(state, path):
        real_save(state, path)
        if state["step"] == 20:
            shutil.copy(path, tmp_path / "mid.pt")

    monkeypatch.setattr(ens_mod, "save_checkpoint", save_and_copy)
    full = train_ensemble(small_task, members, checkpoint=tmp_path / "full.pt",
                          config_json="cfg", progress=False)
    assert (tmp_path / "mid.pt").exists()
    shutil.copy(tmp_path / "mid.pt", tmp_path / "resume.pt")

    steps = []
    real_step = StackedOptimizer.step

    def counting_step(self):
        steps.append(1)
        real_step(self)

    monkeypatch.setattr(StackedOptimizer, "step", counting_step)
    resumed = train_ensemble(small_task, members, checkpoint=tmp_path / "resume.pt",
                             config_json="cfg", progress=False)
    assert len(steps) == RESUME_CFG.steps - 20  # it resumed at step 20
    for a, b in zip(full, resumed, strict=True):
        assert_same_result(a, b)
    # a finished checkpoint gives the finished run back without training
    again = train_ensemble(small_task, members, checkpoint=tmp_path / "full.pt",
                           config_json="cfg", progress=False)
    assert len(steps) == RESUME_CFG.steps - 20
    for a, b in zip(full, again, strict=True):
        assert_same_result(a, b)


def test_checkpoint_of_another_ensemble_is_refused(small_task, tmp_path):
    cfg = dataclasses.replace(SHORT, steps=5, snapshot_steps=(0,), checkpoint_every=5)
    path = tmp_path / "ens.pt"
    train_ensemble(small_task, seed_members(MLP, cfg, [0, 1]), checkpoint=path,
                   config_json="cfg", progress=False)
    for seeds in ([0, 2], [1, 0], [0, 1, 2]):
        with pytest.raises(ValueError, match=r"seeds \[0, 1\]"):
            train_ensemble(small_task, seed_members(MLP, cfg, seeds), checkpoint=path,
                           config_json="cfg", progress=False)
    with pytest.raises(ValueError, match="different config"):
        train_ensemble(small_task, seed_members(MLP, cfg, [0, 1]), checkpoint=path,
                       config_json="other", progress=False)
    other_lr = [Member(MLP, cfg, 0), Member(MLP, dataclasses.replace(cfg, lr=0.1), 1)]
    with pytest.raises(ValueError, match="members with other settings"):
        train_ensemble(small_task, other_lr, checkpoint=path, config_json="cfg",
                       progress=False)
    # the same grouping of settings, other values: refused too, not resumed silently
    both = dataclasses.replace(cfg, lr=0.1)
    with pytest.raises(ValueError, match="members with other settings"):
        train_ensemble(small_task, seed_members(MLP, both, [0, 1]), checkpoint=path,
                       config_json="cfg", progress=False)
    single = tmp_path / "single.pt"  # a sequential run's checkpoint
    train(small_task, MLP, cfg, seed=0, checkpoint=single, config_json="cfg", progress=False)
    with pytest.raises(ValueError, match="seeds None"):
        train_ensemble(small_task, seed_members(MLP, cfg, [0]), checkpoint=single,
                       config_json="cfg", progress=False)

