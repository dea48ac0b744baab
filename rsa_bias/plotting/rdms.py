"""RDM figures: a dissimilarity matrix ordered by category, with labels and separators."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from scipy.stats import rankdata

RDM_DIMS = ("stimulus_i", "stimulus_j")


def _categories(rdm: xr.DataArray, order_by: str | xr.DataArray) -> np.ndarray:
    """Category label of every stimulus on ``stimulus_i``, looked up by stimulus id."""
    ids = rdm["stimulus_i"].values
    if isinstance(order_by, xr.DataArray):
        if "stimulus" not in order_by.dims:
            raise ValueError(f"order_by has dims {order_by.dims}; expected ('stimulus',)")
        missing = np.setdiff1d(ids, order_by["stimulus"].values)
        if missing.size:
            raise ValueError(f"order_by lacks {missing.size} stimulus ids of the RDM (e.g. "
                             f"{missing[:3].tolist()})")
        return order_by.sel(stimulus=ids).values
    for name in (f"{order_by}_i", order_by):
        if name in rdm.coords and rdm[name].dims == ("stimulus_i",):
            return rdm[name].values
    found = sorted(str(c) for c in rdm.coords if rdm[c].dims == ("stimulus_i",))
    raise ValueError(f"the RDM has no coord {order_by!r} (or {order_by}_i) on stimulus_i; "
                     f"found {found}. Pass the labels as a DataArray over 'stimulus', e.g. "
                     "order_by=load_rsa92().category")


def category_order(categories: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Stable order grouping equal labels (groups in order of first appearance).

    Parameters
    ----------
    categories : numpy.ndarray
        One label per item, shape ``(n,)``.

    Returns
    -------
    perm : numpy.ndarray of int
        The permutation that groups equal labels, keeping the input order within a group.
    names : list of str
        The group names, in order of first appearance.
    starts : numpy.ndarray of int
        The start index of each group in the permuted order.

    Examples
    --------
    >>> import numpy as np
    >>> perm, names, starts = category_order(np.array(["face", "house", "face", "cat"]))
    >>> perm.tolist(), names, starts.tolist()
    ([0, 2, 1, 3], ['face', 'house', 'cat'], [0, 2, 3])
    """
    names = list(dict.fromkeys(categories.tolist()))
    rank = np.array([names.index(c) for c in categories.tolist()])
    perm = np.argsort(rank, kind="stable")
    starts = np.searchsorted(rank[perm], np.arange(len(names)))
    return perm, [str(n) for n in names], starts


def _columns_like_rows(rdm: xr.DataArray) -> xr.DataArray:
    """``rdm`` with ``stimulus_j`` in the order of ``stimulus_i`` (by id)."""
    if "stimulus_i" not in rdm.coords or "stimulus_j" not in rdm.coords:
        return rdm
    rows, cols = rdm["stimulus_i"].values, rdm["stimulus_j"].values
    if np.array_equal(rows, cols):
        return rdm
    if set(rows.tolist()) != set(cols.tolist()):
        raise ValueError("the RDM's stimulus_i and stimulus_j hold different ids; an RDM is "
                         "square over one stimulus set")
    return rdm.sel(stimulus_j=rows)


