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

    Returns the permutation, the group names and the start index of each group in the
    permuted order.
    """
    names = list(dict.fromkeys(categories.tolist()))
    rank = np.array([names.index(c) for c in categories.tolist()])
    perm = np.argsort(rank, kind="stable")
    starts = np.searchsorted(rank[perm], np.arange(len(names)))
    return perm, [str(n) for n in names], starts


def plot_rdm(rdm: xr.DataArray, *, order_by: str | xr.DataArray | None = "category",
             labels: bool = True, rank: bool = False, ax=None, cmap: str = "viridis",
             title: str | None = None, colorbar: bool = True):
    """Show an RDM, its stimuli grouped by category.

    Parameters
    ----------
    rdm : xarray.DataArray with dims ("stimulus_i", "stimulus_j")
        E.g. from :func:`rsa_bias.analysis.rdm` or ``load_rsa92().human_it_mean``.
    order_by : name of a per-stimulus coord of the RDM (``"category"`` finds
        ``category_i``), a DataArray of labels over ``stimulus`` (aligned by id), or None to
        keep the RDM's order. Groups appear in order of first appearance.
    labels : label each category block at its centre and draw separators between blocks.
    rank : show percentiles of the dissimilarities (rank-transformed, as is usual when
        comparing RDMs by rank) instead of raw values.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if rdm.dims != RDM_DIMS:
        raise ValueError(f"expected an RDM with dims {RDM_DIMS}; got {rdm.dims}")
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
                     label="percentile" if rank else rdm.attrs.get("measure", "dissimilarity"))
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
    """Several RDMs side by side (titled by their keys), each ordered by ``order_by`` as in
    :func:`plot_rdm`; category labels on the first only. Percentiles by default, since RDMs
    of different systems are compared by rank."""
    fig, axes = plt.subplots(1, len(rdms), figsize=(4.2 * len(rdms), 4.4), squeeze=False)
    for ax, (name, r) in zip(axes[0], rdms.items(), strict=True):
        plot_rdm(r, order_by=order_by, rank=rank, ax=ax, cmap=cmap, title=name,
                 colorbar=False, labels=ax is axes[0, 0])
    fig.tight_layout()
    return fig
