"""Scores per layer and model with confidence whiskers and the noise-ceiling band."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call

CEILING_LABEL = "noise ceiling"


def _scalar(ds: xr.Dataset, name: str | None) -> float:
    if name is None or name not in ds:
        return np.nan
    v = np.asarray(ds[name].values, dtype=float)
    return float(v) if v.ndim == 0 else np.nan


def _panel(ax, ds: xr.Dataset, *, score: str, x: str, hue: str | None,
           interval: tuple[str, str] | None, ceiling: tuple[str, str] | None) -> None:
    xs = [str(v) for v in ds[x].values]
    hues = [str(v) for v in ds[hue].values] if hue else [None]
    width = 0.8 / len(hues)
    lower, upper = (_scalar(ds, c) for c in (ceiling or (None, None)))
    if np.isfinite(lower) and np.isfinite(upper):
        ax.axhspan(lower, upper, color="0.85", zorder=0, label=CEILING_LABEL)
    for k, h in enumerate(hues):
        sub = ds.sel({hue: ds[hue].values[k]}) if hue else ds
        height = sub[score].transpose(x).values.astype(float)
        pos = np.arange(len(xs)) - 0.4 + width * (k + 0.5)
        yerr = None
        if interval is not None and all(c in sub for c in interval):
            low, high = (sub[c].transpose(x).values.astype(float) for c in interval)
            yerr = np.nan_to_num(np.stack([height - low, high - height]))
        ax.bar(pos, height, width=width * 0.95, yerr=yerr, capsize=2, label=h,
               color=f"C{k}", error_kw={"lw": 0.8})
    ax.set_xticks(np.arange(len(xs)), xs)
    ax.axhline(0, color="k", lw=0.6)


@legacy_call(renamed={"ci": "interval"})
def plot_scores_with_ceiling(result: xr.Dataset, *, score: str = "score", x: str = "layer",
                             hue: str | None = "model", panel: str | None = "target",
                             interval: tuple[str, str] | None = ("ci_low", "ci_high"),
                             ceiling: tuple[str, str] | None = ("noise_ceiling_lower",
                                                                "noise_ceiling_upper"),
                             ylabel: str | None = None, title: str | None = None):
    """Bars of ``score`` per ``x`` (layer) and ``hue`` (model), one panel per ``panel`` value.

    Parameters
    ----------
    result : xarray.Dataset
        ``score`` over dims (``x``[, ``hue``][, ``panel``]), optionally ``ci_low``/``ci_high``
        (drawn as whiskers) and scalar-per-panel ``noise_ceiling_lower``/
        ``noise_ceiling_upper`` (drawn as a grey band from lower to upper; panels whose
        ceiling is NaN get none), as returned by
        :func:`rsa_bias.experiments.brain_scores.rsa_vs_it`.
    score : str, default "score"
        Name of the variable drawn as bars.
    x : str, default "layer"
        Dim whose entries are the groups along the x axis (and the x-axis label).
    hue : str or None, default "model"
        Dim whose entries are the bars within a group; None, or a name that is not a dim of
        ``score``, draws one bar per group.
    panel : str or None, default "target"
        Dim whose entries are the panels; None, or a name that is not a dim of ``score``,
        draws one panel.
    interval : tuple of str or None, default ("ci_low", "ci_high")
        Names of the lower and upper interval variables, or None to leave the whiskers out
        (they are also left out when either variable is missing). The old name ``ci=``
        still works, with a FutureWarning, until rsa_bias 0.3.
    ceiling : tuple of str or None, default ("noise_ceiling_lower", "noise_ceiling_upper")
        Names of the lower and upper noise-ceiling variables, or None to leave the band out.
    ylabel : str, optional
        Label of the y axis; default ``score``.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per panel (sharing the y axis, titled by the ``panel`` value), bars in
        hue-major order with their whiskers, the noise-ceiling band and a line at 0; one
        legend of the ``hue`` entries and the band to the right of the panels.
    """
    if score not in result:
        raise ValueError(f"no variable {score!r} in the result (has {list(result.data_vars)})")
    hue = hue if hue in result[score].dims else None
    panels = list(result[panel].values) if panel and panel in result[score].dims else [None]
    n_x = result.sizes[x]
    n_h = result.sizes[hue] if hue else 1
    fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 0.25 * n_x * n_h * len(panels) +
                                                      2.2 * len(panels), 3.6),
                             squeeze=False, sharey=True)
    for ax, p in zip(axes[0], panels, strict=True):
        ds = result.sel({panel: p}) if p is not None else result
        _panel(ax, ds, score=score, x=x, hue=hue, interval=interval, ceiling=ceiling)
        if p is not None:
            ax.set_title(str(p))
        ax.set_xlabel(x)
    axes[0, 0].set_ylabel(ylabel or score)
    handles, labels = axes[0, -1].get_legend_handles_labels()
    for ax in axes[0]:  # the band may be drawn in a panel other than the last
        for hd, lb in zip(*ax.get_legend_handles_labels(), strict=True):
            if lb not in labels:
                handles, labels = [*handles, hd], [*labels, lb]
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.95), frameon=False,
               fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
