"""MLP: named layers, exact init scaling, one logit per head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rsa_bias.config import ConfigError, ModelConfig
from rsa_bias.networks import MLP, build_mlp


@pytest.mark.parametrize("depth", [1, 3])
def test_layer_names(depth):
    model = MLP(5, ["a"], depth=depth, width=4)
    expected = [f"hidden_{i}" for i in range(depth)]
    assert model.layer_names == expected
    for name in expected:
        assert model.layer(name) is model.hidden[name]


def test_unknown_layer_error_names_it_and_lists_layers():
    model = MLP(5, ["a"], depth=2, width=4)
    with pytest.raises(KeyError, match="hidden_7") as info:
        model.layer("hidden_7")
    assert "hidden_0" in str(info.value) and "hidden_1" in str(info.value)


@pytest.mark.parametrize("scale", [0.1, 3.0])
def test_init_scale_multiplies_every_parameter_exactly(scale):
    torch.manual_seed(7)
    base = MLP(6, ["a", "b"], depth=3, width=8, init_scale=1.0)
    torch.manual_seed(7)
    scaled = MLP(6, ["a", "b"], depth=3, width=8, init_scale=scale)
    base_params = dict(base.named_parameters())
    scaled_params = dict(scaled.named_parameters())
    assert base_params.keys() == scaled_params.keys()
    for name, p in base_params.items():
        assert torch.equal(scaled_params[name], p * scale), name
        assert not torch.equal(scaled_params[name], p), name


def test_heads_output_one_logit_per_stimulus():
    model = MLP(6, ["easy", "hard", "third"], depth=2, width=8)
    out = model(torch.randn(11, 6))
    assert list(out) == ["easy", "hard", "third"]
    for logits in out.values():
        assert logits.shape == (11,)


def test_forward_is_hidden_chain_then_heads():
    torch.manual_seed(0)
    model = MLP(4, ["a", "b"], depth=2, width=5, activation="tanh")
    x = torch.randn(9, 4)
    h = x
    for i in range(2):
        lin = model.hidden[f"hidden_{i}"].linear
        h = torch.tanh(h @ lin.weight.T + lin.bias)
    with torch.no_grad():
        out = model(x)
        for name in ("a", "b"):
            head = model.heads[name]
            torch.testing.assert_close(out[name], (h @ head.weight.T + head.bias)[:, 0])


def test_build_mlp_follows_config():
    cfg = ModelConfig(depth=3, width=12, activation="gelu", dropout=0.25)
    model = build_mlp(7, ["x"], cfg)
    assert model.layer_names == ["hidden_0", "hidden_1", "hidden_2"]
    first = model.layer("hidden_0")
    assert (first.linear.in_features, first.linear.out_features) == (7, 12)
    assert isinstance(first.act, nn.GELU)
    assert isinstance(first.dropout, nn.Dropout) and first.dropout.p == 0.25
    assert model.heads["x"].in_features == 12


def test_build_mlp_validates():
    with pytest.raises(ConfigError, match=r"model\.width"):
        build_mlp(3, ["a"], ModelConfig(width=0))


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="relu"):
        MLP(3, ["a"], depth=1, width=2, activation="swish2")
