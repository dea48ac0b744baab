"""Declarative experiment configs: one TOML file fully determines a run.

Every section is a frozen dataclass. :func:`load_config` rejects unknown keys,
wrong types and impossible values with a :class:`ConfigError` that names the
offending key (``training.lr``), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsa_bias.config._base import (  # noqa: F401 - re-exported vocabularies
    ACTIVATIONS,
    ARCHITECTURES,
    CODINGS,
    COLOURS,
    ENUMERATE_MAX_BITS,
    FEATURE_TYPES,
    INIT_FAMILIES,
    NORMS,
    OPTIMIZERS,
    READOUTS,
    SEED_LIMIT,
    SHAPES,
    TASK_KINDS,
    TEXTURES,
    ConfigError,
    Section,
    _check_seed,
    _fail,
)
from rsa_bias.config.memory import check_memory
from rsa_bias.config.model import (  # noqa: F401 - re-exported
    CNNConfig,
    ModelConfig,
    ResNetConfig,
    TransformerConfig,
)
from rsa_bias.config.task import (  # noqa: F401 - re-exported
    FeatureSpec,
    ImageTaskConfig,
    TaskConfig,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class TrainingConfig(Section):
    """Optimisation, evaluation and snapshot schedule.

    ``fused = true`` runs Adam's fused kernel (one pass over each parameter instead of
    seven; about a third faster for a batched ensemble of the default MLP on a 2-core CPU).
    It rounds differently from the default implementation, which training amplifies, so a
    fused run is a different (equally valid) sample of seeds: compare runs made with the
    same setting. A batched ensemble reproduces sequential runs to the bit with the default
    implementation (at the shipped sizes, on the CPU), and to float32 rounding with the fused
    kernel, whose blocks fall differently on a stacked parameter.
    """

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
    fused: bool = False

    def validate(self) -> None:
        self._check_finite("training")
        if self.fused and self.optimizer != "adam":
            _fail("training.fused", f"Adam's fused kernel only; training.optimizer is "
                  f"{self.optimizer!r} (set training.fused = false)")
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
class AnalysisConfig(Section):
    """Settings of the post-training analyses."""

    unit_threshold: float = 0.5
    n_pcs: int = 8

    def validate(self) -> None:
        self._check_finite("analysis")
        if not 0.0 < self.unit_threshold < 1.0:
            _fail("analysis.unit_threshold", f"must be in (0, 1), got {self.unit_threshold}")
        if self.n_pcs < 1:
            _fail("analysis.n_pcs", f"must be >= 1, got {self.n_pcs}")


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """A whole experiment: task, model, training, analysis and the seeds to run."""

    name: str = "complexity_bias"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def validate(self) -> ExperimentConfig:
        self._check_finite("")
        if not self.seeds:
            _fail("seeds", "at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds):
            _fail("seeds", f"seeds must be unique, got {list(self.seeds)}")
        _check_seed("seeds", self.seeds)
        for section in (self.task, self.model, self.training, self.analysis):
            section.validate()
        self._check_arch()
        if self.model.arch == "mlp" and self.task.kind == "images" and \
                max(self.task.images.n_values) > 2:
            _fail("model.arch", "the MLP has binary heads only; use model.arch = 'cnn' for "
                  "image features with more than 2 values (or 2 values per feature)")
        self._check_batch()
        late = [f"task.features.{i}.start_step" for i, f in enumerate(
            getattr(self.task, "features", ())) if f.start_step >= self.training.steps]
        if late:
            _fail(late[0], f"must be below training.steps={self.training.steps}, or that "
                  "feature is never trained")
        check_memory(self)
        return self

    def _check_arch(self) -> None:
        arch = self.model.arch
        if arch in ("cnn", "resnet") and self.task.kind != "images":
            _fail("model.arch", f"{arch!r} needs image stimuli; set task.kind = 'images'")
        if arch != "transformer":
            return
        if self.task.kind != "binary":
            _fail("model.arch", "the Transformer reads binary inputs as tokens; set "
                  "task.kind = 'binary'")
        order = self.model.transformer.output_order
        names = [f.name for f in self.task.features]
        if order and sorted(order) != sorted(names):
            _fail("model.transformer.output_order", f"must list every feature once, in the "
                  f"order emitted: a permutation of {names}, got {list(order)}")

    def _check_batch(self) -> None:
        n, task = self.task.train_size, self.task
        if self.training.batch_size > n:
            source = (f"task.n_train = {n}" if isinstance(task.n_train, int) else
                      f"task.n_train = 'all': the {2 ** task.n_bits} inputs less "
                      f"task.val_size + task.test_size = {task.val_size + task.test_size}")
            _fail("training.batch_size", f"{self.training.batch_size} is larger than the "
                  f"training set of {n} stimuli ({source}); lower training.batch_size to at "
                  f"most {n} or enlarge the training set")

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
    if origin in (typing.Union, types.UnionType):
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
    path : str or pathlib.Path
        A ``.toml`` file (UTF-8).
    overrides : list of str, optional
        ``"training.steps=500"``-style assignments; values are parsed as TOML
        (``seeds=[0,1]``, ``task.coding="01"``; bare words are taken as strings, ``.5`` as
        a float) and an inline table merges into its table (:func:`apply_override`).

    Returns
    -------
    ExperimentConfig
        The validated config.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ConfigError
        When ``path`` is a folder, cannot be read, is not UTF-8 or not TOML, or the config
        is invalid (the message names the key).
    """
    from rsa_bias.config.kinds import refuse_other_kind

    data = read_toml(path, overrides)
    refuse_other_kind(data, path)
    return config_from_dict(data)


