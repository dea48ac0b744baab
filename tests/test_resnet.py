"""ResNet: named layers on any input size, residual wiring, normalisation, initialisation
families, the batched ensemble (forward within float32 rounding, ensemble training against
sequential runs) and training on the image task."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch
from ensemble_helpers import ATOL, RTOL, SEEDS, assert_close_result, image_task
from torch import nn

import rsa_bias.training.ensemble as ens_mod
from rsa_bias.config import ImageTaskConfig, ModelConfig, ResNetConfig, TaskConfig, TrainingConfig
from rsa_bias.networks import build_model
from rsa_bias.networks.resnet import ConvNorm, ResidualBlock, ResNet, build_resnet
from rsa_bias.networks.stacked import has_stacked, stack_models
from rsa_bias.networks.stacked_resnet import StackedResNet
from rsa_bias.tasks import make_image_task
from rsa_bias.training import seed_members, train, train_ensemble
from rsa_bias.training.activations import capture, recording

HEADS = {"colour": 3, "shape": 3, "texture": 2}


def _cfg(**resnet) -> ModelConfig:
    init = resnet.pop("init", "default")
    scale = resnet.pop("init_scale", 1.0)
    return ModelConfig(arch="resnet", init=init, init_scale=scale,
                       resnet=ResNetConfig(**{"channels": (4, 8), "blocks": 1, **resnet}))


# --- architecture ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [12, 16, 31, 32])
def test_runs_on_any_input_size(size):
    torch.manual_seed(0)
    model = ResNet(3, HEADS, channels=(4, 8, 8), blocks=2, fc_widths=(6,))
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "colour": (2, 3), "shape": (2, 3), "texture": (2,)}
    acts = capture(model, x, model.layer_names)
    half, quarter = math.ceil(size / 2), math.ceil(math.ceil(size / 2) / 2)
    assert acts["stem"].shape == (2, 4, size, size)  # the stem keeps the side
    assert acts["stage_0"].shape == (2, 4, size, size)  # the first stage does too
    assert acts["stage_1"].shape == (2, 8, half, half)  # every later one halves it
    assert acts["stage_2"].shape == (2, 8, quarter, quarter)
    assert acts["pool"].shape == (2, 8) and acts["fc_0"].shape == (2, 6)
    np.testing.assert_allclose(acts["pool"], acts["stage_2"].mean(axis=(2, 3)), rtol=1e-5,
                               atol=1e-6)


def test_layer_names_and_unknown_layer():
    model = ResNet(3, ["a"], channels=(4, 4), blocks=3, fc_widths=(5, 5))
    assert model.layer_names == ["stem", "stage_0", "stage_1", "pool", "fc_0", "fc_1"]
    assert model.layer("stem") is model.stem and model.layer("pool") is model.pool
    assert model.layer("stage_1") is model.stages["stage_1"]
    assert model.layer("fc_1") is model.fc["fc_1"]
    with pytest.raises(KeyError, match="stage_9") as info:
        model.layer("stage_9")
    assert "fc_1" in str(info.value)
    with pytest.raises(ValueError, match="images"):
        model(torch.zeros(2, 12))
    # a stage's representation is its last block's output
    model.eval()
    x = torch.randn(3, 3, 10, 10)
    acts = capture(model, x, ["stage_0", "stage_1"])
    with torch.no_grad():
        h = model.stages["stage_0"](model.stem(x))
        last = model.stages["stage_1"][-1](model.stages["stage_1"][:-1](h))
    np.testing.assert_allclose(acts["stage_0"], h.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(acts["stage_1"], last.numpy(), rtol=1e-6, atol=1e-6)


def test_blocks_strides_and_shortcuts():
    model = ResNet(3, ["a"], channels=(4, 8, 8), blocks=2)
    stages = list(model.stages.values())
    assert [len(s) for s in stages] == [2, 2, 2]
    strides = [[b.conv1.conv.stride[0] for b in s] for s in stages]
    assert strides == [[1, 1], [2, 1], [2, 1]]  # the first block of every later stage
    projections = [[isinstance(b.shortcut, ConvNorm) for b in s] for s in stages]
    assert projections == [[False, False], [True, False], [True, False]]  # shape changes
    proj = stages[1][0].shortcut
    assert proj.conv.kernel_size == (1, 1) and proj.conv.stride == (2, 2)
    assert isinstance(proj.act, nn.Identity) and isinstance(stages[1][0].conv2.act, nn.Identity)
    # stage 2 keeps 8 channels but halves the side: a projection all the same
    assert stages[2][0].shortcut.conv.stride == (2, 2)
    with pytest.raises(ValueError, match="at least one stage"):
        ResNet(3, ["a"], channels=(), blocks=1)


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_residual_wiring(norm):
    torch.manual_seed(0)
    same = ResidualBlock(8, 8, kernel_size=3, stride=1, norm=norm, groups=2, act="relu")
    down = ResidualBlock(4, 8, kernel_size=3, stride=2, norm=norm, groups=2, act="relu")
    x = torch.randn(5, 8, 9, 9)
    with torch.no_grad():  # act(conv2(conv1(x)) + x), written out
        torch.testing.assert_close(same(x), torch.relu(same.conv2(same.conv1(x)) + x))
        y = down(x[:, :4])
        assert y.shape == (5, 8, 5, 5)  # the side halved (rounding up)
        torch.testing.assert_close(y, torch.relu(down.conv2(down.conv1(x[:, :4])) +
                                                 down.shortcut(x[:, :4])))
    if norm == "none":  # no norm weight to zero; convs carry the bias instead
        assert same.conv1.conv.bias is not None
        return
    assert same.conv1.conv.bias is None and down.shortcut.conv.bias is None
    with torch.no_grad():  # the residual branch off: the block is act(shortcut(x))
        same.conv2.norm.weight.zero_()
        down.conv2.norm.weight.zero_()
        torch.testing.assert_close(same(x), torch.relu(x), rtol=0, atol=0)
        torch.testing.assert_close(down(x[:, :4]), torch.relu(down.shortcut(x[:, :4])),
                                   rtol=0, atol=0)


@pytest.mark.parametrize(("norm", "kind"), [("none", nn.Identity), ("batch", nn.BatchNorm2d),
                                            ("group", nn.GroupNorm)])
def test_normalisation_and_activation_follow_config(norm, kind):
    cfg = ModelConfig(arch="resnet", activation="tanh",
                      resnet=ResNetConfig(channels=(8, 8), blocks=2, norm=norm, groups=2))
    model = build_model((3, 16, 16), HEADS, cfg)
    assert isinstance(model, ResNet)
    units = [m for m in model.modules() if isinstance(m, ConvNorm)]
    assert len(units) == 1 + 2 * 4 + 1  # stem, two convs per block, one projection
    for unit in units:
        assert isinstance(unit.norm, kind)
        if norm == "group":
            assert unit.norm.num_groups == 2
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert all(isinstance(b.act, nn.Tanh) and isinstance(b.conv1.act, nn.Tanh) for b in blocks)
    assert isinstance(model.stem.act, nn.Tanh)


# --- initialisation --------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "expected_std"), [
    ("kaiming_normal", lambda fi, fo, s: s * math.sqrt(2 / fi)),
    ("xavier_uniform", lambda fi, fo, s: s * math.sqrt(2 / (fi + fo))),
    ("scaled_normal", lambda fi, fo, s: s / math.sqrt(fi)),
])
def test_build_resnet_applies_the_family_to_every_layer(family, expected_std):
    torch.manual_seed(0)
    model = build_resnet(3, HEADS, _cfg(channels=(32, 64), norm="batch", init=family,
                                        init_scale=1.5))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6
    for m in convs:
        fi = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        fo = m.weight.shape[0] * m.weight.shape[2] * m.weight.shape[3]
        std = expected_std(fi, fo, 1.5)
        assert float(m.weight.detach().std()) == pytest.approx(std, rel=0.15), (m, family)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            assert torch.count_nonzero(m.bias) == 0
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_orthogonal_family_and_seeding():
    torch.manual_seed(3)
    model = build_resnet(3, HEADS, _cfg(init="orthogonal", init_scale=2.0))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.detach().double().reshape(m.weight.shape[0], -1)
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(gram, 4.0 * torch.eye(len(gram), dtype=gram.dtype),
                                       atol=1e-5, rtol=0)
    torch.manual_seed(3)
    again = build_resnet(3, HEADS, _cfg(init="orthogonal", init_scale=2.0))
    torch.manual_seed(4)
    other = build_resnet(3, HEADS, _cfg(init="orthogonal", init_scale=2.0))
    for (k, v), w, u in zip(model.state_dict().items(), again.state_dict().values(),
                            other.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
        if k.endswith("conv.weight"):
            assert not torch.equal(v, u), k


def test_default_family_keeps_or_scales_pytorch_init():
    torch.manual_seed(0)
    base = build_resnet(3, HEADS, _cfg(norm="none"))
    torch.manual_seed(0)
    plain = ResNet(3, HEADS, channels=(4, 8), blocks=1, norm="none")
    torch.manual_seed(0)
    scaled = build_resnet(3, HEADS, _cfg(norm="none", init_scale=0.5))
    for k, v in base.state_dict().items():
        assert torch.equal(v, plain.state_dict()[k]), k  # scale 1: PyTorch's own
        assert torch.equal(scaled.state_dict()[k], v * 0.5), k


# --- the batched ensemble --------------------------------------------------------------------


def _members(norm: str, n: int = 3, **kw) -> list[ResNet]:
    out = []
    for s in range(n):
        torch.manual_seed(s)
        out.append(build_resnet(3, HEADS, _cfg(norm=norm, groups=2, blocks=2, fc_widths=(6,),
                                               init="kaiming_normal", **kw)))
    return out


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
@pytest.mark.parametrize("training", [True, False])
def test_stacked_forward_matches_each_member(norm, training):
    members = _members(norm)
    for m in members:
        with torch.no_grad():  # members differ in their norms too (not only at 1 and 0)
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))
    net = stack_models(members)
    assert isinstance(net, StackedResNet) and has_stacked(members[0])
    assert net.layer_names == members[0].layer_names
    net.train(training)
    x = torch.randn(3, 5, 3, 11, 11)  # each member its own minibatch
    for inputs, shared in ((x, False), (x[0], True)):
        out, seen = net.forward_layers(inputs, shared=shared)
        for i, m in enumerate(members):
            m.train(training)
            mine = inputs if shared else inputs[i]
            layers = {name: m.layer(name) for name in m.layer_names}
            with torch.no_grad(), recording(m, layers) as acts:
                ref = m(mine)  # once per input, as the stack: the same BN statistic updates
            for h, logits in ref.items():
                torch.testing.assert_close(out[h][i], logits, rtol=1e-5, atol=1e-5)
            for name, (arr,) in acts.items():
                np.testing.assert_allclose(seen[name][i].detach().numpy(), arr.numpy(),
                                           rtol=1e-4, atol=1e-5, err_msg=name)
    assert seen["stage_1"].shape == (3, 5, 8, 6, 6)
    for i, m in enumerate(members):  # in training mode, both updated the same BN statistics
        state = net.member_state_dict(i)
        assert state.keys() == m.state_dict().keys()
        for k, v in m.state_dict().items():
            torch.testing.assert_close(state[k], v, rtol=1e-5, atol=1e-6, msg=k)
        fresh = ResNet(3, HEADS, channels=(4, 8), blocks=2, norm=norm, groups=2,
                       fc_widths=(6,))
        fresh.load_state_dict(state)


def test_stack_models_refuses_mixed_resnets():
    a = _members("batch", 1)[0]
    with pytest.raises(ValueError, match="differ in type or shape"):
        stack_models([a, ResNet(3, HEADS, channels=(4, 16), blocks=2, fc_widths=(6,))])


# A member's grouped convolutions sum in another order than its own run's, so it matches its
# sequential run to float32 rounding, which training amplifies. Measured over 40 members
# (seeds 0-9, in pairs) of each case below: after 10 steps all values stayed within half the
# tolerance |diff| <= ATOL + RTOL * |value| (seeds 4 and 0, used here: within 0.1 of it), but
# for none to two members per case whose differences jumped to ~1e-4 at one step -- seeds
# whose sequential runs on 1 and on 2 threads differ as much. Such jumps grow more frequent
# with the steps; hence short runs, on fixed seeds. Under batch norm the convolutions have
# no bias, so (unlike the CNN's biased convs, see test_ensemble_cnn.py) Adam with batch norm
# matches too; group norm is tested with SGD (with Adam, sequential runs on 1 and 2 threads
# already differ by ~1e-5 after 10 steps).
RESNET_CASES = [("batch", "adam", 5e-3), ("batch", "sgd", 0.05), ("group", "sgd", 0.05),
                ("none", "adam", 5e-3)]
RESNET_STEPS = 10


def _train_configs(norm, optimizer, lr):
    model = _cfg(blocks=2, fc_widths=(16,), norm=norm, groups=2)
    cfg = TrainingConfig(steps=RESNET_STEPS, eval_every=5, snapshot_steps=(0, 5),
                         batch_size=16, optimizer=optimizer, lr=lr, momentum=0.9, device="cpu")
    return model, cfg


@pytest.fixture(scope="module")
def images():
    return image_task()


@pytest.mark.parametrize("case", RESNET_CASES, ids=["-".join(c[:2]) for c in RESNET_CASES])
def test_ensemble_matches_sequential_within_rounding(images, case):
    model_cfg, cfg = _train_configs(*case)
    seeds = SEEDS[:2]
    ens = train_ensemble(images, seed_members(model_cfg, cfg, seeds), progress=False)
    for seed, r in zip(seeds, ens, strict=True):
        assert type(r.model) is ResNet
        assert_close_result(r, train(images, model_cfg, cfg, seed=seed, progress=False),
                            rtol=RTOL, atol=ATOL)  # incl. BN running mean/var
    assert {k: v.shape for k, v in ens[0].snapshots[RESNET_STEPS].items()} == {
        "stem": (54, 4), "stage_0": (54, 4), "stage_1": (54, 8), "pool": (54, 8),
        "fc_0": (54, 16)}
    if case[0] == "batch":
        key = "stages.stage_1.0.conv2.norm.running_mean"
        a, b = (r.model.state_dict()[key] for r in ens)
        assert not torch.allclose(a, b, rtol=RTOL, atol=ATOL)  # each member its own
        assert int(ens[0].model.state_dict()["stem.norm.num_batches_tracked"]) == RESNET_STEPS


class _RotatedBatches(types.SimpleNamespace):
    """``torch`` for ensemble.py giving each member the next member's minibatch."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def stack(tensors, *args, **kwargs):
        tensors = list(tensors)
        return torch.stack(tensors[1:] + tensors[:1], *args, **kwargs)


