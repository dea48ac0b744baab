"""Activations of any torch module by path: every value checked against the same intermediate
computed by calling the submodules by hand (or the model's own output), the reductions
against torch's on the full output, the projection against the documented matrix rebuilt
here; the model left with its modes and without hooks."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn
from torch.nn import functional as F

from rsa_bias.networks import prepare_images
from rsa_bias.training import (
    extraction_provenance,
    iter_module_activations,
    module_activations,
    module_layers,
)


class Block(nn.Module):
    """torchvision's BasicBlock in small: ``relu`` is called twice (after bn1, after the add)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Block(8, 8), Block(8, 8))
        self.layer2 = nn.Sequential(Block(8, 16, 2), Block(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TinyTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 16)
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(1))


class TinyLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class Wrap(nn.Module):
    """``lin``, then ``inner``, a module returning ``make(x)`` (nested tuples, dicts, ...)."""

    def __init__(self, make) -> None:
        super().__init__()
        self.lin, self.inner = nn.Linear(4, 4), nn.Module()
        self.inner.forward = make

    def forward(self, x):
        self.inner(self.lin(x))
        return x


def _resnet() -> TinyResNet:
    torch.manual_seed(0)
    model = TinyResNet()
    for m in model.modules():  # running statistics unlike batch ones: eval mode shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


