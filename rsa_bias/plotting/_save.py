"""Writing figures: atomically, like every other file the package writes."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from rsa_bias._atomic import atomic_path


def save_figure(fig, path: str | Path, *, dpi: int = 110, close: bool = True, **kwargs) -> Path:
    """Save a figure atomically and close it.

    ``fig`` is written to ``path`` (format from its suffix, default PNG) through a temporary
    file in the same folder that is renamed into place, so an interrupted run never leaves a
    truncated image; missing folders are created.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    path : str or pathlib.Path
        Where to write it; its suffix (``.png``, ``.pdf``, ``.svg``, ...) gives the format,
        PNG when it has none.
    dpi : int, default 110
        Resolution of raster formats.
    close : bool, default True
        Close ``fig`` (``matplotlib.pyplot.close``) once it is written.

    Other Parameters
    ----------------
    **kwargs
        Passed on to :meth:`matplotlib.figure.Figure.savefig` (e.g. ``bbox_inches="tight"``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=dpi, **kwargs)
    if close:
        plt.close(fig)
    return path
