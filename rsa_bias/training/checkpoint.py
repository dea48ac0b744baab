"""Resumable checkpoints: atomic writes, loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rsa_bias._atomic import atomic_path


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` via a temporary file and an atomic rename."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, *, config_json: str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``).

    Raises a :class:`ValueError` when the file is unreadable or was written for
    a different config (``config_json`` mismatch), rather than resuming a
    different experiment.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise ValueError(f"checkpoint {path} cannot be read ({exc.__class__.__name__}: {exc}); "
                         "delete it to start this seed afresh") from exc
    if config_json is not None and state.get("config_json") != config_json:
        raise ValueError(f"checkpoint {path} was written for a different config; delete it "
                         "or run with the config that wrote it")
    return state
