"""Random GPT-style models (rsa_bias.networks.random_gpt): the batched computation against a
plain per-model reference, causality, greedy decoding, seeding, LayerNorm gain, errors."""

from __future__ import annotations

import math

import pytest
import torch

from rsa_bias.networks.random_gpt import RandomGPT, random_gpt_generate

BASE = dict(vocab=11, width=16, depth=2, n_heads=4, activation="relu", ln_gain=1.0,
            weight_scale=1.0)
GEN = dict(BASE, n_tokens=9, prompt_len=3)

#: Activations written out here, independent of rsa_bias.networks.mlp.
REF_ACT = {"relu": lambda v: v.clamp(min=0), "sine": torch.sin, "tanh": torch.tanh}


def _model(n_models=3, seed=0, max_len=12, **kw) -> RandomGPT:
    return RandomGPT(**{**BASE, **kw}, n_models=n_models, max_len=max_len, seed=seed)


def _tokens(model: RandomGPT, length: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.vocab, (model.n_models, length), generator=gen)


def reference_logits(model: RandomGPT, k: int, tokens: list[int], act) -> torch.Tensor:
    """Model ``k``'s logits, position by position and head by head, in float64."""
    p = {name: getattr(model, name)[k].double() for name in ("tok_emb", "pos_emb", "unembed")}
    gain, n_heads, d = model.ln_gain, model.n_heads, model.width // model.n_heads

    def ln(v):
        mu = v.mean()
        return (v - mu) / math.sqrt(((v - mu) ** 2).mean() + 1e-5) * gain

    xs = [p["tok_emb"][tok] + p["pos_emb"][t] for t, tok in enumerate(tokens)]
    for block in model.blocks:
        w = {name: m[k].double() for name, m in block.items()}
        hs = [ln(x) for x in xs]
        q, key, val = ([h @ w[n] for h in hs] for n in ("wq", "wk", "wv"))
        new = []
        for t in range(len(xs)):
            heads = []
            for h in range(n_heads):
                sl = slice(h * d, (h + 1) * d)
                scores = [float(q[t][sl] @ key[s][sl]) / math.sqrt(d) for s in range(t + 1)]
                top = max(scores)
                e = [math.exp(sc - top) for sc in scores]  # softmax over s <= t only
                heads.append(sum(e[s] / sum(e) * val[s][sl] for s in range(t + 1)))
            new.append(xs[t] + torch.cat(heads) @ w["wo"])
        xs = [x + act(ln(x) @ w["w1"]) @ w["w2"] for x in new]
    return torch.stack([ln(x) @ p["unembed"] for x in xs])


def test_tokens_have_shape_dtype_and_range():
    out = random_gpt_generate(**GEN, n_models=4, seed=0)
    assert out.shape == (4, 9) and out.dtype == torch.int64 and out.device.type == "cpu"
    assert int(out.min()) >= 0 and int(out.max()) < BASE["vocab"]


def test_same_seed_same_tokens_other_seed_other_tokens():
    a = random_gpt_generate(**GEN, n_models=6, seed=3)
    assert torch.equal(a, random_gpt_generate(**GEN, n_models=6, seed=3))
    assert not torch.equal(a, random_gpt_generate(**GEN, n_models=6, seed=4))


def test_model_i_does_not_depend_on_n_models():
    one, three = _model(n_models=1), _model(n_models=3)
    assert torch.equal(one.tok_emb[0], three.tok_emb[0])
    assert torch.equal(one.blocks[1]["w2"][0], three.blocks[1]["w2"][0])
    assert torch.equal(random_gpt_generate(**GEN, n_models=1, seed=5)[0],
                       random_gpt_generate(**GEN, n_models=3, seed=5)[0])


def test_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    random_gpt_generate(**GEN, n_models=2, seed=0)
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("depth", [0, 2])
def test_logits_are_causal(depth):
    model = _model(depth=depth, ln_gain=3.0)
    a = _tokens(model, 10)
    t = 4
    b = a.clone()
    b[:, t + 1:] = (a[:, t + 1:] + 1 + _tokens(model, 10 - t - 1, seed=2) % 9) % model.vocab
    assert (b[:, t + 1:] != a[:, t + 1:]).all()
    la, lb = model.logits(a), model.logits(b)
    torch.testing.assert_close(la[:, : t + 1], lb[:, : t + 1], rtol=0, atol=1e-6)
    assert not torch.allclose(la[:, t + 1:], lb[:, t + 1:])  # the later positions do see it


@pytest.mark.parametrize(("activation", "depth", "n_heads", "ln_gain"),
                         [("relu", 2, 4, 1.0), ("sine", 2, 2, 3.0), ("tanh", 1, 1, 0.5),
                          ("relu", 0, 4, 2.0)])
