"""GPT-style decoder that reads the input bits as tokens and emits one token per feature.

The sequence of one stimulus is its ``n_bits`` input bits (token ``"1"`` where the input is
> 0, ``"0"`` elsewhere, so 0/1 and ±1 codings give the same tokens), a separator, then the
value tokens of the features in emission order (``output_order``) but the last. The j-th
emitted feature is predicted at position ``n_bits + j`` (the separator for the first one)
from the positions before it and itself: attention is causal, so no position sees a later
one. Output value tokens ``"0"``/``"1"`` have embeddings of their own, distinct from the
input bits'; which feature a token belongs to is told by its position.

Training uses teacher forcing (the true values are fed, one pass: ``forward(x, targets)``);
without ``targets`` the network decodes greedily, feeding its own predictions, as
evaluation does. The representation of block ``i`` (``layer("block_i")``) is its output
residual stream at the separator (``readout="last"``) or its mean over the positions
``0 .. n_bits`` (``"mean"``), which do not depend on the outputs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rsa_bias.config import ModelConfig
from rsa_bias.networks.mlp import activation

#: Token ids: input bits 0 and 1, the separator, output values 0 and 1.
BIT_0, BIT_1, SEPARATOR, VALUE_0, VALUE_1 = range(5)
N_TOKENS = 5
READOUTS = ("last", "mean")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``t`` attends to positions ``<= t``.

    Parameters
    ----------
    width : int
        Residual stream width (divisible by ``n_heads``).
    n_heads : int
        Number of attention heads, each of width ``width // n_heads``.
    """

    def __init__(self, width: int, n_heads: int) -> None:
        super().__init__()
        if width % n_heads:
            raise ValueError(f"{n_heads} heads must divide the width {width}")
        self.n_heads = n_heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, width) -> (batch, head, seq, head width)``."""
        batch, seq, width = t.shape
        return t.view(batch, seq, self.n_heads, width // self.n_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, width) -> (batch, seq, width)``."""
        q, k, v = (self._split(proj(x)) for proj in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(x.shape))


class Block(nn.Module):
    """Pre-norm block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``, dropout on both branches.

    Parameters
    ----------
    width : int
        Residual stream width.
    n_heads : int
        Attention heads.
    mlp_ratio : int
        The MLP's hidden width is ``mlp_ratio * width``.
    act : str
        The MLP's nonlinearity, by name (see :func:`~rsa_bias.networks.mlp.activation`).
    dropout : float
        Dropout probability on the output of each branch (0: none).
    """

    def __init__(self, width: int, n_heads: int, mlp_ratio: int, act: str,
                 dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, n_heads)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), activation(act),
                                 nn.Linear(mlp_ratio * width, width))
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm_attn(x)))
        return x + self.drop(self.mlp(self.norm_mlp(x)))


class BlockReadout(nn.Identity):
    """Identity applied once per forward call to a block's ``(batch, width)`` representation,
    so that a forward hook on it (``layer(name)``) records that representation."""


