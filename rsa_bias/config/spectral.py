"""The config of the spectral-bias experiment (Rahaman et al. 2019, Fig. 1): a ReLU MLP fit to
a sum of sines, and the step at which it learns each frequency.

One flat TOML file (``models/spectral_bias.toml``). :func:`load_spectral_config` reads and
validates it with the rules every config follows (unknown keys, wrong types and impossible
values are refused with the key named).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rsa_bias.config._base import Section, _check_seed, _fail, load_typed

#: The amplitude profiles: ``"equal"`` (every ``A_i = 1``) and ``"rising"`` (``A_i`` rising
#: linearly with ``k_i`` from ``min_amplitude`` at the lowest frequency to 1 at the highest).
AMPLITUDE_SETTINGS = ("equal", "rising")
SPECTRAL_DEVICES = ("auto", "cpu", "cuda")


def setting_amplitudes(setting: str, n_frequencies: int, min_amplitude: float = 0.1
                       ) -> np.ndarray:
    """The amplitudes ``A_i`` of an amplitude setting.

    Parameters
    ----------
    setting : str
        ``"equal"`` (every ``A_i = 1``) or ``"rising"`` (linear in ``i`` from
        ``min_amplitude`` to 1; with evenly spaced ``k_i`` also linear in ``k_i``; one
        frequency alone gets ``A = 1``).
    n_frequencies : int
        Number of frequencies (>= 1).
    min_amplitude : float, default 0.1
        The first amplitude of ``"rising"``.

    Returns
    -------
    numpy.ndarray
        ``(n_frequencies,)`` float64.

    Raises
    ------
    ValueError
        For a setting not in :data:`AMPLITUDE_SETTINGS`.
    """
    if setting == "equal":
        return np.ones(n_frequencies)
    if setting == "rising":
        return np.linspace(min_amplitude, 1.0, n_frequencies) if n_frequencies > 1 \
            else np.ones(1)
    raise ValueError(f"unknown amplitude setting {setting!r}; valid: {AMPLITUDE_SETTINGS}")


@dataclass(frozen=True)
class SpectralConfig(Section):
    """The spectral-bias experiment: target, network, optimiser and schedule.

    The target is ``sum_i A_i sin(2 pi k_i z + phi_i)`` for ``k_i`` in ``frequencies`` on
    ``n_points`` evenly spaced ``z`` in ``[0, 1)``; each seed draws the phases ``phi_i``
    and the network's initialisation, and both amplitude settings of one seed share them
    (paired). Every ``(setting, seed)`` network (``depth`` hidden ReLU layers of ``width``
    units, one output) trains in one batched computation with full-batch Adam at ``lr``
    for ``steps`` steps on the mean squared error; the spectrum is recorded every
    ``record_every`` steps (and at the last step).

    Attributes
    ----------
    name : str
        Names the run.
    seeds : tuple of int
        One per repeat: seeds the phases and the initialisation.
    frequencies : tuple of int
        The target's frequencies ``k_i`` (cycles over ``[0, 1)``), strictly increasing,
        each below ``n_points / 2`` (Nyquist).
    n_points : int
        Grid points, ``z_n = n / n_points``.
    amplitudes : tuple of str
        Amplitude settings run, from :data:`AMPLITUDE_SETTINGS`.
    min_amplitude : float
        The lowest frequency's amplitude in the ``"rising"`` setting (0.1: 0.1, 0.2, ...,
        1.0 over ten frequencies).
    depth : int
        Hidden layers (5: six linear layers with the output).
    width : int
        Units per hidden layer.
    lr : float
        Adam's learning rate.
    steps : int
        Full-batch Adam steps.
    record_every : int
        Steps between spectrum records.
    threshold : float
        The normalised amplitude ``|f_hat(k_i)| / A_i`` at which frequency ``k_i`` counts
        as learned.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    name: str = "spectral_bias"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    frequencies: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    n_points: int = 200
    amplitudes: tuple[str, ...] = AMPLITUDE_SETTINGS
    min_amplitude: float = 0.1
    depth: int = 5
    width: int = 256
    lr: float = 1e-3
    steps: int = 4000
    record_every: int = 100
    threshold: float = 0.9
    device: str = "auto"

    def validate(self) -> SpectralConfig:
        """Check every field; return the config.

        Returns
        -------
        SpectralConfig
            ``self``.

        Raises
        ------
        ConfigError
            Naming the first invalid key.
        """
        self._check_types()
        self._check_finite("")
        self._check_seeds()
        self._check_frequencies()
        self._check_amplitudes()
        for key in ("depth", "width", "steps", "record_every"):
            if getattr(self, key) < 1:
                _fail(key, f"must be >= 1, got {getattr(self, key)}")
        if self.record_every > self.steps:
            _fail("record_every", f"{self.record_every} is more than steps = {self.steps}; "
                  "the spectrum would be recorded only at the start and the end")
        if not self.lr > 0:
            _fail("lr", f"must be > 0, got {self.lr}")
        if not 0.0 < self.threshold <= 1.0:
            _fail("threshold", f"must be in (0, 1], got {self.threshold}")
        if self.device not in SPECTRAL_DEVICES:
            _fail("device", f"must be one of {SPECTRAL_DEVICES}, got {self.device!r}")
        return self

    def _check_types(self) -> None:
        """Refuse a field of the wrong type (a config built in Python rather than read from
        TOML, where :func:`load_spectral_config` has checked them already)."""
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), f.default
            if isinstance(default, tuple):
                if not isinstance(value, (tuple, list)):
                    _fail(f.name, f"expected a list, got {value!r}")
                kind, items = type(default[0]), list(value)
            else:
                kind, items = type(default), [value]
            ok = {float: numbers.Real, int: numbers.Integral}.get(kind, kind)
            bad = [v for v in items if isinstance(v, bool) or not isinstance(v, ok)]
            if bad:
                what = kind.__name__
                what = f"a list of {what}" if isinstance(default, tuple) else what
                _fail(f.name, f"expected {what}, got {bad[0]!r} ({type(bad[0]).__name__})")

    def _check_seeds(self) -> None:
        if not self.seeds:
            _fail("seeds", "at least one seed (one repeat) is needed")
        if len(set(self.seeds)) != len(self.seeds):
            _fail("seeds", f"seeds must be unique, got {list(self.seeds)}")
        _check_seed("seeds", self.seeds)

    def _check_frequencies(self) -> None:
        ks = list(self.frequencies)
        if not ks:
            _fail("frequencies", "at least one frequency is needed")
        if min(ks) < 1:
            _fail("frequencies", f"frequencies must be >= 1 cycle, got {ks}")
        if ks != sorted(set(ks)):
            _fail("frequencies", f"must be strictly increasing without repeats, got {ks}")
        if self.n_points < 2:
            _fail("n_points", f"must be >= 2, got {self.n_points}")
        if 2 * max(ks) >= self.n_points:
            _fail("frequencies", f"{max(ks)} is at or above the Nyquist frequency of "
                  f"n_points = {self.n_points} points (n_points / 2); give n_points > "
                  f"{2 * max(ks)} or lower frequencies")

    def _check_amplitudes(self) -> None:
        names = list(self.amplitudes)
        if not names:
            _fail("amplitudes", f"list at least one setting; valid: {AMPLITUDE_SETTINGS}")
        bad = [a for a in names if a not in AMPLITUDE_SETTINGS]
        if bad:
            _fail("amplitudes", f"unknown setting(s) {bad}; valid: {AMPLITUDE_SETTINGS}")
        if len(set(names)) != len(names):
            _fail("amplitudes", f"lists a setting more than once: {names}")
        if not 0.0 < self.min_amplitude <= 1.0:
            _fail("min_amplitude", f"must be in (0, 1], got {self.min_amplitude}")

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (provenance JSON).

        Returns
        -------
        dict
            Every field.
        """
        return dataclasses.asdict(self)


def load_spectral_config(path: str | Path,
                         overrides: list[str] | None = None) -> SpectralConfig:
    """Read a ``models/spectral_bias.toml``-style config, apply overrides, validate.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.toml`` file (UTF-8).
    overrides : list of str, optional
        ``"steps=500"``-style assignments (``seeds=[0,1]``, ``amplitudes=["equal"]``),
        parsed as for :func:`rsa_bias.config.load_config`.

    Returns
    -------
    SpectralConfig
        The validated config.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ConfigError
        When the file is unreadable or not TOML, or the config is invalid (the message
        names the key).
    """
    return load_typed(SpectralConfig, path, overrides)
