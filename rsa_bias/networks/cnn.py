"""Small convolutional network with named layers, and image preparation for it.

Layers, in forward order: ``conv_0 ... conv_{n-1}`` (conv -> norm -> activation, then 2x2
max pooling except after the last block), ``pool`` (global average over space: the network
runs on any input size) and ``fc_0 ...`` (linear -> activation -> dropout). Read-out heads
follow: one logit for a binary feature, one per value for a feature with more values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bias._api import legacy_call
from rsa_bias._image_prep import ImagePrep, crop_geometry
from rsa_bias.config import ModelConfig
from rsa_bias.networks.init import initialise
from rsa_bias.networks.mlp import HiddenLayer, activation

_NORMS = {
    "none": lambda channels, groups: nn.Identity(),
    "batch": lambda channels, groups: nn.BatchNorm2d(channels),
    "group": lambda channels, groups: nn.GroupNorm(groups, channels),
}


def normalisation(name: str, channels: int, groups: int = 4) -> nn.Module:
    """Normalisation layer by name (``none``, ``batch``, ``group``)."""
    try:
        return _NORMS[name](channels, groups)
    except KeyError:
        raise ValueError(f"unknown normalisation {name!r}; valid: {sorted(_NORMS)}") from None


class ConvBlock(nn.Module):
    """Conv -> norm -> activation -> (2x2 max pool). Its output is the layer's representation."""

    def __init__(self, c_in: int, c_out: int, *, kernel_size: int, norm: str, groups: int,
                 act: str, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)
        self.norm = normalisation(norm, c_out, groups)
        self.act = activation(act)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))


