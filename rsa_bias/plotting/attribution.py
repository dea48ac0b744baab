"""Figures of feature attributions and of raw vs bias-controlled scores.

Each function returns the matplotlib Figure; bar heights are the plotted numbers themselves
(shares, scores), so a figure can be checked against its data.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

RESIDUAL_COLOUR = "0.75"


def attribution_table(attributions: xr.Dataset | Mapping[str, xr.Dataset], *,
                      dim: str | None = None) -> pd.DataFrame:
    """Shares per feature and the residual as a table: one row per attribution.

    Parameters
    ----------
    attributions : mapping of str -> xarray.Dataset, or xarray.Dataset
        A mapping label -> attribution Dataset (``share(feature)``, ``residual``, as from
        :func:`rsa_bias.attribute_rsa`, :func:`rsa_bias.attribute_cka` or
        :func:`rsa_bias.attribute_encoding`), or one Dataset with an extra dim ``dim`` (e.g.
        ``model``) whose entries become the rows.
    dim : str, optional
        The extra dim of a single Dataset whose entries become the rows. Default: the one
        dim of ``share`` besides ``feature`` (a Dataset with more than one such dim is
        refused); a Dataset with none gives one row labelled ``""``. Ignored for a mapping.

    Returns
    -------
    pandas.DataFrame
        One row per attribution (indexed by its label, or by the ``dim`` coordinate values
        as strings), one column per feature with its share, then ``residual``; the shares
        and the residual of a row sum to the full score. Entries over different features
        give the union of their columns (features in order of first appearance, then
        ``residual``) and NaN where a feature is missing.

    Examples
    --------
    >>> import xarray as xr
    >>> raw = xr.Dataset({"share": ("feature", [0.5, 0.25]), "residual": 0.125},
    ...                  coords={"feature": ["shape", "colour"]})
    >>> attribution_table({"raw": raw})
         shape  colour  residual
    raw    0.5    0.25     0.125
    """
    if isinstance(attributions, xr.Dataset):
        if dim is None:
            extra = [d for d in attributions["share"].dims if d != "feature"]
            if len(extra) > 1:
                raise ValueError(f"share has dims {attributions['share'].dims}; select down to "
                                 "one extra dim or pass dim=")
            dim = extra[0] if extra else None
        if dim is None:
            attributions = {"": attributions}
        else:
            attributions = {str(k): attributions.sel({dim: k})
                            for k in attributions[dim].values}
    rows = {label: {**{str(f): float(v) for f, v in zip(ds.feature.values, ds["share"].values,
                                                        strict=True)},
                    "residual": float(ds["residual"])} for label, ds in attributions.items()}
    table = pd.DataFrame(rows).T
    return table[[c for c in table.columns if c != "residual"] + ["residual"]]


def plot_attribution(attributions: xr.Dataset | Mapping[str, xr.Dataset], *, ax=None,
                     dim: str | None = None, title: str | None = None,
                     ylabel: str = "share of the score", show_total: bool = True):
    """Stacked bars: each feature's share of a score and the residual, one bar per entry.

    Positive parts stack upwards and negative parts downwards from 0, so each coloured
    segment's height is exactly one share; a black dash marks the full score (shares +
    residual). Pass ``{"raw": a, "equalised": b}`` to show raw vs controlled attributions.

    Parameters
    ----------
    attributions : mapping of str -> xarray.Dataset, or xarray.Dataset
        Attributions (``share(feature)``, ``residual``) as :func:`attribution_table` takes
        them: a mapping label -> Dataset, or one Dataset with an extra dim ``dim``. Entries
        may attribute different features (a feature an entry lacks draws nothing there);
        each feature keeps one colour and the residual is always the grey segment.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new Figure sized to the number of bars.
    dim : str, optional
        The dim of a single Dataset whose entries become the bars (see
        :func:`attribution_table`).
    title : str, optional
        Axes title.
    ylabel : str, default "share of the score"
        Label of the y axis.
    show_total : bool, default True
        Mark each bar's full score (the sum of its shares and residual) with a black dash.

    Returns
    -------
    matplotlib.figure.Figure
        The Figure of ``ax`` (or a new one) with one stacked bar per row of
        :func:`attribution_table`: feature segments in colours ``C0``, ``C1``, ...,
        the residual in light grey, the full-score dashes and a line at 0. The segments
        carry the feature names as labels (``ax.legend()`` shows them); no legend is drawn.
    """
    table = attribution_table(attributions, dim=dim)
    fig = ax.figure if ax is not None else plt.figure(figsize=(1.2 + 0.9 * len(table), 3.2))
    ax = ax or fig.add_subplot()
    x = np.arange(len(table))
    up, down = np.zeros(len(table)), np.zeros(len(table))
    colours = [f"C{i}" for i in range(len(table.columns) - 1)] + [RESIDUAL_COLOUR]
    for column, colour in zip(table.columns, colours, strict=True):
        h = np.nan_to_num(table[column].to_numpy(dtype=float))  # a feature an entry lacks: 0
        bottom = np.where(h >= 0, up, down)
        ax.bar(x, h, bottom=bottom, width=0.6, color=colour, label=column, edgecolor="white",
               linewidth=0.5)
        up, down = up + np.maximum(h, 0), down + np.minimum(h, 0)
    if show_total:
        ax.scatter(x, table.sum(axis=1), marker="_", s=400, color="k", zorder=3,
                   label="full score")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, table.index, rotation=20 if len(table) > 3 else 0, ha="right"
                  if len(table) > 3 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_scores(score: xr.DataArray, *, x: str = "model", hue: str = "condition",
                col: str | None = "measure", sharey: bool = False, height: float = 3.0):
    """Grouped bars of a score array, e.g. ``score(model, measure, condition)``.

    One panel per ``col`` entry, one group per ``x`` entry, one bar per ``hue`` entry; bar
    heights are the scores.

    Parameters
    ----------
    score : xarray.DataArray with dims (x, hue[, col])
        The scores, e.g. the ``score(measure, condition)`` of
        :func:`rsa_bias.compare_controlled` stacked over a ``model`` dim.
    x : str, default "model"
        Dim whose entries are the groups along the x axis.
    hue : str, default "condition"
        Dim whose entries are the bars within a group.
    col : str or None, default "measure"
        Dim whose entries are the panels; None draws all of ``score`` in one panel.
    sharey : bool, default False
        Share the y axis between the panels.
    height : float, default 3.0
        Figure height in inches (the width grows with the number of panels).

    Returns
    -------
    matplotlib.figure.Figure
        One row of panels (one per ``col`` entry, titled by it) with grouped bars: the
        first ``hue`` entry in dark grey, the others in ``C1``, ``C2``, ...; a line at 0 and a
        legend of the ``hue`` entries in the first panel.
    """
    panels = list(score[col].values) if col else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(0.6 + 3.4 * len(panels), height),
                             sharey=sharey, squeeze=False, layout="constrained")
    hues = list(score[hue].values)
    width = 0.8 / len(hues)
    for ax, panel in zip(axes[0], panels, strict=True):
        sub = score if panel is None else score.sel({col: panel})
        sub = sub.transpose(x, hue)
        pos = np.arange(sub.sizes[x])
        for i, h in enumerate(hues):
            ax.bar(pos + (i - (len(hues) - 1) / 2) * width, sub.sel({hue: h}).values, width,
                   label=str(h), color=f"C{i}" if i else "0.35")
        ax.set_xticks(pos, [str(v) for v in sub[x].values], rotation=25, ha="right", fontsize=8)
        ax.axhline(0, color="k", lw=0.6)
        if panel is not None:
            ax.set_title(str(panel), fontsize=10)
    axes[0][0].legend(frameon=False, fontsize=8)
    return fig


def plot_similarity_matrices(matrices: Mapping[str, xr.DataArray], *, ncols: int | None = None,
                             vmin: float = 0.0, vmax: float = 1.0, cmap: str = "viridis",
                             fmt: str = "{:.2f}"):
    """Annotated heatmaps of model × model similarity matrices, one panel per entry.

    Parameters
    ----------
    matrices : mapping of str -> xarray.DataArray
        Panel title -> square matrix with two dims (e.g. ``("model_a", "model_b")``); both
        axes are labelled with the coordinate values of the first dim, so rows and columns
        must list the same entries in the same order.
    ncols : int, optional
        Panels per row; default all in one row.
    vmin, vmax : float, default 0.0, 1.0
        Colour limits, shared by all panels.
    cmap : str, default "viridis"
        Matplotlib colour map.
    fmt : str, default "{:.2f}"
        Format of the value written in each cell (white text below the middle of
        ``vmin``..``vmax``, black above).

    Returns
    -------
    matplotlib.figure.Figure
        A grid of annotated heatmaps (unused cells hidden) with one shared colour bar.
    """
    if not matrices:
        raise ValueError("no matrices to draw; pass a mapping title -> 2-D DataArray")
    ncols = ncols or len(matrices)
    nrows = -(-len(matrices) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.8 + 3.0 * ncols, 0.3 + 2.9 * nrows),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[len(matrices):]:
        ax.set_visible(False)
    for ax, (title, m) in zip(axes.flat, matrices.items(), strict=False):
        values = np.asarray(m.values, dtype=float)
        image = ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap)
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="w" if v < (vmin + vmax) / 2 else "k")
        rows, cols = ([str(v) for v in m[d].values] if d in m.coords else
                      [str(i) for i in range(m.sizes[d])] for d in m.dims)
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows)), rows, fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6)
    return fig
