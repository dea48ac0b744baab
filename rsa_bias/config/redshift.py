"""The config of the Neural Redshift experiment (``rsa-bias redshift``): random MLPs on a 2D
grid and random GPT-style Transformers, and the complexity measures applied to them.

One TOML file (``models/redshift.toml``) with a top-level ``name``, ``seed``, ``device`` and
the measure settings, a ``[mlp]`` table (the random-MLP sweep) and a ``[transformer]`` table
(the random-Transformer sweep). :func:`load_redshift_config` reads and validates it with the
same rules as every config (unknown keys, wrong types and impossible values are refused
with the key named).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsa_bias.config._base import ACTIVATIONS, Section, _check_seed, _fail, load_typed

#: How the random MLPs' weights and biases are drawn (``rsa_bias.networks.random_mlp``).
RANDOM_INITS = ("uniform", "normal", "scaled_normal")
#: Architectural variants of the random MLPs: plain, residual connections after the first
#: hidden layer, layer normalisation before each activation, or both.
MLP_VARIANTS = ("plain", "residual", "layer_norm", "residual_layer_norm")
DEVICES = ("auto", "cpu", "cuda")


def _check_values(key: str, values: tuple, valid: tuple) -> None:
    if not values:
        _fail(key, f"must list at least one value; valid: {valid}")
    bad = [v for v in values if v not in valid]
    if bad:
        _fail(key, f"unknown value(s) {bad}; valid: {valid}")
    if len(set(values)) != len(values):
        _fail(key, f"lists a value more than once: {list(values)}")


def _check_positive(key: str, values: tuple, *, low: float = 0.0) -> None:
    if not values:
        _fail(key, "must list at least one value")
    bad = [v for v in values if not v > low]
    if bad:
        _fail(key, f"every value must be > {low:g}, got {bad}")
    if len(set(values)) != len(values):
        _fail(key, f"lists a value more than once: {list(values)}")


@dataclass(frozen=True)
class RandomMLPSweep(Section):
    """Random MLPs on the grid: every ``activation x variant x scale x depth`` cell holds
    ``n_networks`` networks with ``depth`` hidden layers of ``width`` units and one output,
    their weights and biases drawn by ``init`` at ``scale`` (``uniform``: U(-scale, scale)),
    computed in ``dtype`` (float64: in float32 the nearly constant functions of deep
    sigmoid and Gaussian networks at small scales are rounding steps)."""

    activations: tuple[str, ...] = ("relu", "gelu", "silu", "selu", "tanh", "sigmoid",
                                    "gaussian", "sine")
    variants: tuple[str, ...] = ("plain", "residual", "layer_norm")
    scales: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    depths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    width: int = 64
    init: str = "uniform"
    n_networks: int = 10
    example_depth: int = 3
    dtype: str = "float64"

    def validate(self, key: str = "mlp") -> None:
        _check_values(f"{key}.activations", self.activations, ACTIVATIONS)
        _check_values(f"{key}.dtype", (self.dtype,), ("float32", "float64"))
        _check_values(f"{key}.variants", self.variants, MLP_VARIANTS)
        _check_values(f"{key}.init", (self.init,), RANDOM_INITS)
        _check_positive(f"{key}.scales", self.scales)
        _check_positive(f"{key}.depths", self.depths, low=0)
        for name in ("width", "n_networks"):
            if getattr(self, name) < 1:
                _fail(f"{key}.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.example_depth not in self.depths:
            _fail(f"{key}.example_depth", f"{self.example_depth} is not one of the depths "
                  f"{list(self.depths)}; the example functions are drawn at one of them")


@dataclass(frozen=True)
class RandomGPTSweep(Section):
    """Random GPT-style language models: every ``activation x ln_gain x depth`` cell holds
    ``n_models`` models (``width``, ``n_heads``, ``vocab`` tokens), each generating
    ``n_tokens`` tokens greedily after a random prompt of ``prompt_len`` tokens."""

    activations: tuple[str, ...] = ("relu", "gelu", "tanh", "gaussian", "sine")
    ln_gains: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    depths: tuple[int, ...] = (1, 2, 4)
    n_models: int = 20
    vocab: int = 16
    width: int = 64
    n_heads: int = 4
    n_tokens: int = 128
    prompt_len: int = 8
    weight_scale: float = 1.0

    def validate(self, key: str = "transformer") -> None:
        _check_values(f"{key}.activations", self.activations, ACTIVATIONS)
        _check_positive(f"{key}.ln_gains", self.ln_gains)
        _check_positive(f"{key}.depths", self.depths, low=0)
        for name in ("n_models", "width", "n_heads", "n_tokens", "prompt_len"):
            if getattr(self, name) < 1:
                _fail(f"{key}.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.vocab < 2:
            _fail(f"{key}.vocab", f"must be >= 2 tokens, got {self.vocab}")
        if self.width % self.n_heads:
            _fail(f"{key}.n_heads", f"{self.n_heads} heads must divide the width {self.width}")
        if not self.weight_scale > 0:
            _fail(f"{key}.weight_scale", f"must be > 0, got {self.weight_scale}")


@dataclass(frozen=True)
class RedshiftConfig(Section):
    """The whole Neural Redshift experiment: the grid, the measures and both sweeps.

    ``grid_size`` points per axis over [-1, 1]²; ``max_order`` is the Legendre order of
    the polynomial measure, ``levels`` the quantisation of the LZ measure (8: the binary
    measure sees one level set only), ``fourier_boundary`` the Fourier measure's edges
    (``"mirror"``, or ``"periodic"``, which sees the wrap-around edge of a non-periodic
    function as a step; see :func:`rsa_bias.analysis.complexity.fourier_frequency`). These
    defaults are those of ``models/redshift.toml``, whose comments give the reasons. ``seed`` seeds
    every random network; every cell draws from it afresh, so the draws are paired across cells.
    """

    name: str = "neural_redshift"
    seed: int = 0
    device: str = "auto"
    grid_size: int = 64
    max_order: int = 10
    levels: int = 8
    fourier_boundary: str = "mirror"
    mlp: RandomMLPSweep = field(default_factory=RandomMLPSweep)
    transformer: RandomGPTSweep = field(default_factory=RandomGPTSweep)

    def validate(self) -> RedshiftConfig:
        self._check_finite("")
        _check_seed("seed", self.seed)
        _check_values("device", (self.device,), DEVICES)
        if self.grid_size < 2 * (self.max_order + 1):
            _fail("grid_size", f"{self.grid_size} points per axis are too few for Legendre "
                  f"order {self.max_order}; give at least {2 * (self.max_order + 1)}")
        if self.max_order < 1:
            _fail("max_order", f"must be >= 1, got {self.max_order}")
        if not 2 <= self.levels <= 255:
            _fail("levels", f"the LZ measure needs 2 to 255 quantisation levels, got "
                  f"{self.levels}")
        _check_values("fourier_boundary", (self.fourier_boundary,), ("periodic", "mirror"))
        self.mlp.validate()
        self.transformer.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_redshift_config(path: str | Path,
                         overrides: list[str] | None = None) -> RedshiftConfig:
    """Read ``models/redshift.toml``-style config, apply overrides, validate.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.toml`` file (UTF-8).
    overrides : list of str, optional
        ``"mlp.n_networks=4"``-style assignments, as for :func:`rsa_bias.config.load_config`.

    Returns
    -------
    RedshiftConfig
        The validated config.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ConfigError
        When the file is unreadable or not TOML, or the config is invalid (the message
        names the key).
    """
    return load_typed(RedshiftConfig, path, overrides)
