"""Declarative experiment configs: one TOML file fully determines a run.

Every section is a frozen dataclass. :func:`load_config` rejects unknown keys,
wrong types and impossible values with a :class:`ConfigError` that names the
offending key (``training.lr``), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FEATURE_TYPES = ("linear", "threshold", "parity")
CODINGS = ("pm1", "01")
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "silu", "leaky_relu", "elu", "linear")
OPTIMIZERS = ("adam", "sgd")
ENUMERATE_MAX_BITS = 22  # tasks list the input space up to 4M inputs and sample beyond


class ConfigError(ValueError):
    """An invalid experiment config; the message names the key to fix."""


def _fail(key: str, msg: str) -> None:
    raise ConfigError(f"{key}: {msg}")


@dataclass(frozen=True)
class FeatureSpec:
    """One task feature computed from its own block of ``k`` input bits.

    ``linear`` reads one bit (k must be 1); ``threshold`` is the balanced majority
    of k bits (k odd); ``parity`` is the XOR of k bits.
    """

    name: str
    type: str = "linear"
    k: int = 1

    def validate(self, key: str) -> None:
        if not self.name.isidentifier():
            _fail(f"{key}.name", f"{self.name!r} must be a Python identifier (used in "
                  "coord names feature_<name>)")
        if self.type not in FEATURE_TYPES:
            _fail(f"{key}.type", f"unknown feature type {self.type!r}; valid: {FEATURE_TYPES}")
        if self.k < 1:
            _fail(f"{key}.k", f"must be >= 1, got {self.k}")
        if self.type == "linear" and self.k != 1:
            _fail(f"{key}.k", "a 'linear' feature reads a single bit; use k = 1 "
                  "(or type = 'threshold' for a linear threshold over several bits)")
        if self.type == "threshold" and self.k % 2 == 0:
            _fail(f"{key}.k", f"a balanced threshold (majority) needs an odd k, got {self.k}")
        if self.type == "parity" and self.k < 2:
            _fail(f"{key}.k", "parity needs k >= 2 (parity of one bit is the 'linear' type)")


@dataclass(frozen=True)
class TaskConfig:
    """Binary multi-feature task: features on disjoint bit blocks plus distractor bits."""

    features: tuple[FeatureSpec, ...] = (
        FeatureSpec("easy", "linear", 1),
        FeatureSpec("hard", "parity", 4),
    )
    n_distractor: int = 11
    coding: str = "pm1"
    n_train: int | str = "all"
    val_size: int = 2048
    test_size: int = 2048
    seed: int = 0

    def validate(self) -> None:
        if not self.features:
            _fail("task.features", "at least one feature is needed")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            _fail("task.features", f"feature names must be unique, got {names}")
        for i, f in enumerate(self.features):
            f.validate(f"task.features[{i}]")
        if self.n_distractor < 0:
            _fail("task.n_distractor", f"must be >= 0, got {self.n_distractor}")
        if self.coding not in CODINGS:
            _fail("task.coding", f"unknown coding {self.coding!r}; valid: {CODINGS}")
        if self.n_bits > 62:
            _fail("task.n_distractor", f"{self.n_bits} input bits; at most 62 are supported")
        if isinstance(self.n_train, str) and self.n_train != "all":
            _fail("task.n_train", f"must be a positive integer or 'all', got {self.n_train!r}")
        if isinstance(self.n_train, int) and self.n_train < 1:
            _fail("task.n_train", f"must be >= 1, got {self.n_train}")
        for key in ("val_size", "test_size"):
            if getattr(self, key) < 1:
                _fail(f"task.{key}", f"must be >= 1, got {getattr(self, key)}")
        self._validate_sizes()

    def _validate_sizes(self) -> None:
        n_cells = 2 ** len(self.features)
        for key in ("n_train", "val_size", "test_size"):
            n = getattr(self, key)
            if isinstance(n, int) and n % n_cells:
                _fail(f"task.{key}", f"{n} must be a multiple of {n_cells} (the number of "
                      "feature-value combinations) so that every split is exactly balanced "
                      "and its features exactly independent")
        capacity = 2 ** self.n_bits
        held_out = self.val_size + self.test_size
        wanted = held_out + (self.n_train if isinstance(self.n_train, int) else 0)
        if held_out >= capacity or wanted > capacity:
            _fail("task.n_distractor", f"the input space holds only {capacity} distinct inputs "
                  f"({self.n_bits} bits) but the splits ask for {wanted} (n_train="
                  f"{self.n_train}, val_size={self.val_size}, test_size={self.test_size}); "
                  "inputs cannot be held out without leaking test inputs into training. Add "
                  "distractor bits (task.n_distractor) or shrink the splits")
        if self.n_train == "all" and self.n_bits > ENUMERATE_MAX_BITS:
            _fail("task.n_train", f"'all' needs an enumerable input space (<= "
                  f"{ENUMERATE_MAX_BITS} bits); with {self.n_bits} bits give an integer")

    @property
    def n_bits(self) -> int:
        return sum(f.k for f in self.features) + self.n_distractor


@dataclass(frozen=True)
class ModelConfig:
    """MLP with one binary read-out head per feature."""

    depth: int = 4
    width: int = 256
    activation: str = "relu"
    dropout: float = 0.0
    init_scale: float = 1.0

    def validate(self) -> None:
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


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation, evaluation and snapshot schedule."""

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    steps: int = 5000
    eval_every: int = 100
    snapshot_steps: tuple[int, ...] = (0, 250, 1000, 5000)
    checkpoint_every: int = 0
    device: str = "auto"

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            _fail("training.optimizer", f"unknown optimizer {self.optimizer!r}; "
                  f"valid: {OPTIMIZERS}")
        if self.lr <= 0:
            _fail("training.lr", f"must be > 0, got {self.lr}")
        if not 0.0 <= self.momentum < 1.0:
            _fail("training.momentum", f"must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            _fail("training.weight_decay", f"must be >= 0, got {self.weight_decay}")
        for key in ("batch_size", "steps", "eval_every"):
            if getattr(self, key) < 1:
                _fail(f"training.{key}", f"must be >= 1, got {getattr(self, key)}")
        if self.checkpoint_every < 0:
            _fail("training.checkpoint_every", "must be >= 0 (0 = only at the end)")
        bad = [s for s in self.snapshot_steps if not 0 <= s <= self.steps]
        if bad:
            _fail("training.snapshot_steps", f"steps {bad} lie outside [0, training.steps="
                  f"{self.steps}]")
        if list(self.snapshot_steps) != sorted(set(self.snapshot_steps)):
            _fail("training.snapshot_steps", "must be strictly increasing without repeats")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            _fail("training.device", f"must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    @property
    def all_snapshot_steps(self) -> tuple[int, ...]:
        """Snapshot steps with the final step always included."""
        return tuple(sorted(set(self.snapshot_steps) | {self.steps}))


@dataclass(frozen=True)
class AnalysisConfig:
    """Settings of the post-training analyses."""

    unit_threshold: float = 0.5
    n_pcs: int = 8

    def validate(self) -> None:
        if not 0.0 < self.unit_threshold < 1.0:
            _fail("analysis.unit_threshold", f"must be in (0, 1), got {self.unit_threshold}")
        if self.n_pcs < 1:
            _fail("analysis.n_pcs", f"must be >= 1, got {self.n_pcs}")


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: task, model, training, analysis and the seeds to run."""

    name: str = "complexity_bias"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def validate(self) -> ExperimentConfig:
        if not self.seeds:
            _fail("seeds", "at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds):
            _fail("seeds", f"seeds must be unique, got {list(self.seeds)}")
        for section in (self.task, self.model, self.training, self.analysis):
            section.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert lists to tuples."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            _fail(key, f"expected a table, got {type(value).__name__}")
        return _from_dict(tp, value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            _fail(key, f"expected a list, got {value!r}")
        inner = typing.get_args(tp)[0]
        return tuple(_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        _fail(key, f"{value!r} is not one of {typing.get_args(tp)}")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (type(value) is not tp):
        _fail(key, f"expected {tp.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else key
            _fail(where, f"unknown key; valid keys here: {sorted(names)}")
    kwargs = {
        k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()
    }
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from nested dicts."""
    return _from_dict(ExperimentConfig, data).validate()


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a TOML config, apply ``section.key=value`` overrides, validate.

    Parameters
    ----------
    path : path to a ``.toml`` file.
    overrides : list of str, optional
        ``"training.steps=500"``-style assignments; values are parsed as TOML
        (``seeds=[0,1]``, ``task.coding="01"``; bare words are taken as strings).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; the shipped configs are "
                                "in models/")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for item in overrides or []:
        apply_override(data, item)
    return config_from_dict(data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``data[a][b] = value`` from the string ``"a.b=value"`` (in place)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    *parents, last = key.strip().split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {p} is not a table")
    node[last] = value
