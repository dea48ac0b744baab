"""Layer-by-layer similarity heatmaps (CKA matrices)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr


def plot_cka_heatmap(matrix: xr.DataArray, *, annot: bool = True, fmt: str = "{:.2f}",
                     vmin: float = 0.0, vmax: float = 1.0, cmap: str = "viridis", ax=None,
                     title: str | None = None):
    """Heatmap of a layer x layer similarity matrix.

    Parameters
    ----------
    matrix : xarray.DataArray with two dims, e.g. ("layer_a", "layer_b")
        For instance from :func:`rsa_bias.analysis.cka_matrix`; rows (y axis) are the first
        dim, columns (x axis) the second, each labelled by its coordinate values and named
        by its dim. Its name labels the colour bar (default ``"similarity"``).
    annot : bool, default True
        Write each value (``fmt``) in its cell.
    fmt : str, default "{:.2f}"
        Format of the cell values.
    vmin, vmax : float, default 0.0, 1.0
        Colour limits; annotations are black above their middle and white at or below it.
    cmap : str, default "viridis"
        Matplotlib colour map.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new Figure sized to the matrix.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The Figure of ``ax`` (or a new one) with the heatmap, its colour bar and, with
        ``annot``, the values.
    """
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix; got dims {matrix.dims}")
    rows, cols = matrix.dims
    values = np.asarray(matrix.values, dtype=float)
    fig = ax.figure if ax is not None else plt.figure(
        figsize=(1.6 + 0.7 * values.shape[1], 1.0 + 0.55 * values.shape[0]))
    ax = ax or fig.add_subplot()
    im = ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    fig.colorbar(im, ax=ax, label=matrix.name or "similarity")
    ax.set_xticks(np.arange(values.shape[1]), [str(v) for v in matrix[cols].values],
                  rotation=45, ha="right")
    ax.set_yticks(np.arange(values.shape[0]), [str(v) for v in matrix[rows].values])
    ax.set_xlabel(str(cols))
    ax.set_ylabel(str(rows))
    if annot:
        mid = (vmin + vmax) / 2
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8,
                    color="k" if v > mid else "w")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
