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

import numpy as np
import pandas as pd
import pytest
import torch
from ensemble_helpers import (
    MLP,
    SEEDS,
    SHORT,
    _cnn_configs,
    _gen,
    _r2_by_layer,
    assert_close_result,
    assert_same_result,
    image_task,
)
from torch import nn

from rsa_bias.config import (
    ModelConfig,
    TrainingConfig,
    load_config,
)
from rsa_bias.experiments.complexity_bias import run_complexity_bias, summary_table
from rsa_bias.networks import build_model
from rsa_bias.networks.stacked import stack_models
from rsa_bias.store import layer_activation, read_activations
from rsa_bias.tasks import make_task
from rsa_bias.tasks.images import n_classes
from rsa_bias.training import (
    VALUE_FIELDS,
    Member,
    ensemble_key,
    seed_members,
    train,
    train_ensemble,
)
from rsa_bias.training.stacked_optim import StackedOptimizer

# The shipped complexity-bias experiment, shortened: 300 steps, width 64, three snapshots.
COMPLEXITY_OVERRIDES = ["training.steps=300", "model.width=64", "training.eval_every=50",
                        "training.snapshot_steps=[0, 100, 300]", "training.device=cpu",
                        f"seeds={SEEDS}"]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def complexity_cfg(shipped_config):
    return load_config(shipped_config, COMPLEXITY_OVERRIDES)


@pytest.fixture(scope="module")
def complexity_task(complexity_cfg):
    return make_task(complexity_cfg.task)


@pytest.fixture(scope="module")
def images():
    return image_task()




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


def test_fused_adam_on_both_paths_agrees_to_rounding_and_is_refused_for_sgd(small_task):
    """``training.fused``: Adam's fused kernel in the sequential loop and in the ensemble;
    its blocks fall differently on a stacked parameter, so the two agree to float32 rounding
    over a short run (not to the bit), and both differ from the default kernel's run."""
    from rsa_bias.config import ConfigError

    fused = dataclasses.replace(SHORT, fused=True)
    members = train_ensemble(small_task, seed_members(MLP, fused, SEEDS), progress=False)
    for member, seed in zip(members, SEEDS, strict=True):
        alone = train(small_task, MLP, fused, seed=seed, progress=False)
        assert_close_result(member, alone, rtol=1e-4, atol=1e-6)
    default = train(small_task, MLP, SHORT, seed=SEEDS[0], progress=False)
    a, b = default.model.state_dict(), members[0].model.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)  # the fused kernel really ran
    with pytest.raises(ConfigError, match="training.fused"):
        dataclasses.replace(SHORT, optimizer="sgd", fused=True).validate()