def plot_rdm(rdm: xr.DataArray, *, order_by: str | xr.DataArray | None = "category",
             labels: bool = True, rank: bool = False, ax=None, cmap: str = "viridis",
             title: str | None = None, colorbar: bool = True):
    """Show an RDM, its stimuli grouped by category.

    Parameters
    ----------
    rdm : xarray.DataArray with dims ("stimulus_i", "stimulus_j")
        E.g. from :func:`rsa_bias.analysis.rdm` or ``load_rsa92().human_it_mean``. The
        columns are aligned to the rows by stimulus id (``stimulus_j`` may be in another
        order); an RDM whose two dims hold different ids is refused.
    order_by : str, xarray.DataArray or None, default "category"
        Name of a per-stimulus coord of the RDM (``"category"`` finds ``category_i``), a
        DataArray of labels over ``stimulus`` (aligned by id), or None to keep the RDM's
        order. Groups appear in order of first appearance.
    labels : bool, default True
        Label each category block at its centre and draw separators between blocks
        (without them, or with ``order_by=None``, the axes have no ticks).
    rank : bool, default False
        Show percentiles of the dissimilarities (rank-transformed, as is usual when
        comparing RDMs by rank; the diagonal is 0) instead of raw values.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new Figure.
    cmap : str, default "viridis"
        Matplotlib colour map.
    title : str, optional
        Axes title.
    colorbar : bool, default True
        Draw a colour bar, labelled ``"percentile"`` with ``rank``, else by the RDM's
        ``attrs["method"]`` (as :func:`rsa_bias.analysis.rdm` records it; default
        ``"dissimilarity"``).

    Returns
    -------
    matplotlib.figure.Figure
        The Figure of ``ax`` (or a new one) with the (reordered) RDM as an image, white
        separators between category blocks and, optionally, the colour bar.
    """
    if rdm.dims != RDM_DIMS:
        raise ValueError(f"expected an RDM with dims {RDM_DIMS}; got {rdm.dims}")
    rdm = _columns_like_rows(rdm)
    values = np.asarray(rdm.values, dtype=float)
    names: list[str] = []
    starts = np.zeros(0, dtype=int)
    if order_by is not None:
        perm, names, starts = category_order(_categories(rdm, order_by))
        values = values[np.ix_(perm, perm)]
    if rank:
        off = ~np.eye(len(values), dtype=bool)
        pct = np.zeros_like(values)
        pct[off] = 100 * (rankdata(values[off]) - 0.5) / off.sum()
        values = pct
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.2, 4.4))
    ax = ax or fig.add_subplot()
    im = ax.imshow(values, cmap=cmap, interpolation="nearest")
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                     label="percentile" if rank else rdm.attrs.get("method", "dissimilarity"))
    if labels and names:
        ends = np.append(starts[1:], len(values))
        centres = (starts + ends - 1) / 2
        for b in starts[1:]:
            ax.axhline(b - 0.5, color="w", lw=0.8)
            ax.axvline(b - 0.5, color="w", lw=0.8)
        ax.set_yticks(centres, names, fontsize=7)
        ax.set_xticks(centres, names, fontsize=7, rotation=45, ha="right")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


def plot_rdm_row(rdms: Mapping[str, xr.DataArray], *,
                 order_by: str | xr.DataArray | None = "category", rank: bool = True,
                 cmap: str = "viridis"):
    """Several RDMs side by side, titled by their keys.

    Each is ordered by ``order_by`` as in :func:`plot_rdm`; category labels on the first
    only. Percentiles by default, since RDMs of different systems are compared by rank.

    Parameters
    ----------
    rdms : mapping of str -> xarray.DataArray with dims ("stimulus_i", "stimulus_j")
        Panel title -> RDM.
    order_by : str, xarray.DataArray or None, default "category"
        How to group the stimuli of every RDM (see :func:`plot_rdm`).
    rank : bool, default True
        Show percentiles of the dissimilarities instead of raw values.
    cmap : str, default "viridis"
        Matplotlib colour map.

    Returns
    -------
    matplotlib.figure.Figure
        One row of panels, one RDM each (no colour bars), category labels on the first.
    """
    fig, axes = plt.subplots(1, len(rdms), figsize=(4.2 * len(rdms), 4.4), squeeze=False)
    for ax, (name, r) in zip(axes[0], rdms.items(), strict=True):
        plot_rdm(r, order_by=order_by, rank=rank, ax=ax, cmap=cmap, title=name,
                 colorbar=False, labels=ax is axes[0, 0])
    fig.tight_layout()
    return fig