class Transformer(nn.Module):
    """Causal Transformer over input-bit tokens whose blocks are ``block_0 ... block_{depth-1}``.

    The sequence is the ``n_bits`` input bits, a separator and the value tokens of the
    features in ``output_order`` but the last (never fed); the j-th emitted feature's logit
    (> 0: value 1) is a shared unembedding of the final layer norm at position
    ``n_bits + j``. ``forward(x)`` decodes greedily (its own predictions are fed, as in
    evaluation); ``forward(x, targets)`` feeds the true values (teacher forcing, one pass),
    which the training loop does in training mode (``teacher_forced = True``). Both return
    ``{feature: logits (batch,)}`` in the order of ``heads``. ``layer("block_i")`` is an
    identity module applied once per forward call to block ``i``'s output residual stream at
    the separator (``readout="last"``) or averaged over positions ``0 .. n_bits``
    (``"mean"``), shape ``(batch, width)``.

    Parameters
    ----------
    n_bits : int
        Number of input bits (tokens before the separator).
    heads : list of str
        Names of the binary features, one logit each.
    depth : int, default 2
        Number of blocks.
    width : int, default 64
        Residual stream width.
    n_heads : int, default 4
        Attention heads per block (must divide ``width``).
    mlp_ratio : int, default 4
        Each block's MLP has ``mlp_ratio * width`` hidden units.
    activation : str, default "gelu"
        The MLPs' nonlinearity by name (as for :class:`~rsa_bias.networks.MLP`).
    dropout : float, default 0.0
        Dropout probability on each block's attention and MLP branch (0: none).
    init_scale : float, default 1.0
        Every weight and bias of the ``Linear`` and ``Embedding`` layers is multiplied by
        this after PyTorch's default initialisation (the embeddings' N(0, 1) included);
        the layer norms stay at weight 1, bias 0.
    output_order : list of str, optional
        The order in which the features are emitted (each of ``heads`` exactly once);
        default the order of ``heads``.
    readout : str, default "last"
        ``"last"`` (the separator position) or ``"mean"`` (mean over positions
        ``0 .. n_bits``): how a block's residual stream becomes its representation.

    Raises
    ------
    ValueError
        For an ``output_order`` that is not an ordering of ``heads``, an unknown
        ``readout``, or ``n_heads`` not dividing ``width``.

    Examples
    --------
    >>> import torch
    >>> net = Transformer(6, ["a", "b"], depth=2, width=8, n_heads=2)
    >>> out = net(torch.zeros(5, 6))
    >>> net.layer_names, list(out), out["b"].shape
    (['block_0', 'block_1'], ['a', 'b'], torch.Size([5]))
    """

    teacher_forced = True

    def __init__(self, n_bits: int, heads: list[str], *, depth: int = 2, width: int = 64,
                 n_heads: int = 4, mlp_ratio: int = 4, activation: str = "gelu",
                 dropout: float = 0.0, init_scale: float = 1.0,
                 output_order: list[str] | None = None, readout: str = "last") -> None:
        super().__init__()
        heads = list(heads)
        order = list(output_order) if output_order else list(heads)
        if not heads:
            raise ValueError("the Transformer needs at least one feature")
        if sorted(order) != sorted(heads) or len(set(order)) != len(order):
            raise ValueError(f"output_order {order} must name each feature {heads} once")
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; valid: {list(READOUTS)}")
        self.n_bits = n_bits
        self.feature_names = heads
        self.output_order = order
        self.readout = readout
        #: position of each feature (order of ``heads``) in the emission order
        self._emitted_at = [order.index(h) for h in heads]
        self.seq_len = n_bits + len(order)
        self.token_embedding = nn.Embedding(N_TOKENS, width)
        self.position_embedding = nn.Embedding(self.seq_len, width)
        self.blocks = nn.ModuleList(
            Block(width, n_heads, mlp_ratio, activation, dropout) for _ in range(depth))
        self.reads = nn.ModuleDict({f"block_{i}": BlockReadout() for i in range(depth)})
        self.norm = nn.LayerNorm(width)
        self.unembed = nn.Linear(width, 1)
        if init_scale != 1.0:
            with torch.no_grad():
                for module in self.modules():
                    if isinstance(module, (nn.Linear, nn.Embedding)):
                        for p in module.parameters(recurse=False):
                            p.mul_(init_scale)

    @property
    def layer_names(self) -> list[str]:
        return list(self.reads.keys())

    def layer(self, name: str) -> nn.Module:
        if name not in self.reads:
            raise KeyError(f"no layer {name!r}; layers: {self.layer_names}")
        return self.reads[name]

    def tokens(self, x: torch.Tensor, fed: torch.Tensor) -> torch.Tensor:
        """Token ids ``(batch, seq_len)`` of inputs ``x`` and fed output values.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``(batch, n_bits)``; a bit > 0 is token ``"1"``.
        fed : torch.Tensor
            Output values ``(batch, n_features - 1)`` in emission order, 0/1 (> 0.5: 1).

        Returns
        -------
        torch.Tensor
            Long ``(batch, n_bits + n_features)``: bits, separator, fed value tokens.
        """
        if x.ndim != 2 or x.shape[1] != self.n_bits:
            raise ValueError(f"expected inputs of shape (batch, {self.n_bits}), got "
                             f"{tuple(x.shape)}")
        bits = (x > 0).long() + BIT_0
        sep = torch.full((len(x), 1), SEPARATOR, dtype=torch.long, device=x.device)
        values = (fed > 0.5).long() + VALUE_0
        return torch.cat([bits, sep, values], dim=1)

    def _run(self, tokens: torch.Tensor, read: bool) -> torch.Tensor:
        """Final-layer logits at the output positions, ``(batch, n_features)``; ``read``:
        pass each block's representation through its read module."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.token_embedding(tokens) + self.position_embedding(positions)
        for name, block in zip(self.reads, self.blocks, strict=True):
            h = block(h)
            if read:
                prefix = h[:, :self.n_bits + 1]
                rep = prefix[:, -1] if self.readout == "last" else prefix.mean(dim=1)
                self.reads[name](rep)
        return self.unembed(self.norm(h[:, self.n_bits:])).squeeze(-1)

    def forward(self, x: torch.Tensor,
                targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits of every feature, by teacher forcing (``targets``) or greedy decoding.

        Parameters
        ----------
        x : torch.Tensor
            Inputs ``(batch, n_bits)`` (0/1 or ±1 coded).
        targets : torch.Tensor, optional
            True values ``(batch, n_features)`` in the order of ``heads``, 0/1; fed as the
            output tokens (one pass). Without them each output is predicted from the
            network's own earlier predictions (one pass per feature, every pass over the
            full sequence, later tokens placeholders the causal mask hides).

        Returns
        -------
        dict of str to torch.Tensor
            ``{feature: logits (batch,)}`` in the order of ``heads``.
        """
        n_out = len(self.output_order)
        if targets is not None:
            order = [self.feature_names.index(f) for f in self.output_order[:-1]]
            logits = self._run(self.tokens(x, targets[:, order]), read=True)
        else:
            fed = torch.zeros(len(x), n_out - 1, device=x.device)
            columns = []
            for j in range(n_out):
                column = self._run(self.tokens(x, fed), read=j == 0)[:, j]
                columns.append(column)
                if j < n_out - 1:
                    fed[:, j] = (column > 0).to(fed.dtype)
            logits = torch.stack(columns, dim=1)
        return {h: logits[:, j] for h, j in zip(self.feature_names, self._emitted_at, strict=True)}


