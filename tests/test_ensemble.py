"""Batched ensembles (``train_ensemble``): what each member would get from ``train`` alone.

On the CPU the MLP ensemble reproduces sequential :func:`rsa_bias.training.train` bit for
bit (batched products of these shapes run the same BLAS kernel as single ones, a one-logit
head is computed as ``nn.Linear``'s BLAS call computes it, and the optimiser runs torch's
default single-tensor Adam/SGD on each member's slice), so those tests compare exactly. The
CNN's grouped convolution sums in another order, so its tests compare within a stated
tolerance over a few steps. Dropout masks come from a generator per member (seeded with the
member's seed), not from torch's global generator as in ``train``, so with dropout > 0 a
member is compared with itself in other ensembles, not with ``train``.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import types

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import rsa_bias.networks.stacked as stacked_mod
import rsa_bias.training.ensemble as ens_mod
from rsa_bias.analysis import feature_variance_explained
from rsa_bias.config import (
    CNNConfig,
    ImageTaskConfig,
    ModelConfig,
    TaskConfig,
    TrainingConfig,
    load_config,
)
from rsa_bias.experiments.complexity_bias import run_complexity_bias, summary_table
from rsa_bias.networks import build_model
from rsa_bias.networks.stacked import StackedDropout, stack_models
from rsa_bias.store import activation_tree, layer_activation, read_activations
from rsa_bias.tasks import make_image_task, make_task
from rsa_bias.tasks.images import n_classes
from rsa_bias.training import (
    VALUE_FIELDS,
    Member,
    TrainResult,
    ensemble_key,
    seed_members,
    train,
    train_ensemble,
)
from rsa_bias.training.stacked_optim import StackedOptimizer

SEEDS = [4, 0, 7]  # not 0, 1, 2: a seed mixed up with a member's index shows

# The shipped complexity-bias experiment, shortened: 300 steps, width 64, three snapshots.
COMPLEXITY_OVERRIDES = ["training.steps=300", "model.width=64", "training.eval_every=50",
                        "training.snapshot_steps=[0, 100, 300]", "training.device=cpu",
                        f"seeds={SEEDS}"]


# --- helpers ---------------------------------------------------------------------------------


def assert_same_result(a: TrainResult, b: TrainResult) -> None:
    """Bit-identical: curves, snapshots and final parameters and buffers."""
    assert a.seed == b.seed
    assert type(a.model) is type(b.model)
    assert a.eval_steps == b.eval_steps
    assert a.history == b.history
    assert a.snapshots.keys() == b.snapshots.keys()
    for step, layers in a.snapshots.items():
        assert layers.keys() == b.snapshots[step].keys()
        for name, arr in layers.items():
            assert np.array_equal(arr, b.snapshots[step][name]), f"snapshot {step} {name}"
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def assert_close_result(a: TrainResult, b: TrainResult, *, rtol: float, atol: float) -> None:
    """Equal up to ``rtol``/``atol``: curves, snapshots, parameters and BN running stats
    (integer buffers such as ``num_batches_tracked`` exactly)."""
    assert a.seed == b.seed and a.eval_steps == b.eval_steps
    for split, metrics in b.history.items():
        for metric, features in metrics.items():
            for name, values in features.items():
                np.testing.assert_allclose(a.history[split][metric][name], values, rtol=rtol,
                                           atol=atol, err_msg=f"{split} {metric} {name}")
    assert a.snapshots.keys() == b.snapshots.keys()
    for step, layers in b.snapshots.items():
        for name, arr in layers.items():
            np.testing.assert_allclose(a.snapshots[step][name], arr, rtol=rtol, atol=atol,
                                       err_msg=f"snapshot {step} {name}")
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k, v in sb.items():
        if v.dtype.is_floating_point:
            np.testing.assert_allclose(sa[k].numpy(), v.numpy(), rtol=rtol, atol=atol,
                                       err_msg=k)
        else:
            assert torch.equal(sa[k], v), k


def _r2_by_layer(results: list[TrainResult], stimuli, mask) -> dict[str, np.ndarray]:
    """The R² (layer -> (seed, step, feature)) of the results' snapshots, as the experiment
    computes it (activation tree -> layer_activation -> feature_variance_explained)."""
    steps = sorted(results[0].snapshots)
    layers = results[0].model.layer_names
    arrays = {name: np.stack([np.stack([r.snapshots[s][name] for s in steps])
                              for r in results]) for name in layers}
    tree = activation_tree(stimuli.isel(stimulus=mask), arrays,
                           seeds=[r.seed for r in results], steps=steps)
    return {name: feature_variance_explained(layer_activation(tree, name)).r2.values
            for name in layers}


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def complexity_cfg(shipped_config):
    return load_config(shipped_config, COMPLEXITY_OVERRIDES)


@pytest.fixture(scope="module")
def complexity_task(complexity_cfg):
    return make_task(complexity_cfg.task)


@pytest.fixture(scope="module")
def images():
    """162 12-pixel images of 3 colours x 3 shapes x 3 textures (108 train)."""
    return make_image_task(TaskConfig(kind="images", n_train=108, val_size=27, test_size=27,
                                      images=ImageTaskConfig(size=12, jitter=1)))


MLP = ModelConfig(depth=2, width=16)
SHORT = TrainingConfig(steps=40, eval_every=10, snapshot_steps=(0, 15), batch_size=32, lr=3e-3,
                       device="cpu")


# --- 1. equivalence with sequential training (the MLP: bit for bit) --------------------------


def test_complexity_bias_ensemble_equals_sequential(complexity_cfg, tmp_path):
    """The acceptance test: the shipped experiment (shortened) gives the same results,
    activations and R² table trained as one ensemble as one seed after another."""
    ens = run_complexity_bias(complexity_cfg, tmp_path / "ens", progress=False,
                              keep_checkpoints=True)
    seq = run_complexity_bias(complexity_cfg, tmp_path / "seq", progress=False,
                              keep_checkpoints=True, sequential=True)
    # the two code paths really ran: one ensemble checkpoint vs one per seed
    assert sorted(p.name for p in (tmp_path / "ens" / "checkpoints").iterdir()) == [
        "ensemble.pt"]
    assert sorted(p.name for p in (tmp_path / "seq" / "checkpoints").iterdir()) == sorted(
        f"seed_{s}.pt" for s in SEEDS)

    pd.testing.assert_frame_equal(summary_table(ens).round(3), summary_table(seq).round(3))
    assert np.array_equal(ens.r2.values, seq.r2.values, equal_nan=True)
    assert set(ens.data_vars) == set(seq.data_vars)
    for name in ens.data_vars:
        assert np.array_equal(ens[name].values, seq[name].values, equal_nan=True), name
    assert ens.accuracy.sel(split="test", feature="easy").isel(eval_step=-1).min() == 1.0
    ta, tb = read_activations(tmp_path / "ens" / "activations.nc"), read_activations(
        tmp_path / "seq" / "activations.nc")
    assert list(ta.children) == list(tb.children) == ["hidden_0", "hidden_1"]
    for layer in ta.children:
        assert np.array_equal(layer_activation(ta, layer).values,
                              layer_activation(tb, layer).values), layer


@pytest.mark.parametrize("training", [
    {"optimizer": "adam", "weight_decay": 1e-3},
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
], ids=["adam", "sgd"])
def test_mlp_ensemble_is_bit_identical_to_sequential(complexity_cfg, complexity_task, training):
    """Per member: loss and accuracy curves, snapshots, final state_dict and the R² of the
    snapshots equal those of its own ``train`` run exactly."""
    model_cfg = complexity_cfg.model
    cfg = dataclasses.replace(complexity_cfg.training, checkpoint_every=0, **training)
    ens = train_ensemble(complexity_task, seed_members(model_cfg, cfg, SEEDS), progress=False)
    seq = [train(complexity_task, model_cfg, cfg, seed=s, progress=False) for s in SEEDS]
    assert [r.seed for r in ens] == SEEDS
    for a, b in zip(ens, seq, strict=True):
        assert_same_result(a, b)
    assert ens[0].history["val"]["loss"]["easy"][-1] < ens[0].history["val"]["loss"]["easy"][0]
    mask = np.isin(complexity_task.split.values, ("val", "test"))
    r2_ens, r2_seq = (_r2_by_layer(r, complexity_task, mask) for r in (ens, seq))
    for layer in r2_seq:
        assert np.array_equal(r2_ens[layer], r2_seq[layer], equal_nan=True), layer


# --- 2. members with different values --------------------------------------------------------


def _value_members(kind: str) -> list[Member]:
    """Five members differing in VALUE_FIELDS, with settings [a, a, b, c, a] (non-contiguous)."""
    if kind == "adam":
        t = SHORT
        return [Member(MLP, t, 5),
                Member(dataclasses.replace(MLP, init_scale=0.3), t, 0),
                Member(dataclasses.replace(MLP, init="kaiming_normal"),
                       dataclasses.replace(t, lr=1e-2), 3),
                Member(MLP, dataclasses.replace(t, weight_decay=1e-2), 1),
                Member(dataclasses.replace(MLP, init="xavier_uniform", init_scale=2.0), t, 6)]
    t = dataclasses.replace(SHORT, optimizer="sgd", lr=0.05, momentum=0.9)
    return [Member(MLP, t, 5),
            Member(dataclasses.replace(MLP, init_scale=0.3), t, 0),
            Member(MLP, dataclasses.replace(t, momentum=0.5, lr=0.1), 3),
            Member(MLP, dataclasses.replace(t, weight_decay=1e-2), 1),
            Member(dataclasses.replace(MLP, init="orthogonal"), t, 6)]


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_members_with_different_values_each_equal_their_own_run(small_task, kind):
    members = _value_members(kind)
    # the optimiser groups consecutive equal settings only: [a, a] b c [a]
    opt = StackedOptimizer([nn.Parameter(torch.zeros(len(members), 2))],
                           [m.training for m in members])
    assert [(a, b) for a, b, _ in opt.runs] == [(0, 2), (2, 3), (3, 4), (4, 5)]
    results = train_ensemble(small_task, members, progress=False)
    for m, r in zip(members, results, strict=True):
        assert_same_result(r, train(small_task, m.model, m.training, seed=m.seed,
                                    progress=False))


def test_ensemble_key_and_value_fields():
    for section, cls in (("model", ModelConfig), ("training", TrainingConfig)):
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(VALUE_FIELDS[section]) <= names, section
    key = ensemble_key(MLP, SHORT)
    assert ensemble_key(dataclasses.replace(MLP, dropout=0.2, init_scale=0.1, init="orthogonal"),
                        dataclasses.replace(SHORT, lr=1.0, weight_decay=0.1, momentum=0.1)
                        ) == key
    assert ensemble_key(dataclasses.replace(MLP, width=17), SHORT) != key
    assert ensemble_key(MLP, dataclasses.replace(SHORT, batch_size=8)) != key
    assert [(m.seed, m.model, m.training) for m in seed_members(MLP, SHORT, [4, 2])] == [
        (4, MLP, SHORT), (2, MLP, SHORT)]


# --- 3. the CNN: grouped convolutions, within float32 rounding -------------------------------

# The grouped convolution sums in another order than the single one, so a CNN member differs
# from its sequential run by float32 rounding (eps 1.19e-7), which training amplifies step by
# step: measured after 20 steps, parameters and curves differ by <= ~1e-6 absolute, snapshots
# by <= ~7e-6 relative; over three sets of seeds no value used more than 0.3 of the tolerance
# |diff| <= ATOL + RTOL * |value| below. A member trained on another member's batches, or
# batch norm statistics shared over members, misses it by orders of magnitude (see
# test_cnn_tolerance_catches_wrong_implementations). Runs must stay short: without bitwise
# identity long runs diverge (training is chaotic).
CNN_STEPS, RTOL, ATOL = 20, 5e-5, 5e-6

# Batch norm is tested with SGD only: under batch norm a conv bias has no true gradient (the
# batch mean is subtracted), only rounding noise (~1e-8), which Adam normalises into lr-sized
# steps; the biases (and the eval outputs, through the running-mean lag) then differ by ~lr
# between any two orders of summation -- even between two sequential runs on 1 and 2 threads.
CNN_CASES = [("batch", "sgd", 0.05), ("group", "adam", 5e-3), ("group", "sgd", 0.05)]


def _cnn_configs(norm: str, optimizer: str, lr: float) -> tuple[ModelConfig, TrainingConfig]:
    model = ModelConfig(arch="cnn", cnn=CNNConfig(channels=(4, 8), fc_widths=(16,), norm=norm,
                                                  groups=2))
    cfg = TrainingConfig(steps=CNN_STEPS, eval_every=5, snapshot_steps=(0, 10), batch_size=16,
                         optimizer=optimizer, lr=lr, momentum=0.9, device="cpu")
    return model, cfg


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


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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


# --- 6. what cannot be an ensemble -----------------------------------------------------------


@pytest.mark.parametrize(("field", "model", "training"), [
    ("model.width", {"width": 32}, {}),
    ("model.depth", {"depth": 3}, {}),
    ("model.activation", {"activation": "tanh"}, {}),
    ("training.batch_size", {}, {"batch_size": 16}),
    ("training.steps", {}, {"steps": 41}),
    ("training.optimizer", {}, {"optimizer": "sgd"}),
])
def test_members_differing_in_a_shared_field_are_refused(small_task, field, model, training):
    other = Member(dataclasses.replace(MLP, **model), dataclasses.replace(SHORT, **training), 1)
    with pytest.raises(ValueError, match=re.escape(f"member 1 differs from member 0 in "
                                                   f"['{field}']")):
        train_ensemble(small_task, [Member(MLP, SHORT, 0), other], progress=False)


def test_no_members_and_unstackable_models_are_refused(small_task):
    with pytest.raises(ValueError, match="at least one member"):
        train_ensemble(small_task, [], progress=False)
    with pytest.raises(ValueError, match="at least one model"):
        stack_models([])
    torch.manual_seed(0)
    narrow = build_model((7,), {"a": 2}, MLP)
    wide = build_model((7,), {"a": 2}, dataclasses.replace(MLP, width=32))
    deeper = build_model((7,), {"a": 2}, dataclasses.replace(MLP, depth=3))
    other_input = build_model((8,), {"a": 2}, MLP)
    cnn = build_model((3, 12, 12), {"a": 2}, _cnn_configs("none", "adam", 1e-3)[0])
    for models, odd in (([narrow, wide], "[1]"), ([narrow, narrow, deeper], "[2]"),
                        ([other_input, narrow], "[1]"), ([narrow, cnn], "[1]")):
        with pytest.raises(ValueError, match=re.escape(f"models {odd} differ")):
            stack_models(models)
    with pytest.raises(ValueError, match="no batched"):
        stack_models([nn.Linear(3, 1)])


# --- 7. members back as ordinary networks ----------------------------------------------------


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_member_state_dict_loads_strictly_and_gives_the_members_outputs(images, arch):
    if arch == "mlp":
        model_cfg, shape, heads = MLP, (20,), {"a": 2, "b": 2}
        x = torch.randn(6, 20, generator=_gen(0))
    else:
        model_cfg = _cnn_configs("batch", "sgd", 0.1)[0]
        shape, heads = images.inputs.shape[1:], n_classes(images)
        x = torch.as_tensor(images.inputs.values[:6])
    models = []
    for s in SEEDS:
        torch.manual_seed(s)
        models.append(build_model(shape, heads, model_cfg))
    net = stack_models(models)
    with torch.no_grad():  # move the members away from the models they were stacked from
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=_gen(1)))
    net.train()
    net(x.expand(len(SEEDS), *x.shape))  # batch norm: update every member's running stats
    net.eval()
    shared = net(x, shared=True)
    own = net(x.expand(len(SEEDS), *x.shape))
    for i in range(len(SEEDS)):
        torch.manual_seed(100)
        fresh = build_model(shape, heads, model_cfg)
        state = net.member_state_dict(i)
        fresh.load_state_dict(state, strict=True)
        fresh.eval()
        with torch.no_grad():
            out = fresh(x)
        for h in heads:
            torch.testing.assert_close(out[h], shared[h][i].detach())
            torch.testing.assert_close(out[h], own[h][i].detach())
        first = next(iter(heads))
        if i:
            assert not torch.allclose(out[first], shared[first][0])
        next(iter(state.values())).add_(1.0)  # a copy: the ensemble is untouched
        torch.testing.assert_close(net(x, shared=True)[first], shared[first])