@torch.no_grad()
def _resnet_by_hand(model: TinyResNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The full outputs of some modules, the submodules called one by one in eval mode."""
    model.eval()
    c1 = model.conv1(x)
    x0 = F.relu(model.bn1(c1))
    b0 = model.layer1[0]
    inner = b0.conv1(x0)
    out0 = F.relu(b0.bn2(b0.conv2(F.relu(b0.bn1(inner)))) + x0)
    l1 = model.layer1[1](out0)
    down = model.layer2[0].downsample[0](l1)
    pooled = model.avgpool(model.layer2(l1))
    return {"conv1": c1, "layer1.0.conv1": inner, "layer1.0.relu": out0,
            "layer2.0.downsample.0": down, "avgpool": pooled, "fc": model(x)}


REFERENCE_REDUCTIONS = {"mean": lambda t: t.mean(dim=(2, 3)) if t.ndim == 4 else t,
                        "max": lambda t: t.amax(dim=(2, 3)) if t.ndim == 4 else t,
                        "flatten": lambda t: t.reshape(len(t), -1)}


def _hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_module_layers_are_the_named_module_paths():
    model = _resnet()
    paths = module_layers(model)
    assert paths == [name for name, _ in model.named_modules()][1:]
    assert {"layer1.0.conv1", "layer1.0.relu", "layer2.0.downsample.0"} <= set(paths)


@pytest.mark.parametrize("reduction", ["mean", "max", "flatten"])
def test_resnet_layers_equal_a_forward_by_hand(reduction):
    model = _resnet()
    x = torch.randn(10, 3, 8, 8)
    want = _resnet_by_hand(model, x)
    got = module_activations(model, x, stimulus_ids=np.arange(10), layers=list(want),
                             reduction=reduction, batch_size=4)
    for path, full in want.items():
        ref = REFERENCE_REDUCTIONS[reduction](full).numpy()
        assert got[path].dtype == np.float32 and got[path].dims == ("stimulus", "unit")
        np.testing.assert_allclose(got[path].values, ref, rtol=1e-5, atol=1e-5, err_msg=path)


def _projection(units: int, k: int, seed: int, index: int) -> np.ndarray:
    """The matrix as the docstring describes it, rebuilt here."""
    state = np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]
    gen = torch.Generator().manual_seed(int(state))
    return (torch.randn(units, k, generator=gen) / np.sqrt(k)).numpy()


def test_random_projection_is_flatten_times_the_documented_matrix():
    model = _resnet()
    x = torch.randn(12, 3, 8, 8)
    layers = ["layer1.0.conv1", "layer1.0.conv2", "fc"]
    flat = module_activations(model, x, stimulus_ids=np.arange(12), layers=layers,
                              reduction="flatten")
    got = module_activations(model, x, stimulus_ids=np.arange(12), layers=layers,
                             reduction="random_projection", n_components=64, seed=3)
    for path in layers[:2]:
        want = flat[path].values @ _projection(512, 64, 3, zlib.crc32(path.encode()))
        np.testing.assert_allclose(got[path].values, want, rtol=1e-5, atol=1e-5)
        ratio = (want ** 2).sum(1) / (flat[path].values ** 2).sum(1)  # Johnson-Lindenstrauss
        assert 0.6 < ratio.mean() < 1.4
        assert got[path].attrs == {"reduction": "random_projection", "n_components": 64,
                                   "seed": 3, "layer_path": path}
    assert not np.allclose(_projection(512, 64, 3, 0), _projection(512, 64, 3, 1))
    np.testing.assert_array_equal(got["fc"].values, flat["fc"].values)  # 5 units <= 64
    other = module_activations(model, x, stimulus_ids=np.arange(12), layers=layers[:1],
                               reduction="random_projection", n_components=64, seed=4)
    assert not np.allclose(other[layers[0]].values, got[layers[0]].values)
    alone = module_activations(model, x, stimulus_ids=np.arange(12), layers=layers[1:2],
                               reduction="random_projection", n_components=64, seed=3)
    np.testing.assert_array_equal(alone[layers[1]].values, got[layers[1]].values)  # by path


@pytest.mark.parametrize("reduction", ["mean", "random_projection"])
def test_batch_size_does_not_change_the_values(reduction):
    model = _resnet()
    x = torch.randn(15, 3, 8, 8)
    k = 32 if reduction == "random_projection" else None
    runs = [module_activations(model, x, stimulus_ids=np.arange(15), batch_size=b,
                               layers=["layer1.0.relu", "layer2.1.conv2", "fc"],
                               reduction=reduction, n_components=k) for b in (1, 7, 15)]
    for run in runs[:2]:
        for path, a in run.items():  # float32 sums in another order: 1e-6 of the scale
            want = runs[2][path].values
            np.testing.assert_allclose(a.values, want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_batches_come_in_input_order():
    model = _resnet()
    x = torch.randn(20, 3, 8, 8)
    batches = list(iter_module_activations(model, x, layers=["fc"], batch_size=7))
    assert [len(b["fc"]) for b in batches] == [7, 7, 6]
    with torch.no_grad():
        want = model.eval()(x).numpy()
    np.testing.assert_allclose(np.concatenate([b["fc"] for b in batches]), want, atol=1e-5)


def test_modes_restored_and_eval_used():
    model = _resnet().train()
    model.layer1[1].bn2.eval()  # a mixed state, restored module by module
    before = {name: m.training for name, m in model.named_modules()}
    x = torch.randn(8, 3, 8, 8)
    it = iter_module_activations(model, x, layers=["layer2.1.bn2", "fc"], batch_size=4)
    first = next(it)  # between batches the model is as it was
    assert {name: m.training for name, m in model.named_modules()} == before
    assert _hooks_left(model) == 0 and torch.is_grad_enabled()
    got = np.concatenate([first["fc"], next(it)["fc"]])
    assert {name: m.training for name, m in model.named_modules()} == before
    np.testing.assert_allclose(got, _resnet_by_hand(model, x)["fc"].numpy(), atol=1e-5)
    with torch.no_grad():
        assert not np.allclose(got, model.train()(x).numpy(), atol=1e-3)  # train mode differs


def test_modes_and_hooks_restored_when_forward_fails():
    class Failing(TinyResNet):
        def forward(self, x):
            super().forward(x)
            raise RuntimeError("boom")

    model = Failing().train()
    with pytest.raises(RuntimeError, match="boom"):
        next(iter_module_activations(model, torch.randn(2, 3, 8, 8), layers=["layer1.0.relu"]))
    assert model.training and all(m.training for m in model.modules())
    assert _hooks_left(model) == 0
    wrap = Wrap(lambda x: {"x": x}).train()
    with pytest.raises(TypeError, match="'inner' returns a dict"):
        next(iter_module_activations(wrap, torch.randn(2, 4), layers=["lin", "inner"]))
    assert wrap.training and _hooks_left(wrap) == 0


def test_layer_name_errors():
    model = _resnet()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"'layer1\.0\.relu'.*module_layers\(model\)"):
        iter_module_activations(model, x, layers=["layer1.0.relu1"])
    for bad in (["fc", "fc"], [""], [], "fc"):
        with pytest.raises(ValueError):
            iter_module_activations(model, x, layers=bad)
    with pytest.raises(ValueError, match="valid:.*random_projection"):
        iter_module_activations(model, x, layers=["fc"], reduction="gap")
    with pytest.raises(ValueError, match="n_components"):
        iter_module_activations(model, x, layers=["fc"], reduction="random_projection")
    with pytest.raises(ValueError, match="n_components"):
        iter_module_activations(model, x, layers=["fc"], n_components=8)
    with pytest.raises(ValueError, match="channel_axis"):
        next(iter_module_activations(model, x, layers=["conv1"], channel_axis=0))


def test_a_layer_the_forward_never_calls_is_named():
    model = _resnet()
    model.unused = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"\['unused'\] were not called"):
        next(iter_module_activations(model, torch.randn(2, 3, 8, 8), layers=["fc", "unused"]))
    assert _hooks_left(model) == 0


@torch.no_grad()
def test_transformer_tuple_outputs_and_sequence_axes():
    torch.manual_seed(0)
    model = TinyTransformer().train()  # dropout would show if eval mode were not used
    x = torch.randn(6, 5, 4)
    model.eval()
    h = model.embed(x)
    l0, l1 = model.encoder.layers
    attn = l0.self_attn(h, h, h, need_weights=False)[0]
    h1 = l0(h)
    a = l1.norm1(h1 + l1.self_attn(h1, h1, h1, need_weights=False)[0])
    lin2 = l1.linear2(F.relu(l1.linear1(a)))
    model.train()
    paths = ["encoder.layers.0.self_attn", "encoder.layers.1.linear2", "head"]
    for reduction, ref in [("mean", lambda t: t.mean(1)), ("max", lambda t: t.amax(1)),
                           ("flatten", lambda t: t.reshape(len(t), -1))]:
        got = module_activations(model, x, stimulus_ids=np.arange(6), layers=paths,
                                 reduction=reduction, batch_size=4)
        for path, full in zip(paths, [attn, lin2, model.eval()(x)], strict=True):
            want = ref(full) if full.ndim == 3 else full
            np.testing.assert_allclose(got[path].values, want.numpy(), atol=1e-5, err_msg=path)
        model.train()
    across = module_activations(model, x, stimulus_ids=np.arange(6), layers=paths[1:2],
                                channel_axis=1)  # keep the positions, average the features
    np.testing.assert_allclose(across[paths[1]].values, lin2.mean(-1).numpy(), atol=1e-5)
    with pytest.raises(TypeError, match="'encoder.layers.0.self_attn' returns NoneType"):
        next(iter_module_activations(model, x, layers=paths[:1], output_index=1))


@torch.no_grad()
def test_lstm_and_nested_tuple_outputs():
    torch.manual_seed(0)
    model = TinyLSTM()
    x = torch.randn(5, 7, 4)
    got = module_activations(model, x, stimulus_ids=list("abcde"), layers=["lstm"],
                             reduction="max")
    np.testing.assert_allclose(got["lstm"].values, model.lstm(x)[0].amax(1).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="'lstm' gave 1 rows for a batch of 5"):
        next(iter_module_activations(model, x, layers=["lstm"], output_index=1))  # c: (1, N, H)
    nested = Wrap(lambda x: ((2 * x, 3 * x), 4 * x))
    x = torch.randn(3, 4)
    for index, factor in [(0, 2), (1, 4)]:
        a = next(iter_module_activations(nested, x, layers=["inner"], output_index=index))
        np.testing.assert_allclose(a["inner"], factor * nested.lin(x).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        next(iter_module_activations(nested, x, layers=["inner"], output_index=2))


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_in_place_relu_after_the_hooked_layer_does_not_change_the_record(kind):
    torch.manual_seed(0)
    layer = nn.Conv2d(3, 4, 3) if kind == "conv" else nn.Linear(6, 5)
    model = nn.Sequential(layer, nn.ReLU(inplace=True))
    x = torch.randn(4, 3, 6, 6) if kind == "conv" else torch.randn(4, 6)
    with torch.no_grad():
        want = (F.conv2d(x, layer.weight, layer.bias) if kind == "conv"
                else x @ layer.weight.T + layer.bias).reshape(4, -1).numpy()
    got = next(iter_module_activations(model, x, layers=["0"], reduction="flatten"))["0"]
    assert (want < 0).any()  # the ReLU would have zeroed these in place
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_images_datasets_and_arrays():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 12, 12, 3), dtype=np.uint8)
    with torch.no_grad():
        want = model(prepare_images(images, size=8)).mean(dim=(2, 3)).numpy()
    ids = np.arange(10, 16)
    da = xr.DataArray(images, dims=("stimulus", "y", "x", "channel"), coords={"stimulus": ids})
    for inputs in (images, da, da.transpose("y", "stimulus", "x", "channel"),
                   xr.Dataset({"image": da})):
        got = module_activations(model, inputs, stimulus_ids=ids, layers=["1"], image_size=8,
                                 batch_size=4)["1"]
        np.testing.assert_allclose(got.values, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.stimulus.values, ids)
    floats = rng.normal(size=(6, 3, 8, 8))  # float64 in, float32 tensor as it is
    stim = xr.Dataset({"inputs": (("stimulus", "c", "h", "w"), floats),
                       "image": da}, coords={"stimulus": ids})
    with torch.no_grad():
        want = model(torch.tensor(floats, dtype=torch.float32)).mean(dim=(2, 3)).numpy()
    got = module_activations(model, stim, layers=["1"])["1"]  # inputs before image
    np.testing.assert_allclose(got.values, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.stimulus.values, ids)
    with pytest.raises(ValueError, match="neither an 'inputs' nor an 'image'"):
        module_activations(model, xr.Dataset({"x": da}), layers=["1"])
    with pytest.raises(ValueError, match=r"uint8 inputs are read as images"):
        next(iter_module_activations(model, images[..., 0], layers=["1"]))
    relu = nn.Sequential(nn.ReLU())  # no parameter or buffer: runs on the CPU
    got = module_activations(relu, floats[:, 0, 0], stimulus_ids=ids, layers=["0"])["0"]
    np.testing.assert_allclose(got.values, np.maximum(floats[:, 0, 0], 0), rtol=1e-6)


def test_stimulus_id_checks():
    model = nn.Sequential(nn.Linear(3, 2))
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="stimulus_ids are required"):
        module_activations(model, x, layers=["0"])
    with pytest.raises(ValueError, match="3 stimulus ids for 4 stimuli"):
        module_activations(model, x, stimulus_ids=[1, 2, 3], layers=["0"])
    with pytest.raises(ValueError, match="repeated"):
        module_activations(model, x, stimulus_ids=[1, 2, 3, 3], layers=["0"])
    da = xr.DataArray(x.numpy(), dims=("stimulus", "f"), coords={"stimulus": list("wxyz")})
    with pytest.raises(ValueError, match="differ from the inputs' own"):
        module_activations(model, da, stimulus_ids=list("wxzy"), layers=["0"])
    got = module_activations(model, da, stimulus_ids=list("wxyz"), layers=["0"])["0"]
    np.testing.assert_array_equal(got.stimulus.values, list("wxyz"))
    with torch.no_grad():
        np.testing.assert_allclose(got.sel(stimulus="y").values, model(x[2]).numpy(),
                                   rtol=1e-6)


def test_progress_bar_over_batches(capsys):
    model = nn.Sequential(nn.Linear(3, 2))
    for progress in (False, True):
        list(iter_module_activations(model, torch.randn(9, 3), layers=["0"], batch_size=3,
                                     progress=progress))
        assert ("batches:" in capsys.readouterr().err) is progress


def test_extraction_provenance_is_flat_and_netcdf_safe(tmp_path):
    model = _resnet()
    attrs = extraction_provenance(model, layers=["conv1", "layer1.0.relu"],
                                  reduction="random_projection", n_components=16, seed=2,
                                  channel_axis=None, output_index=0)
    assert attrs["model_class"] == f"{__name__}.TinyResNet"
    assert attrs["layer_paths"] == "conv1,layer1.0.relu"
    assert attrs["n_parameters"] == sum(p.numel() for p in model.parameters())
    assert (attrs["n_components"], attrs["projection_seed"], attrs["output_index"]) == (16, 2, 0)
    assert all(type(v) in (str, int) for v in attrs.values())
    xr.Dataset(attrs=attrs).to_netcdf(tmp_path / "a.nc")
    assert xr.open_dataset(tmp_path / "a.nc").attrs == attrs