def _head_outputs(heads: nn.ModuleDict, n_values: Mapping[str, int],
                 x: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{head: logits}`` of the read-out heads on ``x``: ``(batch,)`` for a binary head,
    ``(batch, n_values)`` otherwise."""
    out = {}
    for name, head in heads.items():
        logits = head(x)
        out[name] = logits.squeeze(-1) if n_values[name] == 2 else logits
    return out


class GlobalAveragePool(nn.Module):
    """``(batch, channel, y, x) -> (batch, channel)``: the mean of each channel over space."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


class CNN(nn.Module):
    """Convolutional network with addressable layers.

    Layers, in forward order: ``conv_0 ... conv_{n-1}`` (conv -> norm -> activation, then
    2x2 max pooling except after the last block), ``pool`` (global average over space, so
    the network runs on any input size) and ``fc_0 ...`` (linear -> activation -> dropout).
    ``forward`` takes ``(batch, channel, y, x)`` images and returns ``{head: logits}``,
    ``(batch,)`` for a binary head and ``(batch, n_values)`` otherwise; ``layer_names``
    lists the addressable layers and ``layer(name)`` returns one.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    heads : mapping of str to int, or sequence of str
        ``{feature name: number of values}`` (a list of names means all binary).
    channels : sequence of int, default (16, 32, 32)
        Output channels of each conv block (one block per entry).
    kernel_size : int, default 3
        Side of the square convolution kernels (padding ``kernel_size // 2``).
    norm : str, default "none"
        Normalisation after each convolution: ``"none"``, ``"batch"`` or ``"group"``.
    groups : int, default 4
        Number of groups of ``norm="group"``.
    activation : str, default "relu"
        Nonlinearity of the conv blocks and fc layers, by name (as :class:`MLP`'s).
    fc_widths : sequence of int, default (64,)
        Widths of the fully connected layers after the global pooling.
    dropout : float, default 0.0
        Dropout probability after each fc layer.

    Examples
    --------
    >>> import torch
    >>> net = CNN(3, {"colour": 3, "big": 2}, channels=(4, 8), fc_widths=(16,))
    >>> out = net(torch.zeros(2, 3, 16, 16))
    >>> net.layer_names, out["colour"].shape, out["big"].shape
    (['conv_0', 'conv_1', 'pool', 'fc_0'], torch.Size([2, 3]), torch.Size([2]))
    """

    def __init__(self, in_channels: int, heads: Mapping[str, int] | Sequence[str], *,
                 channels: Sequence[int] = (16, 32, 32), kernel_size: int = 3,
                 norm: str = "none", groups: int = 4, activation: str = "relu",
                 fc_widths: Sequence[int] = (64,), dropout: float = 0.0) -> None:
        super().__init__()
        heads = dict(heads) if isinstance(heads, Mapping) else dict.fromkeys(heads, 2)
        sizes = [in_channels, *channels]
        self.conv = nn.ModuleDict({
            f"conv_{i}": ConvBlock(sizes[i], sizes[i + 1], kernel_size=kernel_size, norm=norm,
                                   groups=groups, act=activation, pool=i < len(channels) - 1)
            for i in range(len(channels))})
        self.pool = GlobalAveragePool()
        widths = [sizes[-1], *fc_widths]
        self.fc = nn.ModuleDict({
            f"fc_{i}": HiddenLayer(widths[i], widths[i + 1], activation, dropout)
            for i in range(len(fc_widths))})
        self.n_values = heads
        self.heads = nn.ModuleDict({
            name: nn.Linear(widths[-1], 1 if k == 2 else k) for name, k in heads.items()})

    @property
    def layer_names(self) -> list[str]:
        return [*self.conv.keys(), "pool", *self.fc.keys()]

    def layer(self, name: str) -> nn.Module:
        if name in self.conv:
            return self.conv[name]
        if name in self.fc:
            return self.fc[name]
        if name == "pool":
            return self.pool
        raise KeyError(f"no layer {name!r}; layers: {self.layer_names}")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4:
            raise ValueError(f"the CNN takes images (batch, channel, y, x); got shape "
                             f"{tuple(x.shape)}")
        for block in self.conv.values():
            x = block(x)
        x = self.pool(x)
        for layer in self.fc.values():
            x = layer(x)
        return _head_outputs(self.heads, self.n_values, x)


def build_cnn(in_channels: int, heads: Mapping[str, int] | Sequence[str],
              cfg: ModelConfig) -> CNN:
    """Construct a :class:`CNN` from a :class:`~rsa_bias.config.ModelConfig` and initialise it.

    The network is initialised with ``cfg.init`` at gain ``cfg.init_scale`` (see
    :func:`~rsa_bias.networks.initialise`). Seed torch first: the initialisation draws from
    its global generator.

    Parameters
    ----------
    in_channels, heads
        As in :class:`CNN`.
    cfg : ModelConfig
        A config with ``arch = "cnn"``: its ``cnn`` table (``channels``, ``kernel_size``,
        ``norm``, ``groups``, ``fc_widths``), ``activation``, ``dropout``, ``init`` and
        ``init_scale``; validated first.

    Returns
    -------
    CNN
        The initialised network.
    """
    cfg.validate()
    c = cfg.cnn
    model = CNN(in_channels, heads, channels=c.channels, kernel_size=c.kernel_size,
                norm=c.norm, groups=c.groups, activation=cfg.activation,
                fc_widths=c.fc_widths, dropout=cfg.dropout)
    if cfg.init != "default" or cfg.init_scale != 1.0:
        initialise(model, family=cfg.init, scale=cfg.init_scale)
    return model


@legacy_call(positional=("readout",), renamed={"mode": "readout"})
def spatial_readout(arr: np.ndarray, *, readout: str = "gap") -> np.ndarray:
    """Reduce ``(n, channel, y, x)`` feature maps to ``(n, unit)``; 2-D arrays pass unchanged.

    Parameters
    ----------
    arr : numpy.ndarray
        Activations ``(n, unit)`` (returned as they are) or conv feature maps
        ``(n, channel, y, x)``.
    readout : str, default "gap"
        ``"gap"``: each channel's mean over space (unit = channel; position-invariant).
        ``"flatten"``: every (channel, y, x) is a unit, in C order.

    Returns
    -------
    numpy.ndarray
        ``(n, unit)`` activations.

    Raises
    ------
    ValueError
        For an array with neither 2 nor 4 axes, or an unknown ``readout``.

    Examples
    --------
    >>> maps = np.arange(16.0).reshape(1, 2, 2, 4)
    >>> spatial_readout(maps)
    array([[ 3.5, 11.5]])
    >>> spatial_readout(maps, readout="flatten").shape
    (1, 16)
    """
    if arr.ndim == 2:
        return arr
    if arr.ndim != 4:
        raise ValueError(f"expected (n, unit) or (n, channel, y, x) activations, got shape "
                         f"{arr.shape}")
    if readout == "gap":
        return arr.mean(axis=(2, 3))
    if readout == "flatten":
        return arr.reshape(arr.shape[0], -1)
    raise ValueError(f"unknown readout {readout!r}; valid: ['flatten', 'gap']")


def prepare_images(images: np.ndarray | xr.DataArray, *, size: int | None = 32,
                   prep: ImagePrep | str | None = None,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """Turn photographs into network input, by default in the range of the synthetic images.

    Parameters
    ----------
    images : numpy.ndarray or xarray.DataArray
        uint8 array ``(n, y, x, 3)`` (RGB, 0-255), or a uint8 DataArray with dims
        ``("stimulus", "y", "x", "channel")`` such as ``load_rsa92().image``.
    size : int, default 32
        Side of the square output; images are resized with bilinear interpolation with
        antialiasing (``torch.nn.functional.interpolate(..., antialias=True)``, an
        area-weighted filter when shrinking). ``None`` keeps the size (stretching only).
    prep : ImagePrep or {"unit", "imagenet"}, default "unit"
        The geometry and normalisation (:class:`~rsa_bias.networks.ImagePrep`): ``"unit"``
        stretches to the square and scales to [-1, 1]; ``"imagenet"`` resizes the shorter
        side to ``size / 0.875``, cuts the centre square and applies the ImageNet mean and
        standard deviation (torchvision's evaluation transform on tensors).
    device : str or torch.device, default "cpu"
        Device of the returned tensor (the resizing runs there).

    Returns
    -------
    torch.Tensor
        float32 ``(n, 3, size, size)``, ``(pixel / 255 - mean) / std`` per channel. The
        default gives ``2 * pixel / 255 - 1`` in [-1, 1]: the range of
        :func:`rsa_bias.tasks.make_image_task` (grey 128 -> ~0), so a network trained on the
        synthetic images sees photographs on the same scale.

    Raises
    ------
    ValueError
        For images not shaped ``(n, y, x, 3)`` or not uint8, an unknown ``prep``, or a crop
        without ``size``.

    Examples
    --------
    >>> x = prepare_images(np.full((2, 8, 8, 3), 255, dtype=np.uint8), size=4)
    >>> tuple(x.shape), float(x.max())
    ((2, 3, 4, 4), 1.0)
    >>> x = prepare_images(np.zeros((1, 6, 8, 3), dtype=np.uint8), size=4, prep="imagenet")
    >>> tuple(x.shape), round(float(x[0, 0, 0, 0]), 4)  # (0 - 0.485) / 0.229
    ((1, 3, 4, 4), -2.1179)
    """
    prep = ImagePrep.named(prep)
    if isinstance(images, xr.DataArray):
        images = images.transpose("stimulus", "y", "x", "channel").values
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected images (n, y, x, 3); got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0-255); got {arr.dtype}")
    if not arr.flags.writeable:  # a memory-mapped or read-only array: torch needs its own copy
        arr = np.array(arr)
    x = torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(0, 3, 1, 2)
    x = _fitted(x.to(torch.float32) / 255.0, size, prep)
    if prep.is_unit:
        return (2.0 * x - 1.0).clamp_(-1.0, 1.0).contiguous()
    mean = torch.tensor(prep.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def _resized(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == hw:
        return x
    return nn.functional.interpolate(x, size=hw, mode="bilinear", align_corners=False,
                                     antialias=True)


def _fitted(x: torch.Tensor, size: int | None, prep: ImagePrep) -> torch.Tensor:
    """``x`` (n, 3, h, w) in [0, 1] stretched, or resized and centre-cropped, to ``size``."""
    prep.check_size(size)
    if not prep.crops:
        return x if size is None else _resized(x, (size, size))
    new_h, new_w, top, left = crop_geometry(*x.shape[-2:], size, prep.shorter_side(size))
    x = _resized(x, (new_h, new_w))
    return x[..., top:top + size, left:left + size]
