"""Initialisation families, for comparisons of networks at random initialisation.

Every family but ``default`` sets the weight of each ``Conv*d`` and ``Linear`` layer from its
fan-in (``in_channels * kernel area``) and fan-out, multiplied by a gain ``scale``, sets the
biases to 0, and resets every normalisation layer (batch, instance, group, layer norm) to
weight 1, bias 0 and fresh running statistics — also on a trained model. ``default`` only
multiplies the parameters the model has by ``scale``, normalisation weights and biases
included. With ``W`` the weight viewed as ``(fan_out, fan_in)``:

===================  ====================================================================
family               distribution of the weights
===================  ====================================================================
``kaiming_normal``   N(0, scale² · 2 / fan_in) — He et al. (2015), for ReLU
``kaiming_uniform``  U(−b, b), b = scale · sqrt(6 / fan_in) (same variance)
``xavier_normal``    N(0, scale² · 2 / (fan_in + fan_out)) — Glorot & Bengio (2010)
``xavier_uniform``   U(−b, b), b = scale · sqrt(6 / (fan_in + fan_out))
``orthogonal``       scale · Q with orthonormal rows (``W Wᵀ = scale² I`` when fan_out ≤ fan_in,
                     else orthonormal columns) — Saxe et al. (2014)
``scaled_normal``    N(0, scale² / fan_in) — LeCun normal at scale 1; large scales with
                     saturating activations give the "complex" random functions of
                     Teney et al. (2024), small scales the simple ones
``default``          PyTorch's own initialisation, every parameter multiplied by ``scale``
===================  ====================================================================

Randomness comes from ``seed`` (a private :class:`torch.Generator`) or, without one, from
torch's global generator (so ``torch.manual_seed`` before building a model fixes it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from rsa_bias._api import legacy_call

_Init = Callable[[torch.Tensor, torch.Generator | None, float], None]


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a ``(out, in, *kernel)`` weight."""
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _normal(w: torch.Tensor, gen: torch.Generator | None, std: float) -> None:
    w.copy_(torch.randn(w.shape, generator=gen, dtype=w.dtype) * std)


def _uniform(w: torch.Tensor, gen: torch.Generator | None, bound: float) -> None:
    w.copy_((torch.rand(w.shape, generator=gen, dtype=w.dtype) * 2 - 1) * bound)


def _kaiming_normal(w, gen, scale):
    _normal(w, gen, scale * math.sqrt(2.0 / fans(w)[0]))


def _kaiming_uniform(w, gen, scale):
    _uniform(w, gen, scale * math.sqrt(6.0 / fans(w)[0]))


def _xavier_normal(w, gen, scale):
    _normal(w, gen, scale * math.sqrt(2.0 / sum(fans(w))))


def _xavier_uniform(w, gen, scale):
    _uniform(w, gen, scale * math.sqrt(6.0 / sum(fans(w))))


def _scaled_normal(w, gen, scale):
    _normal(w, gen, scale / math.sqrt(fans(w)[0]))


def _orthogonal(w, gen, scale):
    rows, cols = w.shape[0], math.prod(w.shape[1:])
    a = torch.randn(max(rows, cols), min(rows, cols), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)  # q: orthonormal columns
    q = q * torch.sign(torch.diagonal(r))  # unique, Haar-distributed
    flat = q.T if rows < cols else q
    w.copy_((scale * flat).reshape(w.shape).to(w.dtype))


FAMILIES: dict[str, _Init] = {
    "kaiming_normal": _kaiming_normal,
    "kaiming_uniform": _kaiming_uniform,
    "xavier_normal": _xavier_normal,
    "xavier_uniform": _xavier_uniform,
    "orthogonal": _orthogonal,
    "scaled_normal": _scaled_normal,
}


NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
               nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.GroupNorm,
               nn.LayerNorm)


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The conv and linear layers whose weights a family sets, in module order."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [m for m in model.modules() if isinstance(m, kinds)]


@torch.no_grad()
@legacy_call(positional=("family",))
def initialise(model: nn.Module, *, family: str = "kaiming_normal", scale: float = 1.0,
               seed: int | None = None) -> nn.Module:
    """Re-initialise ``model`` in place from an initialisation family; returns it.

    Parameters
    ----------
    model : torch.nn.Module
        Every conv and linear layer in it is re-initialised from ``family`` (biases set to
        0) and every normalisation layer reset; ``"default"`` keeps PyTorch's initialisation
        and multiplies every parameter by ``scale``.
    family : str, default "kaiming_normal"
        One of :data:`FAMILIES` or ``"default"`` (see the module docstring).
    scale : float, default 1.0
        Gain (> 0) multiplying the family's standard deviation / bound.
    seed : int, optional
        Seeds a private generator. The default ``None`` differs from the package's
        ``seed=0``: it draws from torch's global generator, as a freshly built module does
        (so ``torch.manual_seed`` before building controls it).

    Returns
    -------
    torch.nn.Module
        ``model``, re-initialised in place.

    Examples
    --------
    >>> lin = initialise(nn.Linear(300, 200), family="orthogonal", seed=0)
    >>> bool(torch.allclose(lin.weight @ lin.weight.T, torch.eye(200), atol=1e-5))
    True
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if family == "default":
        for p in model.parameters():
            p.mul_(scale)
        return model
    try:
        init = FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown initialisation family {family!r}; valid: "
                         f"{['default', *FAMILIES]}") from None
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    for layer in weighted_layers(model):
        init(layer.weight, gen, scale)
        if layer.bias is not None:
            layer.bias.zero_()
    for norm in (m for m in model.modules() if isinstance(m, NORM_LAYERS)):
        norm.reset_parameters()  # weight 1, bias 0, running statistics cleared; no randomness
    return model
