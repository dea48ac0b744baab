"""Multi-layer perceptron with one binary read-out head per feature."""

from __future__ import annotations

import torch
from torch import nn

from rsa_bias.config import ModelConfig


class Gaussian(nn.Module):
    """``exp(-x² / 2)``: the Gaussian activation of Teney et al. (2024)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * x * x)


class Sine(nn.Module):
    """``sin(x)``: the sine activation (as in SIREN, without its frequency factor)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gaussian": Gaussian,
    "sine": Sine,
    "linear": nn.Identity,
}


def activation(name: str) -> nn.Module:
    """Activation module by name; the error lists the valid names."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(_ACTIVATIONS)}") from None


class HiddenLayer(nn.Module):
    """Linear -> activation -> dropout. Its output is the layer's representation."""

    def __init__(self, n_in: int, n_out: int, act: str, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.act = activation(act)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.act(self.linear(x)))


class MLP(nn.Module):
    """MLP whose hidden layers are named ``hidden_0 ... hidden_{depth-1}``.

    Each hidden layer is linear -> activation -> dropout; its output is the layer's
    representation. ``forward`` returns a dict ``{head_name: logits (batch,)}``;
    ``layer_names`` lists the addressable hidden layers, ``layer(name)`` returns one.

    Parameters
    ----------
    n_inputs : int
        Number of input units.
    heads : list of str
        Names of the binary read-out heads (one logit each).
    depth : int, default 4
        Number of hidden layers.
    width : int, default 256
        Units per hidden layer.
    activation : str, default "relu"
        Nonlinearity by name: ``"relu"``, ``"gelu"``, ``"tanh"``, ``"sigmoid"``,
        ``"silu"`` (Swish), ``"leaky_relu"``, ``"elu"``, ``"selu"``, ``"gaussian"``
        (``exp(-x²/2)``), ``"sine"`` or ``"linear"`` (none).
    dropout : float, default 0.0
        Dropout probability after each hidden layer (0: no dropout layer).
    init_scale : float, default 1.0
        Every weight and bias is multiplied by this after PyTorch's default
        initialisation (``init_scale < 1`` gives the "rich" small-init regime).

    Examples
    --------
    >>> import torch
    >>> net = MLP(6, ["a", "b"], depth=2, width=8)
    >>> net.layer_names, net(torch.zeros(5, 6))["a"].shape
    (['hidden_0', 'hidden_1'], torch.Size([5]))
    """

    def __init__(self, n_inputs: int, heads: list[str], *, depth: int = 4, width: int = 256,
                 activation: str = "relu", dropout: float = 0.0,
                 init_scale: float = 1.0) -> None:
        super().__init__()
        sizes = [n_inputs] + [width] * depth
        self.hidden = nn.ModuleDict({
            f"hidden_{i}": HiddenLayer(sizes[i], sizes[i + 1], activation, dropout)
            for i in range(depth)
        })
        self.heads = nn.ModuleDict({h: nn.Linear(width, 1) for h in heads})
        if init_scale != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(init_scale)

    @property
    def layer_names(self) -> list[str]:
        return list(self.hidden.keys())

    def layer(self, name: str) -> nn.Module:
        if name not in self.hidden:
            raise KeyError(f"no layer {name!r}; layers: {self.layer_names}")
        return self.hidden[name]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for layer in self.hidden.values():
            x = layer(x)
        return {name: head(x).squeeze(-1) for name, head in self.heads.items()}


def build_mlp(n_inputs: int, heads: list[str], cfg: ModelConfig) -> MLP:
    """Construct an :class:`MLP` from a :class:`~rsa_bias.config.ModelConfig`.

    Seed torch first: the initialisation draws from its global generator. ``cfg.init`` is
    not applied here (:func:`~rsa_bias.networks.build_model` applies it).

    Parameters
    ----------
    n_inputs : int
        Number of input units (the flattened stimulus).
    heads : list of str
        Names of the binary read-out heads.
    cfg : ModelConfig
        ``depth``, ``width``, ``activation``, ``dropout`` and ``init_scale`` of the MLP;
        validated first.

    Returns
    -------
    MLP
        The network, at PyTorch's initialisation scaled by ``cfg.init_scale``.
    """
    cfg.validate()
    return MLP(n_inputs, heads, depth=cfg.depth, width=cfg.width, activation=cfg.activation,
               dropout=cfg.dropout, init_scale=cfg.init_scale)
