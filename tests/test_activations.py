"""Capturing activations: copies of the true layer outputs, model state left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from rsa_bias.networks import MLP
from rsa_bias.store import activation_tree
from rsa_bias.training.activations import capture


class _Named(nn.Module):
    """A model with one addressable layer followed by ``after`` (e.g. an in-place op)."""

    def __init__(self, after: nn.Module, n_in: int = 4, n_out: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.ModuleDict({"hidden_0": nn.Linear(n_in, n_out)})
        self.after = after

    def layer(self, name: str) -> nn.Module:
        return self.hidden[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.hidden["hidden_0"](x))


class _ZeroInPlace(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(0)


def _linear_output(model: _Named, x: torch.Tensor) -> np.ndarray:
    lin = model.hidden["hidden_0"]
    return (x @ lin.weight.T + lin.bias).detach().numpy()


@pytest.mark.parametrize("after", [_ZeroInPlace(), nn.ReLU(inplace=True)], ids=["mul0", "relu"])
def test_capture_records_copies_not_mutated_tensors(after):
    model = _Named(after)
    x = torch.randn(20, 4)
    with torch.no_grad():
        out = model(x)
    expected = _linear_output(model, x)
    # the op after the layer really does overwrite the layer's output tensor ...
    assert not np.allclose(out.numpy(), expected)
    # ... yet capture holds the layer output as it was
    got = capture(model, x, ["hidden_0"])["hidden_0"]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert (got < 0).any()


@pytest.mark.parametrize("training", [True, False])
def test_capture_restores_mode_and_runs_in_eval(training):
    torch.manual_seed(0)
    model = MLP(5, ["a"], depth=2, width=32, dropout=0.5)
    model.train(training)
    x = torch.randn(50, 5)
    got = capture(model, x, ["hidden_1"])["hidden_1"]
    assert model.training is training
    assert all(m.training is training for m in model.modules())
    model.eval()
    with torch.no_grad():
        h = model.hidden["hidden_1"](model.hidden["hidden_0"](x))
    np.testing.assert_allclose(got, h.numpy(), rtol=1e-5, atol=1e-6)  # no dropout applied


def test_capture_restores_mode_and_hooks_when_forward_fails():
    class Failing(_Named):
        def forward(self, x):
            super().forward(x)
            raise RuntimeError("boom")

    model = Failing(nn.Identity())
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        capture(model, torch.randn(3, 4), ["hidden_0"])
    assert model.training
    assert not model.hidden["hidden_0"]._forward_hooks


def test_capture_removes_hooks_and_batches_consistently():
    torch.manual_seed(1)
    model = MLP(5, ["a"], depth=3, width=8)
    x = torch.randn(23, 5)
    whole = capture(model, x, model.layer_names)
    chunked = capture(model, x, model.layer_names, batch_size=7)
    for name in model.layer_names:
        assert not model.layer(name)._forward_hooks
        assert whole[name].shape == (23, 8)
        np.testing.assert_allclose(whole[name], chunked[name], rtol=1e-5, atol=1e-6)
    # the layers are the ones asked for, in network order
    with torch.no_grad():
        h = x
        for name in model.layer_names:
            h = model.layer(name)(h)
            np.testing.assert_allclose(whole[name], h.numpy(), rtol=1e-5, atol=1e-6)


def test_capture_unknown_layer_fails():
    model = MLP(5, ["a"], depth=1, width=4)
    with pytest.raises(KeyError, match="hidden_3"):
        capture(model, torch.randn(2, 5), ["hidden_3"])


# --- activation_tree -------------------------------------------------------------------------


def _stimuli(n: int = 6) -> xr.Dataset:
    return xr.Dataset(
        {"inputs": (("stimulus", "input"), np.ones((n, 2), dtype=np.float32))},
        coords={"stimulus": np.arange(10, 10 + n), "feature_a": ("stimulus", np.arange(n) % 2),
                "split": ("stimulus", np.array(["val", "test"] * (n // 2)))},
        attrs={"feature_names": ["a"]})


def test_activation_tree_layout():
    stim = _stimuli()
    rng = np.random.default_rng(0)
    layers = {"hidden_0": rng.normal(size=(2, 3, 6, 4)), "hidden_1": rng.normal(size=(2, 3, 6, 5))}
    tree = activation_tree(stim, layers, seeds=[7, 8], steps=[0, 5, 10], attrs={"git_sha": "x"})
    assert list(tree.children) == ["hidden_0", "hidden_1"]
    assert tree.attrs["feature_names"] == ["a"] and tree.attrs["git_sha"] == "x"
    root = tree.to_dataset()
    np.testing.assert_array_equal(root.stimulus.values, stim.stimulus.values)
    np.testing.assert_array_equal(root.feature_a.values, stim.feature_a.values)
    for name, arr in layers.items():
        act = tree[name]["activation"]
        assert act.dims == ("seed", "step", "stimulus", "unit")
        np.testing.assert_array_equal(act.values, arr)
        np.testing.assert_array_equal(act.seed.values, [7, 8])
        np.testing.assert_array_equal(act.step.values, [0, 5, 10])
    assert "git_sha" not in stim.attrs  # the input is not modified


def test_activation_tree_without_seed_or_step():
    tree = activation_tree(_stimuli(), {"hidden_0": np.zeros((6, 3))})
    assert tree["hidden_0"]["activation"].dims == ("stimulus", "unit")


@pytest.mark.parametrize("shape", [(6, 3), (2, 2, 6, 3)], ids=["too_few", "too_many"])
def test_activation_tree_rejects_wrong_dims(shape):
    with pytest.raises(ValueError, match="hidden_0"):
        activation_tree(_stimuli(), {"hidden_0": np.zeros(shape)}, seeds=[0])


def test_activation_tree_rejects_wrong_stimulus_count():
    with pytest.raises(ValueError, match="5 stimuli"):
        activation_tree(_stimuli(), {"hidden_0": np.zeros((5, 3))})
