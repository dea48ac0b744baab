"""Residual network with named layers, for the CNN-versus-ResNet comparison on images.

Layers, in forward order: ``stem`` (conv -> norm -> activation), ``stage_0 ... stage_{n-1}``
(each a run of basic residual blocks, the first block of every stage after the first
halving the image side), ``pool`` (global average over space: the network runs on any input
size) and ``fc_0 ...`` (linear -> activation -> dropout). Read-out heads follow: one logit
for a binary feature, one per value for a feature with more values.

A basic residual block (He et al. 2016) computes ``act(norm(conv(act(norm(conv(x))))) +
shortcut(x))``; the shortcut is the identity, or a 1x1 convolution (stride 2 when the block
downsamples) followed by a norm when the block changes the shape. Convolutions followed by
a batch or group norm have no bias (the norm's own bias replaces it); with ``norm="none"``
they have one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rsa_bias.config import ModelConfig
from rsa_bias.networks.cnn import GlobalAveragePool, _head_outputs, normalisation
from rsa_bias.networks.init import initialise
from rsa_bias.networks.mlp import HiddenLayer, activation


class ConvNorm(nn.Module):
    """Conv (``stride``, same padding) -> norm -> activation (``"linear"``: none).

    The unit of :class:`ResNet`: its stem, both convolutions of a residual block and a
    projection shortcut. The convolution has a bias only without normalisation.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel_size : int
        Side of the square kernel (odd; padding ``kernel_size // 2``).
    stride : int
        Stride of the convolution (2 halves the image side, rounding up).
    norm : str
        ``"none"``, ``"batch"`` or ``"group"`` (see :func:`normalisation`).
    groups : int
        Number of groups of ``norm="group"``.
    act : str
        Activation after the norm, by name (``"linear"``: none).
    """

    def __init__(self, c_in: int, c_out: int, *, kernel_size: int, stride: int, norm: str,
                 groups: int, act: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride,
                              padding=kernel_size // 2, bias=norm == "none")
        self.norm = normalisation(norm, c_out, groups)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """Basic residual block: ``act(conv2(conv1(x)) + shortcut(x))``.

    ``conv1`` is conv -> norm -> activation (stride ``stride``), ``conv2`` conv -> norm
    (stride 1, no activation); ``shortcut`` is the identity when the block keeps the shape,
    else a 1x1 :class:`ConvNorm` (stride ``stride``, no activation). Its output is the
    block's representation.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel_size : int
        Side of the square kernels of ``conv1`` and ``conv2``.
    stride : int
        1, or 2 to halve the image side (rounding up).
    norm : str
        Normalisation after each convolution: ``"none"``, ``"batch"`` or ``"group"``.
    groups : int
        Number of groups of ``norm="group"``.
    act : str
        Nonlinearity by name, after ``conv1`` and after the sum.
    """

    def __init__(self, c_in: int, c_out: int, *, kernel_size: int, stride: int, norm: str,
                 groups: int, act: str) -> None:
        super().__init__()
        unit = {"norm": norm, "groups": groups}
        self.conv1 = ConvNorm(c_in, c_out, kernel_size=kernel_size, stride=stride, act=act,
                              **unit)
        self.conv2 = ConvNorm(c_out, c_out, kernel_size=kernel_size, stride=1, act="linear",
                              **unit)
        if stride != 1 or c_in != c_out:
            self.shortcut = ConvNorm(c_in, c_out, kernel_size=1, stride=stride, act="linear",
                                     **unit)
        else:
            self.shortcut = nn.Identity()
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet(nn.Module):
    """Residual convolutional network with addressable layers.

    Layers, in forward order: ``stem`` (conv -> norm -> activation at ``channels[0]``),
    ``stage_0 ... stage_{n-1}`` (``blocks`` :class:`ResidualBlock` s each, with
    ``channels[i]`` channels; the first block of every stage after the first has stride 2,
    halving the image side), ``pool`` (global average over space, so the network runs on
    any input size) and ``fc_0 ...`` (linear -> activation -> dropout). A stage's output is
    its last block's. ``forward`` takes ``(batch, channel, y, x)`` images and returns
    ``{head: logits}``, ``(batch,)`` for a binary head and ``(batch, n_values)`` otherwise;
    ``layer_names`` lists the addressable layers and ``layer(name)`` returns the module
    whose output is that layer's representation.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    heads : mapping of str to int, or sequence of str
        ``{feature name: number of values}`` (a list of names means all binary).
    channels : sequence of int, default (16, 32, 64)
        Channels of each stage (one stage per entry); the stem has ``channels[0]``.
    blocks : int, default 2
        Residual blocks per stage.
    kernel_size : int, default 3
        Side of the square kernels of the stem and the blocks (odd; same padding).
    norm : str, default "batch"
        Normalisation after each convolution: ``"none"``, ``"batch"`` or ``"group"``.
    groups : int, default 4
        Number of groups of ``norm="group"``.
    activation : str, default "relu"
        Nonlinearity of the stem, the blocks and the fc layers, by name (as :class:`MLP`'s).
    fc_widths : sequence of int, default ()
        Widths of the fully connected layers after the global pooling (none: the heads
        read ``pool``).
    dropout : float, default 0.0
        Dropout probability after each fc layer.

    Examples
    --------
    >>> import torch
    >>> net = ResNet(3, {"colour": 3, "big": 2}, channels=(4, 8), blocks=1, fc_widths=(16,))
    >>> out = net(torch.zeros(2, 3, 16, 16))
    >>> net.layer_names, out["colour"].shape, out["big"].shape
    (['stem', 'stage_0', 'stage_1', 'pool', 'fc_0'], torch.Size([2, 3]), torch.Size([2]))
    """

    def __init__(self, in_channels: int, heads: Mapping[str, int] | Sequence[str], *,
                 channels: Sequence[int] = (16, 32, 64), blocks: int = 2,
                 kernel_size: int = 3, norm: str = "batch", groups: int = 4,
                 activation: str = "relu", fc_widths: Sequence[int] = (),
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not channels or blocks < 1:
            raise ValueError(f"a ResNet needs at least one stage of at least one block; got "
                             f"channels={list(channels)}, blocks={blocks}")
        heads = dict(heads) if isinstance(heads, Mapping) else dict.fromkeys(heads, 2)
        unit = {"kernel_size": kernel_size, "norm": norm, "groups": groups, "act": activation}
        self.stem = ConvNorm(in_channels, channels[0], stride=1, **unit)
        sizes = [channels[0], *channels]
        self.stages = nn.ModuleDict({
            f"stage_{i}": nn.Sequential(*[
                ResidualBlock(sizes[i] if j == 0 else sizes[i + 1], sizes[i + 1],
                              stride=2 if i > 0 and j == 0 else 1, **unit)
                for j in range(blocks)])
            for i in range(len(channels))})
        self.pool = GlobalAveragePool()
        widths = [channels[-1], *fc_widths]
        self.fc = nn.ModuleDict({
            f"fc_{i}": HiddenLayer(widths[i], widths[i + 1], activation, dropout)
            for i in range(len(fc_widths))})
        self.n_values = heads
        self.heads = nn.ModuleDict({
            name: nn.Linear(widths[-1], 1 if k == 2 else k) for name, k in heads.items()})

    @property
    def layer_names(self) -> list[str]:
        return ["stem", *self.stages.keys(), "pool", *self.fc.keys()]

    def layer(self, name: str) -> nn.Module:
        if name == "stem":
            return self.stem
        if name in self.stages:
            return self.stages[name]
        if name == "pool":
            return self.pool
        if name in self.fc:
            return self.fc[name]
        raise KeyError(f"no layer {name!r}; layers: {self.layer_names}")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4:
            raise ValueError(f"the ResNet takes images (batch, channel, y, x); got shape "
                             f"{tuple(x.shape)}")
        x = self.stem(x)
        for stage in self.stages.values():
            x = stage(x)
        x = self.pool(x)
        for layer in self.fc.values():
            x = layer(x)
        return _head_outputs(self.heads, self.n_values, x)


def build_resnet(in_channels: int, heads: Mapping[str, int] | Sequence[str],
                 cfg: ModelConfig) -> ResNet:
    """Construct a :class:`ResNet` from a :class:`~rsa_bias.config.ModelConfig` and
    initialise it.

    The network is initialised with ``cfg.init`` at gain ``cfg.init_scale`` (see
    :func:`~rsa_bias.networks.initialise`; ``"default"`` at scale 1 keeps PyTorch's
    initialisation). Seed torch first: the initialisation draws from its global generator.

    Parameters
    ----------
    in_channels, heads
        As in :class:`ResNet`.
    cfg : ModelConfig
        A config with ``arch = "resnet"``: its ``resnet`` table (``channels``, ``blocks``,
        ``kernel_size``, ``norm``, ``groups``, ``fc_widths``), ``activation``, ``dropout``,
        ``init`` and ``init_scale``; validated first.

    Returns
    -------
    ResNet
        The initialised network.

    Examples
    --------
    >>> from rsa_bias.config import ModelConfig, ResNetConfig
    >>> cfg = ModelConfig(arch="resnet", init="kaiming_normal",
    ...                   resnet=ResNetConfig(channels=(4, 8), blocks=1))
    >>> build_resnet(3, {"shape": 3}, cfg).layer_names
    ['stem', 'stage_0', 'stage_1', 'pool']
    """
    cfg.validate()
    c = cfg.resnet
    model = ResNet(in_channels, heads, channels=c.channels, blocks=c.blocks,
                   kernel_size=c.kernel_size, norm=c.norm, groups=c.groups,
                   activation=cfg.activation, fc_widths=c.fc_widths, dropout=cfg.dropout)
    if cfg.init != "default" or cfg.init_scale != 1.0:
        initialise(model, family=cfg.init, scale=cfg.init_scale)
    return model
