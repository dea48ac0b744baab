"""Writing figures: atomically, like every other file the package writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from rsa_bias._atomic import atomic_path


def save_figure(fig, path: str | Path, *, dpi: int = 110, close: bool = True, **kwargs) -> Path:
    """Save ``fig`` to ``path`` (format from its suffix, default PNG) through a temporary
    file renamed into place, so an interrupted run never leaves a truncated image; close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, **kwargs)
    if close:
        plt.close(fig)
    return path
