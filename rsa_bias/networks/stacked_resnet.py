"""Batched ensembles of :class:`~rsa_bias.networks.resnet.ResNet` s (see
:mod:`rsa_bias.networks.stacked`).

Every convolution of the ``k`` members is one grouped convolution (``groups=k``) over
``(batch, k * channel, y, x)``, followed by the per-member batch or group normalisation of
:class:`~rsa_bias.networks.stacked.StackedConv` (each member its own statistics and running
averages); residual sums and identity shortcuts act channel-wise and so stay within each
member. Importing this module registers :class:`StackedResNet` with
:func:`~rsa_bias.networks.stacked.stack_models` (which imports it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rsa_bias.networks.cnn import GlobalAveragePool
from rsa_bias.networks.resnet import ConvNorm, ResidualBlock, ResNet
from rsa_bias.networks.stacked import (
    _STACKED,
    StackedConv,
    StackedDropout,
    StackedHidden,
    StackedLinear,
    StackedNetwork,
    _stack,
)


class StackedConvNorm(StackedConv):
    """``k`` :class:`~rsa_bias.networks.resnet.ConvNorm` s on ``(batch, k * channel, y, x)``:
    one grouped convolution (the members' stride, a bias only if they have one), then
    :class:`~rsa_bias.networks.stacked.StackedConv`'s per-member normalisation and the
    activation."""

    def __init__(self, units: Sequence[ConvNorm]) -> None:
        nn.Module.__init__(self)  # StackedConv's own setup reads a ConvBlock's layout
        first = units[0]
        self.k = len(units)
        self.stride, self.padding = first.conv.stride, first.conv.padding
        self.weight = _stack([u.conv.weight for u in units])  # (k, out, in, ky, kx)
        if first.conv.bias is None:
            self.register_parameter("bias", None)
        else:
            self.bias = _stack([u.conv.bias for u in units])
        self.norm_kind = type(first.norm).__name__
        if isinstance(first.norm, (nn.BatchNorm2d, nn.GroupNorm)):
            self.norm_weight = _stack([u.norm.weight for u in units])
            self.norm_bias = _stack([u.norm.bias for u in units])
            self.eps = first.norm.eps
        if isinstance(first.norm, nn.BatchNorm2d):
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, torch.stack([getattr(u.norm, name) for u in units]))
            self.momentum = first.norm.momentum
        elif isinstance(first.norm, nn.GroupNorm):
            self.groups = first.norm.num_groups
        self.act = first.act

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """``(batch, k * c_in, y, x) -> (batch, k * c_out, y', x')``; ``shared``: one
        ``(batch, c_in, y, x)`` input for every member."""
        k, c_out = self.weight.shape[:2]
        w = self.weight.reshape(k * c_out, *self.weight.shape[2:])
        bias = None if self.bias is None else self.bias.reshape(-1)
        x = F.conv2d(x, w, bias, stride=self.stride, padding=self.padding,
                     groups=1 if shared else k)
        return self.act(self._norm(x))


class StackedResidualBlock(nn.Module):
    """``k`` :class:`~rsa_bias.networks.resnet.ResidualBlock` s on
    ``(batch, k * channel, y, x)``."""

    def __init__(self, blocks: Sequence[ResidualBlock]) -> None:
        super().__init__()
        self.conv1 = StackedConvNorm([b.conv1 for b in blocks])
        self.conv2 = StackedConvNorm([b.conv2 for b in blocks])
        projects = isinstance(blocks[0].shortcut, ConvNorm)
        self.shortcut = StackedConvNorm([b.shortcut for b in blocks]) if projects else None
        self.act = blocks[0].act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv2(self.conv1(x)) + skip)

    def member(self, i: int, prefix: str) -> dict[str, torch.Tensor]:
        out = self.conv1.member(i, f"{prefix}conv1.") | self.conv2.member(i, f"{prefix}conv2.")
        if self.shortcut is not None:
            out |= self.shortcut.member(i, f"{prefix}shortcut.")
        return out


class StackedStage(nn.Module):
    """``k`` ResNet stages (``nn.Sequential`` s of residual blocks); the output is the last
    block's."""

    def __init__(self, stages: Sequence[nn.Sequential]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([StackedResidualBlock([s[j] for s in stages])
                                     for j in range(len(stages[0]))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def member(self, i: int, prefix: str) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for j, block in enumerate(self.blocks):
            out |= block.member(i, f"{prefix}{j}.")
        return out


class StackedResNet(StackedNetwork):
    """``k`` :class:`~rsa_bias.networks.resnet.ResNet` s (see
    :class:`~rsa_bias.networks.stacked.StackedNetwork`).

    The stem and the stages run on ``(batch, k * channel, y, x)`` (a shared input reaches
    the stem's convolution once, unexpanded); the global average pool returns to
    ``(k, batch, channel)`` for the fc layers and heads. Recorded stem and stage outputs are
    given back as ``(k, batch, channel, y, x)``.

    Parameters
    ----------
    members : sequence of ResNet
        Same-shaped networks; their parameters and buffers are copied.
    dropout : StackedDropout
        The members' dropout of the fc layers.
    """

    def __init__(self, members: Sequence[ResNet], dropout: StackedDropout) -> None:
        super().__init__()
        first = members[0]
        self.n_members = len(members)
        self.layer_names = first.layer_names
        self.conv_names, self.fc_names = ["stem", *first.stages], list(first.fc)
        self.layers = nn.ModuleDict(
            {"stem": StackedConvNorm([m.stem for m in members])}
            | {name: StackedStage([m.stages[name] for m in members]) for name in first.stages}
            | {name: StackedHidden([m.fc[name] for m in members], dropout)
               for name in first.fc})
        self.prefixes = ({"stem": ""} | dict.fromkeys(first.stages, "stages.")
                         | dict.fromkeys(first.fc, "fc."))
        self.n_values = dict(first.n_values)
        self.heads = nn.ModuleDict({h: StackedLinear([m.heads[h] for m in members])
                                    for h in first.heads})

    def forward_layers(self, x: torch.Tensor, shared: bool = False):
        k = self.n_members
        if not shared:  # (k, batch, c, y, x) -> (batch, k * c, y, x)
            x = x.transpose(0, 1).reshape(x.shape[1], -1, *x.shape[3:])
        seen = {}
        x = self.layers["stem"](x, shared)
        seen["stem"] = x
        for name in self.conv_names[1:]:
            x = self.layers[name](x)
            seen[name] = x
        seen = {name: a.reshape(a.shape[0], k, -1, *a.shape[2:]).transpose(0, 1)
                for name, a in seen.items()}
        x = GlobalAveragePool()(x).reshape(x.shape[0], k, -1).transpose(0, 1)
        seen["pool"] = x
        for name in self.fc_names:
            x = self.layers[name](x)
            seen[name] = x
        return self._heads(x), seen


_STACKED[ResNet] = StackedResNet
