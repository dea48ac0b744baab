"""The Transformer of the output-position manipulation: tokens, causal masking, teacher forcing
and greedy decoding, the emission order, the block read-outs and a small training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rsa_bias.config import ConfigError, FeatureSpec, ModelConfig, TaskConfig, TransformerConfig
from rsa_bias.networks.transformer import (
    BIT_0,
    BIT_1,
    SEPARATOR,
    VALUE_0,
    VALUE_1,
    Transformer,
    build_transformer,
)
from rsa_bias.tasks import make_task
from rsa_bias.tasks.binary import feature_matrix
from rsa_bias.training.activations import capture

HEADS = ["a", "b", "c"]
N_BITS = 6


def _net(order=None, *, seed=0, readout="last", heads=HEADS, **kw) -> Transformer:
    torch.manual_seed(seed)
    kw = {"depth": 2, "width": 16, "n_heads": 2, **kw}
    return Transformer(N_BITS, heads, output_order=order, readout=readout, **kw).eval()


def _inputs(n=32, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n, N_BITS), generator=gen).float()


def _targets(n=32, n_features=3, seed=1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n, n_features), generator=gen).float()


def _reads(net: Transformer, x: torch.Tensor, targets=None):
    """Logits and the one ``(batch, width)`` representation each read module saw."""
    seen: dict[str, list[torch.Tensor]] = {n: [] for n in net.layer_names}
    handles = [net.layer(n).register_forward_hook(
        lambda _m, _i, out, n=n: seen[n].append(out.detach().clone()))
        for n in net.layer_names]
    try:
        with torch.no_grad():
            out = net(x, targets)
    finally:
        for h in handles:
            h.remove()
    return out, seen


# --- shapes, names, tokens -------------------------------------------------------------------


def test_shapes_named_layers_and_heads_order():
    net = _net(["c", "a", "b"], depth=3)
    out = net(_inputs(5))
    assert list(out) == HEADS  # the order of heads, not the emission order
    assert all(v.shape == (5,) for v in out.values())
    assert net.layer_names == ["block_0", "block_1", "block_2"]
    assert net.output_order == ["c", "a", "b"] and net.n_bits == N_BITS
    assert net.readout == "last" and Transformer.teacher_forced is True
    assert isinstance(net.layer("block_1"), nn.Identity)
    with pytest.raises(KeyError, match=r"no layer 'hidden_0'; layers: \['block_0'"):
        net.layer("hidden_0")
    with pytest.raises(ValueError, match=r"shape \(batch, 6\)"):
        net(torch.zeros(5, 7))


def test_tokens_bits_separator_and_fed_values():
    net = _net()
    x = torch.tensor([[0, 1, 1, 0, 0, 1.0]])
    tokens = net.tokens(x, torch.tensor([[1.0, 0.0]]))
    bits = [BIT_0, BIT_1, BIT_1, BIT_0, BIT_0, BIT_1]
    assert tokens.tolist() == [bits + [SEPARATOR, VALUE_1, VALUE_0]]
    assert len({BIT_0, BIT_1, SEPARATOR, VALUE_0, VALUE_1}) == 5  # values have their own ids


def test_01_and_pm1_inputs_give_the_same_tokens_and_logits():
    net = _net()
    x01 = _inputs()
    fed = torch.zeros(len(x01), 2)
    assert torch.equal(net.tokens(x01, fed), net.tokens(2 * x01 - 1, fed))
    a, b = net(x01), net(2 * x01 - 1)
    assert all(torch.equal(a[h], b[h]) for h in HEADS)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="output_order"):
        _net(["a", "b"])
    with pytest.raises(ValueError, match="output_order"):
        _net(["a", "b", "z"])
    with pytest.raises(ValueError, match="readout"):
        _net(readout="first")
    with pytest.raises(ValueError, match="heads must divide"):
        _net(width=10, n_heads=3)
    cfg = ModelConfig(arch="transformer", width=10, transformer=TransformerConfig(n_heads=3))
    with pytest.raises(ConfigError, match="n_heads"):
        build_transformer(N_BITS, HEADS, cfg)


def test_build_transformer_passes_the_config_on():
    cfg = ModelConfig(arch="transformer", depth=3, width=24, activation="tanh", dropout=0.1,
                      transformer=TransformerConfig(n_heads=3, mlp_ratio=2, readout="mean",
                                                    output_order=("b", "c", "a")))
    net = build_transformer(N_BITS, HEADS, cfg)
    assert net.layer_names == ["block_0", "block_1", "block_2"]
    assert net.output_order == ["b", "c", "a"] and net.readout == "mean"
    block = net.blocks[0]
    assert block.attn.n_heads == 3 and block.mlp[0].out_features == 48
    assert isinstance(block.mlp[1], nn.Tanh) and block.drop.p == 0.1
    default = build_transformer(N_BITS, HEADS, ModelConfig(arch="transformer", width=16))
    assert default.output_order == HEADS  # empty output_order: the order of heads


def test_init_scale_scales_linear_and_embedding_but_not_layer_norm():
    cfg = ModelConfig(arch="transformer", depth=2, width=16)
    torch.manual_seed(0)
    ref = build_transformer(N_BITS, HEADS, cfg)
    torch.manual_seed(0)
    small = build_transformer(N_BITS, HEADS, ModelConfig(arch="transformer", depth=2,
                                                         width=16, init_scale=0.1))
    mods = dict(small.named_modules())
    n_scaled = 0
    for name, module in ref.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            q = getattr(mods[name], pname)
            if isinstance(module, nn.LayerNorm):
                expected = torch.ones_like(p) if pname == "weight" else torch.zeros_like(p)
                assert torch.equal(q, expected) and torch.equal(p, expected)
            else:
                assert isinstance(module, (nn.Linear, nn.Embedding)), name
                torch.testing.assert_close(q, 0.1 * p)
                n_scaled += 1
    assert n_scaled > 0 and any(isinstance(m, nn.Embedding) for m in ref.modules())


# --- read modules ----------------------------------------------------------------------------


@pytest.mark.parametrize("targets", [False, True])
def test_read_modules_run_once_per_forward(targets):
    net = _net(["c", "a", "b"])
    x = _inputs(10)
    _, seen = _reads(net, x, _targets(10) if targets else None)
    for name in net.layer_names:
        assert len(seen[name]) == 1, name  # greedy decoding's later passes do not read
        assert seen[name][0].shape == (10, 16)
    acts = capture(net, x, net.layer_names, batch_size=4)  # 3 forward calls: 3 chunks
    for name in net.layer_names:
        assert acts[name].shape == (10, 16)
        np.testing.assert_array_equal(acts[name], seen[name][0].numpy())


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_readout_is_the_block_output_at_the_separator_or_the_prefix_mean(readout):
    net = _net(readout=readout)
    x = _inputs(8)
    streams = []
    handles = [b.register_forward_hook(lambda _m, _i, out: streams.append(out.detach()))
               for b in net.blocks]
    try:
        _, seen = _reads(net, x, _targets(8))
    finally:
        for h in handles:
            h.remove()
    for i, name in enumerate(net.layer_names):
        prefix = streams[i][:, :N_BITS + 1]
        expected = prefix[:, -1] if readout == "last" else prefix.mean(dim=1)
        assert torch.equal(seen[name][0], expected)


# --- causal masking, teacher forcing, greedy decoding ----------------------------------------


@pytest.mark.parametrize("order", [None, ["c", "a", "b"]])
def test_no_output_position_sees_a_later_one(order):
    net = _net(order)
    emitted = net.output_order
    x, y = _inputs(), _targets()
    base, base_reads = _reads(net, x, y)
    for k, feature in enumerate(emitted):
        flipped = y.clone()
        col = HEADS.index(feature)
        flipped[:, col] = 1 - flipped[:, col]
        out, reads = _reads(net, x, flipped)
        for name in net.layer_names:  # the read positions come before every output token
            assert torch.equal(reads[name][0], base_reads[name][0])
        for j, other in enumerate(emitted):
            if j <= k:  # predicted at or before the position fed with feature k's value
                assert torch.equal(out[other], base[other]), (feature, other)
            else:  # a later output reads the earlier value: teacher forcing works
                assert not torch.allclose(out[other], base[other]), (feature, other)


def test_input_bits_change_the_first_logit_and_the_read_outs():
    net = _net()
    x, y = _inputs(), _targets()
    base, base_reads = _reads(net, x, y)
    changed = x.clone()
    changed[:, 0] = 1 - changed[:, 0]
    out, reads = _reads(net, changed, y)
    assert not torch.allclose(out["a"], base["a"])
    for name in net.layer_names:
        assert not torch.allclose(reads[name][0], base_reads[name][0])


@pytest.mark.parametrize("order", [None, ["b", "c", "a"]])
@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_decoding_is_teacher_forcing_on_its_own_predictions(order, seed):
    net = _net(order, seed=seed, init_scale=3.0)  # large init: both values get predicted
    x = _inputs(64)
    greedy, greedy_reads = _reads(net, x)
    own = torch.stack([(greedy[h] > 0).float() for h in HEADS], dim=1)
    assert 0 < own.mean() < 1
    forced, forced_reads = _reads(net, x, own)
    for h in HEADS:
        assert torch.equal(greedy[h], forced[h]), h
    for name in net.layer_names:
        assert torch.equal(greedy_reads[name][0], forced_reads[name][0])
    # fed the opposite values, some later logit changes: greedy feeds its predictions
    other, _ = _reads(net, x, 1 - own)
    assert not torch.equal(other[net.output_order[-1]], greedy[net.output_order[-1]])


def test_output_order_sets_which_position_predicts_which_feature():
    ab = _net(["a", "b"], heads=["a", "b"])
    ba = _net(["b", "a"], heads=["a", "b"])
    ba.load_state_dict(ab.state_dict())  # same weights, only the emission order differs
    x, y = _inputs(), _targets(n_features=2)
    out_ab, reads_ab = _reads(ab, x, y)
    # ba is fed b = y_a, so its second position sees what ab's does
    out_ba, reads_ba = _reads(ba, x, y.flip(1))
    assert torch.equal(out_ab["a"], out_ba["b"])  # the feature emitted first: at the separator
    assert torch.equal(out_ab["b"], out_ba["a"])  # the second: after the first one's value
    assert not torch.allclose(out_ab["a"], out_ab["b"])
    for name in ab.layer_names:
        assert torch.equal(reads_ab[name][0], reads_ba[name][0])
    greedy_ab, greedy_ba = ab(x), ba(x)
    assert torch.equal(greedy_ab["a"], greedy_ba["b"])


def test_a_single_feature_is_read_at_the_separator():
    net = _net(heads=["a"])
    x = _inputs()
    assert torch.equal(net(x)["a"], net(x, _targets(n_features=1))["a"])
    assert net.seq_len == N_BITS + 1


# --- learning --------------------------------------------------------------------------------


def test_a_small_transformer_learns_two_features():
    task = make_task(TaskConfig(features=(FeatureSpec("easy", "linear", 1),
                                          FeatureSpec("xor", "parity", 2)),
                                n_distractor=5, coding="01", val_size=64, test_size=64,
                                seed=0))
    names = list(task.attrs["feature_names"])
    x = torch.as_tensor(task.inputs.values, dtype=torch.float32)
    y = torch.as_tensor(feature_matrix(task), dtype=torch.float32)
    train, test = (torch.as_tensor(task.split.values == s) for s in ("train", "test"))
    torch.manual_seed(0)
    cfg = ModelConfig(arch="transformer", depth=2, width=32, activation="gelu",
                      transformer=TransformerConfig(n_heads=2, mlp_ratio=2,
                                                    output_order=("xor", "easy")))
    net = build_transformer(x.shape[1], names, cfg)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    x_train, y_train = x[train], y[train]
    net.train()
    for _ in range(300):
        idx = torch.randint(len(x_train), (64,), generator=gen)
        out = net(x_train[idx], y_train[idx])
        logits = torch.stack([out[n] for n in names], dim=1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        out = net(x[test])  # greedy decoding, as evaluation does
    for i, name in enumerate(names):
        acc = ((out[name] > 0).float() == y[test][:, i]).float().mean()
        assert acc >= 0.95, (name, float(acc))