def build_transformer(n_bits: int, heads: list[str], cfg: ModelConfig) -> Transformer:
    """Construct a :class:`Transformer` from a :class:`~rsa_bias.config.ModelConfig`.

    Seed torch first: the initialisation draws from its global generator. ``cfg.init`` is
    not applied here.

    Parameters
    ----------
    n_bits : int
        Number of input bits (the flattened stimulus).
    heads : list of str
        Names of the binary features.
    cfg : ModelConfig
        ``depth`` (blocks), ``width`` (residual stream), ``activation``, ``dropout``,
        ``init_scale`` and the ``transformer`` table (``n_heads``, ``mlp_ratio``,
        ``output_order``, ``readout``); validated first.

    Returns
    -------
    Transformer
        The network, at PyTorch's initialisation with its linear and embedding layers
        scaled by ``cfg.init_scale``.

    Examples
    --------
    >>> from rsa_bias.config import ModelConfig
    >>> cfg = ModelConfig(arch="transformer", depth=1, width=16)
    >>> build_transformer(4, ["easy", "hard"], cfg).layer_names
    ['block_0']
    """
    cfg.validate()
    t = cfg.transformer
    return Transformer(n_bits, list(heads), depth=cfg.depth, width=cfg.width,
                       n_heads=t.n_heads, mlp_ratio=t.mlp_ratio, activation=cfg.activation,
                       dropout=cfg.dropout, init_scale=cfg.init_scale,
                       output_order=list(t.output_order) or None, readout=t.readout)
