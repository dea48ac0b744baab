"""Path to a real dataset shipped in the repository's ``data/`` folder."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"


def data_file(relative: str) -> Path:
    """``data/<relative>``; fails (not skips) when missing, since the data ship with the repo."""
    path = DATA / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; the reference tests need the shipped data "
                                "(see data/README.md)")
    return path