def test_tolerance_catches_a_member_trained_on_other_batches(images, monkeypatch):
    model_cfg, cfg = _train_configs(*RESNET_CASES[0])
    seeds = SEEDS[:2]
    monkeypatch.setattr(ens_mod, "torch", _RotatedBatches())
    bad = train_ensemble(images, seed_members(model_cfg, cfg, seeds), progress=False)
    monkeypatch.undo()
    for seed, r in zip(seeds, bad, strict=True):
        with pytest.raises(AssertionError):
            assert_close_result(r, train(images, model_cfg, cfg, seed=seed, progress=False),
                                rtol=RTOL, atol=ATOL)


# --- training --------------------------------------------------------------------------------


def test_learns_all_three_features_quickly():
    ds = make_image_task(TaskConfig(kind="images", n_train=27 * 16, val_size=54, test_size=54,
                                    images=ImageTaskConfig(size=16, jitter=2)))
    model_cfg = _cfg(channels=(8, 16), norm="batch", init="kaiming_normal")
    cfg = TrainingConfig(steps=200, eval_every=100, snapshot_steps=(0,), batch_size=32,
                         lr=5e-3, device="cpu")
    res = train(ds, model_cfg, cfg, seed=0, progress=False)
    acc = {n: res.history["test"]["accuracy"][n] for n in ("colour", "shape", "texture")}
    assert all(a[0] < 0.6 for a in acc.values()), acc  # chance is 1/3
    assert all(a[-1] >= 0.95 for a in acc.values()), acc
    # stages are recorded per channel (global average readout); no fc: pool is penultimate
    assert {k: v.shape for k, v in res.snapshots[200].items()} == {
        "stem": (108, 8), "stage_0": (108, 8), "stage_1": (108, 16), "pool": (108, 16)}
    np.testing.assert_allclose(res.snapshots[200]["pool"], res.snapshots[200]["stage_1"],
                               rtol=1e-5, atol=1e-6)


def test_shipped_resnet_config_is_the_cnn_config_but_the_model(shipped_config):
    from rsa_bias.config import load_config

    resnet = load_config(shipped_config.parent / "resnet_trifeature.toml")
    cnn = load_config(shipped_config.parent / "cnn_trifeature.toml")
    assert (resnet.model.arch, resnet.model.init) == ("resnet", "kaiming_normal")
    assert resnet.model.resnet.fc_widths == () and resnet.model.resnet.norm == "batch"
    assert (resnet.task, resnet.training, resnet.seeds, resnet.analysis) == \
        (cnn.task, cnn.training, cnn.seeds, cnn.analysis)
    assert build_model((3, 32, 32), HEADS, resnet.model).layer_names == [
        "stem", "stage_0", "stage_1", "stage_2", "pool"]
