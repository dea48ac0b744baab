"""Vocabularies of the config sections, the error every check raises and the checks every
section shares."""

from __future__ import annotations

import dataclasses
import math

FEATURE_TYPES = ("linear", "threshold", "parity")
CODINGS = ("pm1", "01")
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu", "elu", "selu", "gaussian",
               "sine", "linear")
OPTIMIZERS = ("adam", "sgd")
ENUMERATE_MAX_BITS = 22  # tasks list the input space up to 4M inputs and sample beyond
TASK_KINDS = ("binary", "images")
ARCHITECTURES = ("mlp", "cnn", "resnet", "transformer")
#: where the Transformer reads its residual stream: the last position before the first
#: output token, or the mean over every position before it
TOKEN_READOUTS = ("last", "mean")
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


#: Seeds go to numpy (``RandomState`` takes ``[0, 2**32)``) and torch (which wraps negatives).
SEED_LIMIT = 2 ** 32


def _fail(key: str, msg: str) -> None:
    raise ConfigError(f"{key}: {msg}")


def _check_seed(key: str, seeds) -> None:
    """Refuse seeds outside ``[0, 2**32)``, the range numpy and torch both take as given."""
    bad = [s for s in (seeds if isinstance(seeds, (list, tuple)) else [seeds])
           if not 0 <= s < SEED_LIMIT]
    if bad:
        got = bad if isinstance(seeds, (list, tuple)) else bad[0]
        _fail(key, f"a seed must be an integer in [0, 2**32 - 1] (the range numpy and torch "
              f"both take unchanged), got {got}")


class Section:
    """Base of every config section (a frozen dataclass): the checks all fields share."""

    def _check_finite(self, key: str) -> None:
        """Refuse NaN and infinite values in every float field, nested sections included
        (``key`` is this section's dotted name, ``""`` for the whole config)."""
        for f in dataclasses.fields(self):
            name = f"{key}.{f.name}" if key else f.name
            value = getattr(self, f.name)
            items = enumerate(value) if isinstance(value, tuple) else [(None, value)]
            for i, item in items:
                where = name if i is None else f"{name}[{i}]"
                if isinstance(item, Section):
                    item._check_finite(where)
                elif isinstance(item, float) and not math.isfinite(item):
                    _fail(where, f"must be a finite number, got {item}")


def load_typed(cls: type, path, overrides: list[str] | None = None):
    """Read a TOML config (with overrides) into the config dataclass ``cls``, validated.

    Parameters
    ----------
    cls : type
        A config dataclass whose ``validate()`` returns it (``RedshiftConfig``, ...).
    path, overrides
        As for :func:`rsa_bias.config.load_config`.

    Returns
    -------
    object
        The validated config.
    """
    from rsa_bias.config import _from_dict, read_toml

    return _from_dict(cls, read_toml(path, overrides)).validate()