def test_batched_equals_per_model_reference(activation, depth, n_heads, ln_gain):
    model = _model(activation=activation, depth=depth, n_heads=n_heads, ln_gain=ln_gain,
                   seed=7)
    tokens = _tokens(model, 8)
    batched = model.logits(tokens)
    assert batched.shape == (3, 8, model.vocab) and batched.dtype == torch.float32
    for k in range(3):
        ref = reference_logits(model, k, tokens[k].tolist(), REF_ACT[activation])
        torch.testing.assert_close(batched[k].double(), ref, rtol=1e-5, atol=1e-5)


def test_models_differ_from_each_other():
    model = _model()
    assert not torch.allclose(model.tok_emb[0], model.tok_emb[1])
    assert not torch.allclose(model.blocks[0]["wq"][1], model.blocks[0]["wq"][2])


def test_generation_is_greedy():
    model = _model(n_models=5, activation="sine", ln_gain=4.0, max_len=15)
    prompt = _tokens(model, 3)
    out = model.generate(prompt, 12)
    seq = torch.cat([prompt, out], dim=1)
    for j in range(12):
        prefix = seq[:, : 3 + j]
        assert torch.equal(out[:, j], model.logits(prefix)[:, -1].argmax(-1))


def test_random_gpt_generate_continues_its_documented_prompt_greedily():
    seed, n = 2, 4
    out = random_gpt_generate(**GEN, n_models=n, seed=seed)
    model = _model(n_models=n, seed=seed, max_len=12)
    gen = torch.Generator().manual_seed(seed + 2**32)
    prompt = torch.stack([torch.randint(0, BASE["vocab"], (3,), generator=gen)
                          for _ in range(n)])
    seq = torch.cat([prompt, out], dim=1)
    logits = model.logits(seq)  # causal: position t sees the prefix up to t
    assert torch.equal(out, logits[:, 2:-1].argmax(-1))


def test_depth_zero_logits_scale_linearly_with_ln_gain():
    tokens = _tokens(_model(depth=0), 10)
    base = _model(depth=0, ln_gain=1.0).logits(tokens)
    assert base.abs().max() > 0.1
    for gain in (0.25, 2.0, 8.0):  # powers of two: exact in float
        assert torch.equal(_model(depth=0, ln_gain=gain).logits(tokens), gain * base)
    torch.testing.assert_close(_model(depth=0, ln_gain=3.7).logits(tokens), 3.7 * base,
                               rtol=1e-5, atol=1e-6)


def test_final_layer_norm_normalises():
    """With depth 0 and a zero-mean, unit-variance LN output times gain, the logits of every
    position are an LN output in the row space of the unembedding."""
    model = _model(depth=0, ln_gain=2.0, vocab=40)
    tokens = _tokens(model, 6)
    logits = model.logits(tokens)
    h = torch.linalg.lstsq(model.unembed.transpose(1, 2), logits.transpose(1, 2)).solution
    h = h.transpose(1, 2)  # (n_models, T, width): the final LN's output
    torch.testing.assert_close(h.mean(-1), torch.zeros(3, 6), atol=1e-4, rtol=0)
    torch.testing.assert_close(h.std(-1, unbiased=False), torch.full((3, 6), 2.0),
                               atol=1e-3, rtol=0)


@pytest.mark.parametrize(("change", "match"), [
    (dict(width=10, n_heads=4), "divisible by n_heads"),
    (dict(vocab=1), "vocab"),
    (dict(n_tokens=0), "n_tokens"),
    (dict(prompt_len=0), "prompt_len"),
    (dict(depth=-1), "depth"),
    (dict(activation="swishy"), "unknown activation"),
    (dict(ln_gain=0.0), "ln_gain"),
    (dict(weight_scale=float("nan")), "weight_scale"),
])
def test_bad_arguments_raise(change, match):
    with pytest.raises(ValueError, match=match):
        random_gpt_generate(**{**GEN, **change}, n_models=2, seed=0)


def test_logits_reject_bad_tokens():
    model = _model()
    with pytest.raises(ValueError, match="vocab"):
        model.logits(torch.full((3, 4), model.vocab))
    with pytest.raises(ValueError, match="max_len"):
        model.logits(torch.zeros(3, 13, dtype=torch.long))


def test_print_distinct_tokens_relu_vs_sine(capsys):
    """For information only: mean distinct tokens per sequence, ln_gain 8, depth 2."""
    means = {}
    for act in ("relu", "sine"):
        out = random_gpt_generate(n_models=20, n_tokens=128, vocab=16, width=64, depth=2,
                                  n_heads=4, activation=act, ln_gain=8.0, weight_scale=1.0,
                                  prompt_len=8, seed=0)
        means[act] = sum(len(set(row.tolist())) for row in out) / len(out)
    with capsys.disabled():
        print(f"\nrandom GPT mean distinct tokens (of 16, 128 generated): "
              f"relu {means['relu']:.2f}, sine {means['sine']:.2f}")