def read_toml(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a TOML config file as nested dicts and apply ``section.key=value`` overrides.

    The reading half of :func:`load_config`, shared by the configs of every experiment.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.toml`` file (UTF-8).
    overrides : list of str, optional
        Assignments applied in order with :func:`apply_override`.

    Returns
    -------
    dict
        The config as nested dicts, not yet validated.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ConfigError
        When ``path`` is a folder, cannot be read, is not UTF-8 or not TOML.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file; give a .toml file (the "
                          "shipped configs are in models/)")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; the shipped configs are "
                                "in models/")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror or exc}); check its "
                          "permissions") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); TOML "
                          "configs must be UTF-8, so re-save it with UTF-8 encoding") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for item in overrides or []:
        apply_override(data, item)
    return data


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``data[a][b] = value`` from the string ``"a.b=value"`` (in place).

    The value is parsed as TOML; ``.5`` and ``5.`` (not TOML) are floats, and a bare word
    that is no TOML value is taken as a string. An inline table merges into the table it
    names (``model={depth=1}`` sets ``model.depth`` only), deeply.

    Parameters
    ----------
    data : dict
        The config as nested dicts (from TOML).
    item : str
        The assignment, e.g. ``"training.steps=500"``.

    Raises
    ------
    ConfigError
        When ``item`` has no ``=``, a parent key is not a table, or the value starts like a
        list, table or quoted string but is no valid TOML value (the message names the key).
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    value = _parse_value(key, raw)
    *parents, last = key.split(".")
    node = data
    for p in parents:
        if isinstance(node, list):  # an array of tables, indexed from 0: task.features.1.k
            if not p.isdigit() or int(p) >= len(node):
                raise ConfigError(f"override {item!r}: {p} is not an index of its list of "
                                  f"{len(node)} tables (0..{len(node) - 1})")
            node = node[int(p)]
        else:
            node = node.setdefault(p, {})
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"override {item!r}: {p} is not a table")
    if isinstance(node, list):
        raise ConfigError(f"override {item!r}: give an index and a key after {parents[-1]}, "
                          f"e.g. {key}.0.<key>=...")
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        _merge(node[last], value)
    else:
        node[last] = value


#: A decimal number TOML refuses but ``float`` takes: ``.5``, ``5.``, ``-.5e-2``.
_LOOSE_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?")


def _parse_value(key: str, raw: str) -> Any:
    """The TOML value of an override's right-hand side (see :func:`apply_override`)."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError as exc:
        text = raw.strip()
        if _LOOSE_FLOAT.fullmatch(text):
            return float(text)
        if text[:1] in ("[", "{", '"', "'"):
            why = re.sub(r"\s*\(at (end of document|line \d+, column \d+)\)", "", str(exc))
            _fail(key, f"not a valid value {text!r} ({why}); write lists, tables and quoted "
                  "strings in TOML, e.g. [1, 2], {depth = 2} or \"01\"")
        return raw


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Merge the nested dict ``new`` into ``into`` (in place): tables merge, values replace."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v
