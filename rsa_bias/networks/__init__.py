"""Torch modules whose hidden layers are addressable by name.

* :class:`MLP` — fully connected, ``hidden_0 ...``;
* :class:`CNN` — convolutional, ``conv_0 ...``, ``pool``, ``fc_0 ...``;
* :class:`ResNet` — residual, ``stem``, ``stage_0 ...``, ``pool``, ``fc_0 ...``;
* :class:`Transformer` — GPT-style over the input bits as tokens, ``block_0 ...`` (the
  residual stream before the first output token), emitting the features in a set order;
* :func:`build_model` — any of them, from a :class:`~rsa_bias.config.ModelConfig`;
* :func:`initialise` — initialisation families for random-network comparisons;
* :func:`random_mlp_outputs` — thousands of random MLPs on a grid as one batched computation;
* :func:`random_gpt_generate` — tokens generated greedily by random GPT-style models;
* :func:`prepare_images` with :class:`ImagePrep` — photographs as network input (stretched
  or centre-cropped, scaled to [-1, 1] or ImageNet-normalised).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from torch import nn

from rsa_bias._image_prep import IMAGE_PREPS, ImagePrep
from rsa_bias.config import ModelConfig
from rsa_bias.networks.cnn import CNN, build_cnn, prepare_images, spatial_readout
from rsa_bias.networks.init import FAMILIES, initialise
from rsa_bias.networks.mlp import MLP, build_mlp
from rsa_bias.networks.random_gpt import RandomGPT, random_gpt_generate
from rsa_bias.networks.random_mlp import grid_points, random_mlp_outputs
from rsa_bias.networks.resnet import ResNet, build_resnet
from rsa_bias.networks.transformer import Transformer, build_transformer


def build_model(input_shape: Sequence[int], heads: Mapping[str, int],
                cfg: ModelConfig) -> nn.Module:
    """Build the network of ``cfg.arch`` (MLP, CNN, ResNet or Transformer) for a task.

    The MLP reads the flattened input and, like the Transformer (which reads the input
    bits as tokens), has binary heads only. Seed torch first: the
    initialisation draws from its global generator. A ``cfg.init`` other than
    ``"default"`` re-initialises the network with :func:`initialise` at gain
    ``cfg.init_scale``.

    Parameters
    ----------
    input_shape : sequence of int
        Shape of one stimulus, e.g. ``(n_bits,)`` for the MLP or ``(3, 32, 32)``
        (channel, y, x) for the CNN, which needs exactly three axes.
    heads : mapping of str to int
        ``{feature: number of values}``; one read-out head per feature (one logit for a
        binary feature, one per value otherwise). The MLP accepts only 2-valued features.
    cfg : ModelConfig
        The architecture (``arch``, ``depth``, ``width``, ``activation``, ``dropout``,
        ``init``, ``init_scale`` and the ``cnn`` table); validated first.

    Returns
    -------
    torch.nn.Module
        An :class:`MLP` (``arch = "mlp"``), a :class:`CNN` (``"cnn"``), a
        :class:`ResNet` (``"resnet"``) or a
        :class:`~rsa_bias.networks.transformer.Transformer` (``"transformer"``).

    Raises
    ------
    ValueError
        For a CNN or ResNet on inputs that are not images, or an MLP or Transformer with
        a head of more than two values.

    Examples
    --------
    >>> from rsa_bias.config import ModelConfig
    >>> net = build_model((8,), {"easy": 2, "hard": 2}, ModelConfig(depth=2, width=16))
    >>> net.layer_names
    ['hidden_0', 'hidden_1']
    """
    cfg.validate()
    if cfg.arch in ("cnn", "resnet"):
        if len(input_shape) != 3:
            raise ValueError(f"the {cfg.arch} needs image inputs (channel, y, x); got one "
                             f"stimulus of shape {tuple(input_shape)} (set task.kind = "
                             "'images')")
        if cfg.arch == "cnn":
            return build_cnn(int(input_shape[0]), heads, cfg)
        return build_resnet(int(input_shape[0]), heads, cfg)
    multi = {k: v for k, v in heads.items() if v != 2}
    if multi:
        raise ValueError(f"the {cfg.arch} has binary heads only; features {multi} have more "
                         "than 2 values (use model.arch = 'cnn' or 'resnet')")
    if cfg.arch == "transformer":
        return build_transformer(math.prod(input_shape), list(heads), cfg)
    model = build_mlp(math.prod(input_shape), list(heads), cfg)
    if cfg.init != "default":
        initialise(model, family=cfg.init, scale=cfg.init_scale)
    return model


__all__ = ["MLP", "CNN", "ResNet", "Transformer", "build_mlp", "build_cnn", "build_resnet",
           "build_transformer", "build_model", "initialise", "FAMILIES", "prepare_images",
           "spatial_readout", "grid_points", "random_mlp_outputs", "RandomGPT",
           "random_gpt_generate", "ImagePrep", "IMAGE_PREPS"]
