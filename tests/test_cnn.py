"""CNN: named layers on any input size, initialisation families, image preparation, and
training on the image task (multi-class heads, resumable checkpoints)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

import rsa_bias.training.loop as loop
from rsa_bias.config import (
    CNNConfig,
    ConfigError,
    ImageTaskConfig,
    ModelConfig,
    TaskConfig,
    TrainingConfig,
    config_from_dict,
)
from rsa_bias.networks import CNN, build_model, initialise, prepare_images, spatial_readout
from rsa_bias.networks.init import FAMILIES, fans
from rsa_bias.tasks import make_image_task
from rsa_bias.tasks.images import to_uint8
from rsa_bias.training import train
from rsa_bias.training.activations import capture

HEADS = {"colour": 3, "shape": 3, "texture": 2}


# --- architecture ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 32, 37, 112])
def test_runs_on_any_input_size(size):
    torch.manual_seed(0)
    model = CNN(3, HEADS, channels=(4, 8, 8), fc_widths=(6,))
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "colour": (2, 3), "shape": (2, 3), "texture": (2,)}
    acts = capture(model, x, model.layer_names)
    assert acts["conv_0"].shape == (2, 4, size // 2, size // 2)
    assert acts["conv_1"].shape == (2, 8, size // 4, size // 4)
    assert acts["conv_2"].shape == (2, 8, size // 4, size // 4)  # no pooling after the last
    assert acts["pool"].shape == (2, 8) and acts["fc_0"].shape == (2, 6)
    np.testing.assert_allclose(acts["pool"], acts["conv_2"].mean(axis=(2, 3)), rtol=1e-5,
                               atol=1e-6)


def test_layer_names_and_unknown_layer():
    model = CNN(3, ["a"], channels=(4, 4), fc_widths=(5, 5))
    assert model.layer_names == ["conv_0", "conv_1", "pool", "fc_0", "fc_1"]
    assert model.layer("conv_1") is model.conv["conv_1"] and model.layer("pool") is model.pool
    with pytest.raises(KeyError, match="conv_9") as info:
        model.layer("conv_9")
    assert "fc_1" in str(info.value)
    with pytest.raises(ValueError, match="images"):
        model(torch.zeros(2, 12))


@pytest.mark.parametrize(("norm", "kind"), [("none", nn.Identity), ("batch", nn.BatchNorm2d),
                                            ("group", nn.GroupNorm)])
def test_normalisation_and_activation_follow_config(norm, kind):
    cfg = ModelConfig(arch="cnn", activation="tanh",
                      cnn=CNNConfig(channels=(8, 8), norm=norm, groups=2))
    model = build_model((3, 16, 16), HEADS, cfg)
    for block in model.conv.values():
        assert isinstance(block.norm, kind) and isinstance(block.act, nn.Tanh)
    if norm == "group":
        assert model.conv["conv_0"].norm.num_groups == 2


def test_spatial_readout():
    a = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(spatial_readout(a, readout="gap"), a.mean(axis=(2, 3)))
    np.testing.assert_array_equal(spatial_readout(a, readout="flatten")[1], a[1].ravel())
    assert spatial_readout(a[:, :, 0, 0]) is not None
    with pytest.raises(ValueError, match="gap"):
        spatial_readout(a, readout="max")


# --- initialisation families -----------------------------------------------------------------


def _conv(c_in=64, c_out=96, k=3):
    return nn.Conv2d(c_in, c_out, k)


@pytest.mark.parametrize(("family", "expected_std"), [
    ("kaiming_normal", lambda fi, fo, s: s * math.sqrt(2 / fi)),
    ("kaiming_uniform", lambda fi, fo, s: s * math.sqrt(2 / fi)),
    ("xavier_normal", lambda fi, fo, s: s * math.sqrt(2 / (fi + fo))),
    ("xavier_uniform", lambda fi, fo, s: s * math.sqrt(2 / (fi + fo))),
    ("scaled_normal", lambda fi, fo, s: s / math.sqrt(fi)),
])
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_family_weight_statistics(family, expected_std, scale):
    conv = initialise(_conv(), family=family, scale=scale, seed=0)
    w = conv.weight.detach().double()
    fi, fo = fans(conv.weight)
    assert (fi, fo) == (64 * 9, 96 * 9)
    std = expected_std(fi, fo, scale)
    assert float(w.std()) == pytest.approx(std, rel=0.02)
    assert abs(float(w.mean())) < 0.02 * std
    if family.endswith("uniform"):
        assert float(w.abs().max()) <= std * math.sqrt(3) + 1e-7  # bound b = sqrt(3) std
        assert float(w.abs().max()) > 0.99 * std * math.sqrt(3)
    assert torch.count_nonzero(conv.bias) == 0


@pytest.mark.parametrize(("c_in", "c_out"), [(8, 40), (8, 100)])  # fan_in 72: wide and tall
def test_orthogonal_flattened_kernel(c_in, c_out):
    conv = initialise(nn.Conv2d(c_in, c_out, 3), family="orthogonal", scale=2.0, seed=1)
    w = conv.weight.detach().double().reshape(c_out, -1)
    gram = w @ w.T if c_out <= w.shape[1] else w.T @ w
    torch.testing.assert_close(gram, 4.0 * torch.eye(gram.shape[0], dtype=torch.float64),
                               atol=1e-5, rtol=0)


def test_families_are_seeded():
    for family in FAMILIES:
        a = initialise(_conv(4, 4), family=family, seed=3).weight
        b = initialise(_conv(4, 4), family=family, seed=3).weight
        c = initialise(_conv(4, 4), family=family, seed=4).weight
        assert torch.equal(a, b) and not torch.equal(a, c), family
    torch.manual_seed(5)
    a = initialise(_conv(4, 4), family="kaiming_normal").weight  # global generator
    torch.manual_seed(5)
    assert torch.equal(a, initialise(_conv(4, 4), family="kaiming_normal").weight)


def test_default_family_scales_pytorch_init():
    torch.manual_seed(0)
    base = _conv(4, 4)
    torch.manual_seed(0)
    scaled = initialise(_conv(4, 4), family="default", scale=0.5)
    assert torch.equal(scaled.weight, base.weight * 0.5)
    assert torch.equal(scaled.bias, base.bias * 0.5)
    with pytest.raises(ValueError, match="orthogonal"):
        initialise(base, family="he")


def test_build_model_applies_the_family_to_every_layer():
    cfg = ModelConfig(arch="cnn", init="orthogonal", init_scale=1.5,
                      cnn=CNNConfig(channels=(4, 8), fc_widths=(16,)))
    model = build_model((3, 16, 16), HEADS, cfg)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight.detach().double().reshape(m.weight.shape[0], -1)
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            torch.testing.assert_close(gram, 2.25 * torch.eye(len(gram), dtype=gram.dtype),
                                       atol=1e-5, rtol=0)


def test_families_reset_normalisation_layers():
    """The module docstring's promise: every family leaves normalisation layers at weight 1,
    bias 0 and fresh running statistics, also on a model whose norms were changed (trained)."""
    for norm in ("batch", "group"):
        model = build_model((3, 16, 16), HEADS, ModelConfig(
            arch="cnn", cnn=CNNConfig(channels=(4, 8), fc_widths=(16,), norm=norm)))
        norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
        assert norms, norm
        with torch.no_grad():
            for m in norms:
                m.weight.fill_(3.0)
                m.bias.fill_(-2.0)
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.fill_(5.0)
        initialise(model, family="xavier_uniform", seed=0)
        for m in norms:
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0), norm
            if isinstance(m, nn.BatchNorm2d):
                assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)


# --- image preparation -----------------------------------------------------------------------


def test_prepare_images_range_size_and_layout():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(3, 40, 40, 3), dtype=np.uint8)
    imgs[0] = 128
    imgs[1, :, :, 0] = 255
    x = prepare_images(imgs, size=20)
    assert x.shape == (3, 3, 20, 20) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    torch.testing.assert_close(x[0], torch.full((3, 20, 20), 2 * 128 / 255 - 1))
    torch.testing.assert_close(x[1, 0], torch.ones(20, 20))  # red channel stays red
    same = prepare_images(imgs, size=None)
    torch.testing.assert_close(same[2, 1], torch.from_numpy(imgs[2, :, :, 1] / 255 * 2 - 1)
                               .float())
    with pytest.raises(ValueError, match="uint8"):
        prepare_images(imgs.astype(float))
    with pytest.raises(ValueError, match=r"\(n, y, x, 3\)"):
        prepare_images(imgs[..., :2])


def test_prepare_images_matches_the_synthetic_range():
    ds = make_image_task(TaskConfig(kind="images", n_train=27, val_size=27, test_size=27))
    x = prepare_images(to_uint8(ds.inputs.values[:5]), size=None)
    np.testing.assert_allclose(x.numpy(), ds.inputs.values[:5], atol=1 / 255 + 1e-6)


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "key"), [
    ({"arch": "vit"}, "model.arch"),
    ({"arch": "cnn", "depth": 3}, "model.depth"),
    ({"cnn": {"channels": [4]}}, "model.cnn"),
    ({"arch": "cnn", "cnn": {"norm": "layer"}}, "model.cnn.norm"),
    ({"arch": "cnn", "cnn": {"norm": "group", "groups": 3}}, "model.cnn.groups"),
    ({"arch": "cnn", "cnn": {"kernel_size": 4}}, "model.cnn.kernel_size"),
    ({"arch": "cnn", "cnn": {"channels": []}}, "model.cnn.channels"),
    ({"arch": "cnn", "cnn": {"readout": "max"}}, "model.cnn.readout"),
    ({"arch": "cnn", "cnn": {"chanels": [4]}}, "model.cnn.chanels"),
    ({"init": "he"}, "model.init"),
])
def test_bad_model_configs_name_the_key(model, key):
    task = {"kind": "images", "n_train": 27, "val_size": 27, "test_size": 27}
    with pytest.raises(ConfigError) as info:
        config_from_dict({"task": task, "model": model})
    assert str(info.value).startswith(f"{key}:"), str(info.value)


def test_cnn_needs_images():
    with pytest.raises(ConfigError, match="^model.arch: 'cnn' needs image stimuli"):
        config_from_dict({"model": {"arch": "cnn"}})
    with pytest.raises(ValueError, match="binary heads only"):
        build_model((3, 8, 8), HEADS, ModelConfig())


# --- training --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_images():
    return make_image_task(TaskConfig(kind="images", n_train=27 * 16, val_size=54, test_size=54,
                                      images=ImageTaskConfig(size=16, jitter=2)))


TINY_CNN = ModelConfig(arch="cnn", init="kaiming_normal",
                       cnn=CNNConfig(channels=(8, 16), fc_widths=(32,)))


def test_learns_all_three_features_quickly(tiny_images):
    cfg = TrainingConfig(steps=400, eval_every=100, snapshot_steps=(0,), batch_size=32, lr=5e-3,
                         device="cpu")
    res = train(tiny_images, TINY_CNN, cfg, seed=0, progress=False)
    acc = {n: res.history["test"]["accuracy"][n][-1] for n in ("colour", "shape", "texture")}
    assert acc["colour"] == 1.0 and acc["shape"] >= 0.9 and acc["texture"] >= 0.9, acc
    assert all(res.history["test"]["accuracy"][n][0] < 0.6 for n in acc)
    # the recorded multi-class loss is the softmax cross-entropy of the final model
    mask = tiny_images.split.values == "test"
    with torch.no_grad():
        res.model.eval()
        out = res.model(torch.as_tensor(tiny_images.inputs.values[mask]))
    for n in acc:
        target = torch.as_tensor(tiny_images[f"feature_{n}"].values[mask]).long()
        ce = nn.functional.cross_entropy(out[n], target)
        assert res.history["test"]["loss"][n][-1] == pytest.approx(float(ce), rel=1e-5)
        assert acc[n] == pytest.approx(float((out[n].argmax(1) == target).float().mean()))
    # conv layers are recorded per channel (global average readout)
    assert {k: v.shape for k, v in res.snapshots[400].items()} == {
        "conv_0": (108, 8), "conv_1": (108, 16), "pool": (108, 16), "fc_0": (108, 32)}


def test_binary_image_task_trains_an_mlp_and_flattened_cnn_snapshots():
    ds = make_image_task(TaskConfig(kind="images", n_train=64, val_size=16, test_size=16,
                                    images=ImageTaskConfig(size=12, n_colours=2, n_shapes=2,
                                                           n_textures=2, jitter=1)))
    cfg = TrainingConfig(steps=5, eval_every=5, snapshot_steps=(0,), batch_size=8, device="cpu")
    mlp = train(ds, ModelConfig(depth=1, width=8), cfg, seed=0, progress=False)
    assert mlp.snapshots[5]["hidden_0"].shape == (32, 8)
    flat = dataclasses.replace(TINY_CNN, cnn=dataclasses.replace(TINY_CNN.cnn,
                                                                 readout="flatten"))
    cnn = train(ds, flat, cfg, seed=0, progress=False)
    assert cnn.snapshots[5]["conv_0"].shape == (32, 8 * 6 * 6)


class _Interrupted(Exception):
    pass


def _same(a, b):
    assert a.eval_steps == b.eval_steps and a.history == b.history
    for step, layers in a.snapshots.items():
        for name, arr in layers.items():
            np.testing.assert_array_equal(arr, b.snapshots[step][name], err_msg=name)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


def test_cnn_resume_after_interruption_is_bit_identical(tiny_images, tmp_path, monkeypatch):
    model_cfg = dataclasses.replace(TINY_CNN, dropout=0.3,
                                    cnn=dataclasses.replace(TINY_CNN.cnn, norm="batch"))
    cfg = TrainingConfig(steps=20, eval_every=5, snapshot_steps=(0, 10), batch_size=16,
                         checkpoint_every=5, lr=3e-3, device="cpu")
    reference = train(tiny_images, model_cfg, cfg, seed=1, progress=False)
    real_save = loop.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        if state["step"] == 10:
            raise _Interrupted

    ckpt = tmp_path / "seed_1.pt"
    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(_Interrupted):
        train(tiny_images, model_cfg, cfg, seed=1, checkpoint=ckpt, progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    batches = []
    real_losses = loop._losses

    def counting_losses(model, x, y, names, *weights):
        batches.append(len(x))
        return real_losses(model, x, y, names, *weights)

    monkeypatch.setattr(loop, "_losses", counting_losses)
    torch.manual_seed(999)  # the resumed run must not depend on the global RNG state
    resumed = train(tiny_images, model_cfg, cfg, seed=1, checkpoint=ckpt, progress=False)
    assert batches.count(cfg.batch_size) == cfg.steps - 10  # it resumed, not restarted
    _same(reference, resumed)
    assert any("running_mean" in k for k in resumed.model.state_dict())


def test_shipped_cnn_config_loads(shipped_config):
    from rsa_bias.config import load_config

    cfg = load_config(shipped_config.parent / "cnn_trifeature.toml")
    assert (cfg.task.kind, cfg.model.arch, cfg.model.init) == ("images", "cnn", "kaiming_normal")
    assert cfg.model.cnn.channels == (16, 32, 32) and cfg.task.images.n_values == (3, 3, 3)
    assert cfg.task.n_train % cfg.task.n_cells == 0
    small = load_config(shipped_config.parent / "cnn_trifeature.toml",
                        ["task.images.n_colours=2", "model.cnn.norm=group"])
    assert small.task.n_cells == 18 and small.model.cnn.norm == "group"
