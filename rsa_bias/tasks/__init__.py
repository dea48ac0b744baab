"""Generators of multi-feature stimulus sets (labelled ``xr.Dataset``).

* :func:`make_binary_task` — binary features on disjoint blocks of input bits;
* :func:`make_image_task` — Trifeature-like images (colour, shape, texture);
* :func:`make_task` — either, chosen by ``task.kind``.
"""

from __future__ import annotations

from collections.abc import Callable

import xarray as xr

from rsa_bias.config import TaskConfig
from rsa_bias.tasks.binary import feature_function, make_binary_task
from rsa_bias.tasks.images import make_image_task, n_classes

_MAKERS: dict[str, Callable[[TaskConfig], xr.Dataset]] = {
    "binary": make_binary_task,
    "images": make_image_task,
}


def make_task(cfg: TaskConfig | None = None) -> xr.Dataset:
    """Generate the stimulus set of ``cfg``, by ``cfg.kind`` (a binary task by default).

    Parameters
    ----------
    cfg : TaskConfig, optional
        The task; ``kind = "binary"`` goes to :func:`make_binary_task`, ``kind = "images"``
        to :func:`make_image_task`. ``None`` means ``TaskConfig()``: one linear bit and a
        4-bit parity.

    Returns
    -------
    xarray.Dataset
        ``inputs(stimulus, ...)`` with coords ``split`` and ``feature_<name>(stimulus)``
        and ``attrs["feature_names"]``, as the chosen generator returns it.

    Raises
    ------
    ValueError
        For an unknown ``cfg.kind``.
    """
    cfg = cfg or TaskConfig()
    try:
        maker = _MAKERS[cfg.kind]
    except KeyError:
        raise ValueError(f"unknown task kind {cfg.kind!r}; valid: {sorted(_MAKERS)}") from None
    return maker(cfg)


__all__ = ["make_task", "make_binary_task", "make_image_task", "feature_function", "n_classes"]
