"""Random (untrained) GPT-style language models and the tokens they generate greedily.

The Neural Redshift paper (Teney et al. 2024) asks how simple (compressible) the token
sequences are that an *untrained* transformer language model produces. A model here is

* a token embedding ``(vocab, width)`` plus a learned-position one ``(max_len, width)``;
* ``depth`` pre-norm blocks ``x = x + attn(LN(x)); x = x + mlp(LN(x))``, where ``attn`` is
  causal multi-head self-attention (``n_heads`` heads of ``width // n_heads`` units, scores
  scaled by ``1 / sqrt(head width)``, position ``t`` attends to positions ``<= t``; query,
  key, value and output projections ``width -> width``) and ``mlp`` is
  ``width -> 4 * width -> activation -> width``;
* a final LN, then a linear unembedding ``width -> vocab`` giving the logits.

Every LayerNorm is the standard normalisation ``(x - mean) / sqrt(var + 1e-5)`` over the
features, multiplied by the constant ``ln_gain`` (no learned bias). Every weight matrix is
drawn N(0, weight_scale² / fan_in), fan_in being its input width (``4 * width`` for the
MLP's second layer); the two embeddings use fan_in = ``width`` (a lookup table has no
input width). All biases are zero, so they are omitted.

All models of one call are one batched computation: every parameter has a leading model
axis. The parameters come from one ``torch.Generator`` seeded with ``seed`` (the global RNG
is never touched), drawn model by model in a fixed order, so model ``i`` is the same model
whatever ``n_models > i`` (given the other arguments). The prompts come from a second
generator seeded with ``seed + 2**32``, also model by model.
"""

from __future__ import annotations

import math

import torch

from rsa_bias.networks.mlp import activation as activation_module

_PROMPT_STREAM = 2**32  # offset of the prompt generator's seed from the parameters' seed


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


