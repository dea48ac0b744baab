"""The ``[model]`` section: MLP and CNN architectures and their initialisation."""

from __future__ import annotations

from dataclasses import dataclass, field

from rsa_bias.config._base import (
    ACTIVATIONS,
    ARCHITECTURES,
    INIT_FAMILIES,
    NORMS,
    READOUTS,
    Section,
    _fail,
)


@dataclass(frozen=True)
class CNNConfig(Section):
    """Convolutional network: ``conv_i`` blocks, global average ``pool``, ``fc_i`` layers.

    Each block is conv (``kernel_size``, same padding) -> normalisation (``norm``:
    none, batch or group with ``groups`` groups) -> activation, then 2x2 max pooling
    except after the last block. ``readout`` says how a conv block's feature map
    becomes the ``(stimulus, unit)`` activations that are recorded: ``"gap"`` averages
    each channel over space, ``"flatten"`` keeps every (channel, y, x) as a unit.
    """

    channels: tuple[int, ...] = (16, 32, 32)
    kernel_size: int = 3
    norm: str = "none"
    groups: int = 4
    fc_widths: tuple[int, ...] = (64,)
    readout: str = "gap"

    def validate(self, key: str = "model.cnn") -> None:
        self._check_finite(key)
        if not self.channels or min(self.channels) < 1:
            _fail(f"{key}.channels", f"needs at least one block of >= 1 channels, got "
                  f"{list(self.channels)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            _fail(f"{key}.kernel_size", f"must be odd and >= 1, got {self.kernel_size}")
        if self.norm not in NORMS:
            _fail(f"{key}.norm", f"unknown normalisation {self.norm!r}; valid: {NORMS}")
        if self.groups < 1:
            _fail(f"{key}.groups", f"must be >= 1, got {self.groups}")
        if self.norm == "group" and any(c % self.groups for c in self.channels):
            _fail(f"{key}.groups", f"{self.groups} groups must divide every block's channels "
                  f"{list(self.channels)}")
        if any(w < 1 for w in self.fc_widths):
            _fail(f"{key}.fc_widths", f"widths must be >= 1, got {list(self.fc_widths)}")
        if self.readout not in READOUTS:
            _fail(f"{key}.readout", f"unknown readout {self.readout!r}; valid: {READOUTS}")


@dataclass(frozen=True)
class ModelConfig(Section):
    """Network with one read-out head per feature (one logit for a binary feature, one per
    value otherwise).

    ``arch = "mlp"``: ``depth`` hidden layers of ``width`` units. ``arch = "cnn"``: the
    convolutional network of ``cnn``. ``init`` chooses the initialisation family
    (:mod:`rsa_bias.networks.init`); with ``"default"`` (PyTorch's) every parameter is
    multiplied by ``init_scale``, with any other family ``init_scale`` is its gain.
    """

    arch: str = "mlp"
    depth: int = 4
    width: int = 256
    activation: str = "relu"
    dropout: float = 0.0
    init_scale: float = 1.0
    init: str = "default"
    cnn: CNNConfig = field(default_factory=CNNConfig)

    def validate(self) -> None:
        self._check_finite("model")
        if self.arch not in ARCHITECTURES:
            _fail("model.arch", f"unknown architecture {self.arch!r}; valid: {ARCHITECTURES}")
        if self.init not in INIT_FAMILIES:
            _fail("model.init", f"unknown initialisation {self.init!r}; valid: "
                  f"{INIT_FAMILIES}")
        if self.arch == "cnn":
            defaults = ModelConfig()
            for key in ("depth", "width"):
                if getattr(self, key) != getattr(defaults, key):
                    _fail(f"model.{key}", "only used when model.arch = 'mlp'; the CNN's "
                          "blocks are set by model.cnn.channels and model.cnn.fc_widths")
            self.cnn.validate()
        elif self.cnn != CNNConfig():
            _fail("model.cnn", "only used when model.arch = 'cnn'")
        if self.depth < 1:
            _fail("model.depth", f"must be >= 1 hidden layer, got {self.depth}")
        if self.width < 1:
            _fail("model.width", f"must be >= 1, got {self.width}")
        if self.activation not in ACTIVATIONS:
            _fail("model.activation", f"unknown activation {self.activation!r}; "
                  f"valid: {ACTIVATIONS}")
        if not 0.0 <= self.dropout < 1.0:
            _fail("model.dropout", f"must be in [0, 1), got {self.dropout}")
        if self.init_scale <= 0:
            _fail("model.init_scale", f"must be > 0, got {self.init_scale}")
