"""Vocabularies of the config sections and the error every check raises."""

from __future__ import annotations

FEATURE_TYPES = ("linear", "threshold", "parity")
CODINGS = ("pm1", "01")
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu", "elu", "linear")
OPTIMIZERS = ("adam", "sgd")
ENUMERATE_MAX_BITS = 22  # tasks list the input space up to 4M inputs and sample beyond
TASK_KINDS = ("binary", "images")
ARCHITECTURES = ("mlp", "cnn")
NORMS = ("none", "batch", "group")
READOUTS = ("gap", "flatten")
INIT_FAMILIES = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal",
                 "xavier_uniform", "orthogonal", "scaled_normal")
# The values each image feature can take, in order; ``task.images.n_<feature>s = k`` uses the
# first k (rendered by rsa_bias.tasks.images).
COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple")
SHAPES = ("circle", "square", "triangle", "cross", "star", "diamond", "ring", "x")
TEXTURES = ("stripes_horizontal", "dots", "checker", "stripes_vertical", "stripes_diagonal",
            "grid", "solid", "stripes_antidiagonal")


class ConfigError(ValueError):
    """An invalid experiment config; the message names the key to fix."""


def _fail(key: str, msg: str) -> None:
    raise ConfigError(f"{key}: {msg}")