class RandomGPT:
    """A batch of ``n_models`` random pre-norm GPT-style models (see the module docstring).

    Parameters are plain float32 tensors with a leading model axis: ``tok_emb``
    ``(n_models, vocab, width)``, ``pos_emb`` ``(n_models, max_len, width)``, ``unembed``
    ``(n_models, width, vocab)`` and ``blocks``, a list of ``depth`` dicts with ``"wq"``,
    ``"wk"``, ``"wv"``, ``"wo"`` ``(n_models, width, width)``, ``"w1"``
    ``(n_models, width, 4 * width)`` and ``"w2"`` ``(n_models, 4 * width, width)``. Every
    matrix multiplies from the right (``x @ w``).

    Parameters
    ----------
    n_models : int
        Number of independent models (>= 1).
    vocab : int
        Vocabulary size (>= 2).
    width : int
        Residual-stream width (>= 1, divisible by ``n_heads``).
    depth : int
        Number of transformer blocks (>= 0; 0: embeddings -> final LN -> unembedding).
    n_heads : int
        Attention heads per block (>= 1).
    activation : str
        MLP nonlinearity by name (see :func:`rsa_bias.networks.mlp.activation`).
    ln_gain : float
        Constant weight of every LayerNorm (> 0).
    weight_scale : float
        Weights are N(0, weight_scale² / fan_in) (> 0).
    max_len : int
        Number of learned positions: the longest sequence :meth:`logits` accepts (>= 1).
    seed : int
        Seed of the ``torch.Generator`` the parameters are drawn from.
    device : str, default "cpu"
        Where the computation runs (parameters are drawn on the CPU, then moved).
    """

    def __init__(self, *, n_models: int, vocab: int, width: int, depth: int, n_heads: int,
                 activation: str, ln_gain: float, weight_scale: float, max_len: int,
                 seed: int, device: str = "cpu") -> None:
        self.n_models = _check_int("n_models", n_models, 1)
        self.vocab = _check_int("vocab", vocab, 2)
        self.width = _check_int("width", width, 1)
        self.depth = _check_int("depth", depth, 0)
        self.n_heads = _check_int("n_heads", n_heads, 1)
        self.max_len = _check_int("max_len", max_len, 1)
        if width % n_heads:
            raise ValueError(f"width ({width}) must be divisible by n_heads ({n_heads}); "
                             f"choose a width that is a multiple of n_heads")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63); got {seed!r}")
        self.act = activation_module(activation)
        self.ln_gain = _check_positive("ln_gain", ln_gain)
        scale = _check_positive("weight_scale", weight_scale)
        self.device = torch.device(device)

        gen = torch.Generator().manual_seed(seed)
        w, h = width, 4 * width
        shapes = [("tok_emb", vocab, w, w), ("pos_emb", max_len, w, w)]
        for b in range(depth):
            shapes += [(f"{b}.{k}", w, w, w) for k in ("wq", "wk", "wv", "wo")]
            shapes += [(f"{b}.w1", w, h, w), (f"{b}.w2", h, w, h)]
        shapes.append(("unembed", w, vocab, w))
        drawn: dict[str, list[torch.Tensor]] = {name: [] for name, *_ in shapes}
        for _ in range(n_models):  # model by model: model i does not depend on n_models
            for name, rows, cols, fan_in in shapes:
                drawn[name].append(torch.randn(rows, cols, generator=gen) * scale / fan_in**0.5)
        params = {k: torch.stack(v).to(self.device) for k, v in drawn.items()}
        self.tok_emb, self.pos_emb, self.unembed = (params[k] for k in
                                                    ("tok_emb", "pos_emb", "unembed"))
        self.blocks = [{k: params[f"{b}.{k}"] for k in ("wq", "wk", "wv", "wo", "w1", "w2")}
                       for b in range(depth)]

    def _ln(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * self.ln_gain

    def _attention(self, x: torch.Tensor, block: dict[str, torch.Tensor]) -> torch.Tensor:
        m, t, w = x.shape
        d = w // self.n_heads
        q, k, v = (torch.einsum("mtw,mwv->mtv", x, block[n]).reshape(m, t, self.n_heads, d)
                   for n in ("wq", "wk", "wv"))
        scores = torch.einsum("mthd,mshd->mhts", q, k) / math.sqrt(d)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        out = torch.einsum("mhts,mshd->mthd", weights, v).reshape(m, t, w)
        return torch.einsum("mtw,mwv->mtv", out, block["wo"])

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """The next-token logits of every model at every position of its sequence.

        Parameters
        ----------
        tokens : torch.Tensor
            ``(n_models, T)`` integer tokens in ``[0, vocab)``, ``1 <= T <= max_len``;
            row ``i`` is fed to model ``i``.

        Returns
        -------
        torch.Tensor
            ``(n_models, T, vocab)`` float32 on the model's device; position ``t`` depends
            only on the tokens at positions ``<= t``.
        """
        if tokens.dim() != 2 or tokens.shape[0] != self.n_models or tokens.is_floating_point() \
                or tokens.dtype == torch.bool or not 1 <= tokens.shape[1] <= self.max_len:
            raise ValueError(f"tokens must be integers of shape (n_models={self.n_models}, T), "
                             f"1 <= T <= max_len={self.max_len}; got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        tokens = tokens.to(self.device, torch.long)
        if tokens.min() < 0 or tokens.max() >= self.vocab:
            raise ValueError(f"tokens must lie in [0, vocab={self.vocab})")
        t = tokens.shape[1]
        with torch.no_grad():
            rows = torch.arange(self.n_models, device=self.device)[:, None]
            x = self.tok_emb[rows, tokens] + self.pos_emb[:, :t]
            for block in self.blocks:
                x = x + self._attention(self._ln(x), block)
                hidden = self.act(torch.einsum("mtw,mwh->mth", self._ln(x), block["w1"]))
                x = x + torch.einsum("mth,mhw->mtw", hidden, block["w2"])
            return torch.einsum("mtw,mwv->mtv", self._ln(x), self.unembed)

    def generate(self, prompt: torch.Tensor, n_tokens: int) -> torch.Tensor:
        """Greedy continuation: each new token is the argmax of the logits of the prefix.

        Parameters
        ----------
        prompt : torch.Tensor
            ``(n_models, P)`` integer tokens in ``[0, vocab)``, ``P >= 1``.
        n_tokens : int
            Number of tokens to generate (>= 1; ``P + n_tokens <= max_len``).

        Returns
        -------
        torch.Tensor
            ``(n_models, n_tokens)`` int64 on the CPU: the new tokens, without the prompt.
        """
        _check_int("n_tokens", n_tokens, 1)
        if prompt.dim() != 2 or prompt.shape[1] + n_tokens > self.max_len:
            raise ValueError(f"prompt length + n_tokens must be <= max_len={self.max_len}; "
                             f"got prompt shape {tuple(prompt.shape)}, n_tokens={n_tokens}")
        seq = prompt.to(self.device, torch.long)
        for _ in range(n_tokens):
            nxt = self.logits(seq)[:, -1].argmax(-1)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
        return seq[:, prompt.shape[1]:].cpu()


def random_gpt_generate(*, n_models: int, n_tokens: int, vocab: int, width: int, depth: int,
                        n_heads: int, activation: str, ln_gain: float, weight_scale: float,
                        prompt_len: int, seed: int, device: str = "cpu") -> torch.Tensor:
    """The tokens ``n_models`` random GPT-style models generate greedily after random prompts.

    Builds a :class:`RandomGPT` with ``max_len = prompt_len + n_tokens``, draws each model
    its own prompt uniformly from the vocabulary (generator seeded with ``seed + 2**32``,
    model by model) and continues it greedily (argmax of the logits).

    Parameters
    ----------
    n_models : int
        Number of independent models (>= 1), run as one batched computation.
    n_tokens : int
        Tokens each model generates (>= 1).
    vocab : int
        Vocabulary size (>= 2).
    width : int
        Residual-stream width (divisible by ``n_heads``).
    depth : int
        Number of transformer blocks (>= 0).
    n_heads : int
        Attention heads per block (>= 1).
    activation : str
        MLP nonlinearity by name (``"relu"``, ``"gelu"``, ``"sine"``, ...).
    ln_gain : float
        Constant weight of every LayerNorm (> 0).
    weight_scale : float
        Weights are N(0, weight_scale² / fan_in) (> 0).
    prompt_len : int
        Length of each model's random prompt (>= 1); the prompt is not returned.
    seed : int
        Seed of the parameters (and, offset by ``2**32``, of the prompts).
    device : str, default "cpu"
        Where the models run.

    Returns
    -------
    torch.Tensor
        ``(n_models, n_tokens)`` int64 on the CPU, values in ``[0, vocab)``; row ``i`` is
        what model ``i`` generated.
    """
    _check_int("n_tokens", n_tokens, 1)
    _check_int("prompt_len", prompt_len, 1)
    model = RandomGPT(n_models=n_models, vocab=vocab, width=width, depth=depth,
                      n_heads=n_heads, activation=activation, ln_gain=ln_gain,
                      weight_scale=weight_scale, max_len=prompt_len + n_tokens, seed=seed,
                      device=device)
    gen = torch.Generator().manual_seed(seed + _PROMPT_STREAM)
    prompt = torch.stack([torch.randint(0, vocab, (prompt_len,), generator=gen)
                          for _ in range(n_models)])
    return model.generate(prompt, n_tokens)
