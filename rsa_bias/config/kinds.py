"""Which experiment a config file is for. Experiment configs (``[task]``, ``[model]``,
``[training]``: ``rsa-bias run``, ``sweep``, ``causal``, ``init-gap``) and the flat configs of
``rsa-bias redshift`` and ``rsa-bias spectral`` are told apart by their top-level keys, so
that ``validate`` checks any of them and ``run`` says which verb a config belongs to."""

from __future__ import annotations

import dataclasses
from pathlib import Path


def _kinds() -> dict[str, tuple[type, str, str]]:
    """``{kind: (config class, verb, what it is)}``."""
    from rsa_bias.config import ExperimentConfig
    from rsa_bias.config.redshift import RedshiftConfig
    from rsa_bias.config.spectral import SpectralConfig

    return {"experiment": (ExperimentConfig, "run", "an experiment"),
            "redshift": (RedshiftConfig, "redshift", "a Neural Redshift"),
            "spectral": (SpectralConfig, "spectral", "a spectral-bias")}


def config_kind(data: dict) -> str:
    """``"experiment"``, ``"redshift"`` or ``"spectral"``: the config whose fields hold every
    top-level key of ``data`` (an experiment config when none does: its validation then names
    the unknown key)."""
    keys = set(data)
    for kind, (cls, *_) in _kinds().items():
        if keys <= {f.name for f in dataclasses.fields(cls)}:
            return kind
    return "experiment"


def refuse_other_kind(data: dict, path: str | Path) -> None:
    """Raise when ``data`` (read from ``path``) is a redshift or spectral config, naming the
    verb that runs it (an experiment verb would only say that its keys are unknown)."""
    from rsa_bias.config import ConfigError

    kind = config_kind(data)
    if kind != "experiment":
        _, verb, what = _kinds()[kind]
        raise ConfigError(f"{path} is {what} config: run it with `rsa-bias {verb} {path} --out "
                          "DIR`; this verb takes an experiment config ([task], [model], "
                          "[training], e.g. models/complexity_bias.toml)")


def load_any_config(path: str | Path, overrides: list[str] | None = None
                    ) -> tuple[object, str]:
    """The validated config of ``path`` (with ``overrides``) whatever its kind, and the
    ``rsa-bias`` verb that runs it.

    Examples
    --------
    >>> cfg, verb = load_any_config("models/spectral_bias.toml", ["steps=200"])
    >>> verb, cfg.steps
    ('spectral', 200)
    """
    from rsa_bias.config import _from_dict, read_toml

    data = read_toml(path, overrides)  # read once; each kind's loader would read it again
    cls, verb, _ = _kinds()[config_kind(data)]
    return _from_dict(cls, data).validate(), verb
