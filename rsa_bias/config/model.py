"""The ``[model]`` section: MLP, CNN, ResNet and Transformer architectures and their
initialisation."""

from __future__ import annotations

from dataclasses import dataclass, field

from rsa_bias.config._base import (
    ACTIVATIONS,
    ARCHITECTURES,
    INIT_FAMILIES,
    NORMS,
    READOUTS,
    TOKEN_READOUTS,
    Section,
    _fail,
)


def _check_conv_table(table, key: str, unit: str) -> None:
    """The checks a CNN's and a ResNet's table share; ``unit`` names what each entry of
    ``channels`` is (a CNN's block, a ResNet's stage)."""
    table._check_finite(key)
    if not table.channels or min(table.channels) < 1:
        _fail(f"{key}.channels", f"needs at least one {unit} of >= 1 channels, got "
              f"{list(table.channels)}")
    if table.kernel_size < 1 or table.kernel_size % 2 == 0:
        _fail(f"{key}.kernel_size", f"must be odd and >= 1, got {table.kernel_size}")
    if table.norm not in NORMS:
        _fail(f"{key}.norm", f"unknown normalisation {table.norm!r}; valid: {NORMS}")
    if table.groups < 1:
        _fail(f"{key}.groups", f"must be >= 1, got {table.groups}")
    if table.norm == "group" and any(c % table.groups for c in table.channels):
        _fail(f"{key}.groups", f"{table.groups} groups must divide every {unit}'s channels "
              f"{list(table.channels)}")
    if any(w < 1 for w in table.fc_widths):
        _fail(f"{key}.fc_widths", f"widths must be >= 1, got {list(table.fc_widths)}")
    if table.readout not in READOUTS:
        _fail(f"{key}.readout", f"unknown readout {table.readout!r}; valid: {READOUTS}")


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
        _check_conv_table(self, key, "block")


@dataclass(frozen=True)
class ResNetConfig(Section):
    """Residual network: a ``stem`` conv, ``stage_i`` of residual blocks, global average
    ``pool``, ``fc_i`` layers.

    The stem is conv (``kernel_size``) -> norm -> activation at ``channels[0]``; stage
    ``i`` has ``blocks`` basic residual blocks (two convs, each followed by ``norm``; a
    1x1 projection on the shortcut when the shape changes) with ``channels[i]`` channels,
    the first block of every stage after the first halving the image side (stride 2).
    ``readout`` reduces a stage's feature map to units as ``model.cnn.readout`` does;
    with no ``fc_widths`` the pooled penultimate layer is ``pool``.
    """

    channels: tuple[int, ...] = (16, 32, 64)
    blocks: int = 2
    kernel_size: int = 3
    norm: str = "batch"
    groups: int = 4
    fc_widths: tuple[int, ...] = ()
    readout: str = "gap"

    def validate(self, key: str = "model.resnet") -> None:
        _check_conv_table(self, key, "stage")
        if self.blocks < 1:
            _fail(f"{key}.blocks", f"must be >= 1 residual block per stage, got {self.blocks}")


@dataclass(frozen=True)
class TransformerConfig(Section):
    """GPT-style decoder (pre-norm blocks, causal attention) over the input bits as tokens.

    The network reads the ``n_bits`` input bits as tokens, then a separator, and emits one
    output token per feature, in ``output_order`` (feature names; empty: the task's
    order), each predicted from the positions before it (the earlier outputs' true values
    during training, its own predictions when evaluated). ``model.depth`` sets the number
    of blocks ``block_0 ...``, ``model.width`` the residual stream width. Each block's
    representation is its residual stream at the positions before the first output
    token: the last of them (``readout = "last"``, the separator, from which the first
    output is predicted) or their mean (``"mean"``).
    """

    n_heads: int = 4
    mlp_ratio: int = 4
    output_order: tuple[str, ...] = ()
    readout: str = "last"

    def validate(self, key: str = "model.transformer") -> None:
        if self.n_heads < 1:
            _fail(f"{key}.n_heads", f"must be >= 1, got {self.n_heads}")
        if self.mlp_ratio < 1:
            _fail(f"{key}.mlp_ratio", f"must be >= 1, got {self.mlp_ratio}")
        if len(set(self.output_order)) != len(self.output_order):
            _fail(f"{key}.output_order", f"names a feature twice: {list(self.output_order)}")
        if self.readout not in TOKEN_READOUTS:
            _fail(f"{key}.readout", f"unknown readout {self.readout!r}; valid: "
                  f"{TOKEN_READOUTS}")


@dataclass(frozen=True)
class ModelConfig(Section):
    """Network with one read-out head per feature (one logit for a binary feature, one per
    value otherwise).

    ``arch = "mlp"``: ``depth`` hidden layers of ``width`` units. ``arch = "cnn"``: the
    convolutional network of ``cnn``; ``"resnet"``: the residual network of ``resnet``;
    ``"transformer"``: ``depth`` blocks of width ``width`` as set by ``transformer``.
    ``init`` chooses the initialisation family (:mod:`rsa_bias.networks.init`); with
    ``"default"`` (PyTorch's) every parameter is multiplied by ``init_scale``, with any
    other family ``init_scale`` is its gain.
    """

    arch: str = "mlp"
    depth: int = 4
    width: int = 256
    activation: str = "relu"
    dropout: float = 0.0
    init_scale: float = 1.0
    init: str = "default"
    cnn: CNNConfig = field(default_factory=CNNConfig)
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)

    @property
    def flat_inputs(self) -> bool:
        """Whether the network reads each stimulus as one vector (MLP, Transformer) rather
        than as an image."""
        return self.arch in ("mlp", "transformer")

    @property
    def layer_readout(self) -> str:
        """How a layer's output becomes ``(stimulus, unit)`` snapshots (conv networks)."""
        return {"cnn": self.cnn.readout, "resnet": self.resnet.readout}.get(self.arch, "gap")

    def validate(self) -> None:
        self._check_finite("model")
        if self.arch not in ARCHITECTURES:
            _fail("model.arch", f"unknown architecture {self.arch!r}; valid: {ARCHITECTURES}")
        if self.init not in INIT_FAMILIES:
            _fail("model.init", f"unknown initialisation {self.init!r}; valid: "
                  f"{INIT_FAMILIES}")
        self._check_tables()
        if self.arch in ("cnn", "resnet"):
            defaults = ModelConfig()
            for key in ("depth", "width"):
                if getattr(self, key) != getattr(defaults, key):
                    _fail(f"model.{key}", f"only used when model.arch is 'mlp' or "
                          f"'transformer'; the {self.arch}'s layers are set by "
                          f"model.{self.arch}.channels and model.{self.arch}.fc_widths")
        if self.arch == "transformer" and self.width % self.transformer.n_heads:
            _fail("model.transformer.n_heads", f"{self.transformer.n_heads} heads must "
                  f"divide model.width = {self.width}")
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

    def _check_tables(self) -> None:
        """Validate the table of ``arch``; refuse the others' tables when they are set."""
        tables = {"cnn": CNNConfig, "resnet": ResNetConfig, "transformer": TransformerConfig}
        for name, default in tables.items():
            table = getattr(self, name)
            if name == self.arch:
                table.validate()
            elif table != default():
                _fail(f"model.{name}", f"only used when model.arch = {name!r}")
