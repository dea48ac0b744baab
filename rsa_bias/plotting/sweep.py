"""Figures of a sweep (:func:`rsa_bias.experiments.sweep_result.sweep_dataset`): the final R²
of each feature against each swept factor."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import xarray as xr

from rsa_bias.plotting._save import save_figure


def _factors(ds: xr.Dataset) -> list[str]:
    """The swept keys, from ``attrs["factors"]`` (else the dims that are no point dims)."""
    if "factors" in ds.attrs:
        keys = json.loads(str(ds.attrs["factors"]))
    elif "point" in ds.dims:
        keys = list(dict.fromkeys(str(f) for f in ds.factor.values if str(f)))
    else:
        keys = [d for d in ds.r2_final.dims if d not in ("seed", "layer", "feature")]
    if not keys:
        raise ValueError("the sweep has no swept factor to plot (a single point); use "
                         "rsa_bias.plotting.plot_r2_by_layer on its results.nc instead")
    return keys


def _at_layer(r2: xr.DataArray, layer: str | None) -> tuple[xr.DataArray, str]:
    """``r2`` at ``layer``, by default each point's last layer (the last of ``r2.layer``
    holding a value; points of different depths have different last layers)."""
    names = [str(v) for v in r2.layer.values]
    if layer is not None:
        if layer not in names:
            raise ValueError(f"layer {layer!r} is not in the sweep; its layers: {names}")
        return r2.sel(layer=layer), layer
    held = r2.notnull().any(("seed", "feature"))
    last = held.sizes["layer"] - 1 - held.isel(layer=slice(None, None, -1)).argmax("layer")
    lasts = np.unique(last.values[held.any("layer").values])  # of the points there are
    return r2.isel(layer=last), names[int(lasts[0])] if lasts.size == 1 else "last layer"


def _frame(r2: xr.DataArray, key: str):
    """R² per seed, feature and value of ``key``, averaged over the other factors."""
    other = [d for d in r2.dims if d not in ("seed", "feature", key)]
    return r2.mean(other).to_dataframe(name="R2").reset_index() if other else \
        r2.to_dataframe(name="R2").reset_index()


def plot_sweep(ds: xr.Dataset, *, layer: str | None = None):
    """Final-step R² of each feature against each swept factor, 95% interval over seeds.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (:func:`rsa_bias.experiments.sweep_result.sweep_dataset`, or
        :func:`rsa_bias.store.read_sweep` of its ``sweep.nc``): ``r2_final(..., seed, layer,
        feature)`` over a dim per swept factor, or over ``point`` with the coords
        ``factor`` and ``value`` (a one-at-a-time sweep).
    layer : str, optional
        The layer whose R² is drawn; default each point's last layer (the last of
        ``ds.layer`` when every point has the same layers).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per swept factor (in the order of ``attrs["factors"]``), x its values, y
        the R² ("R²") of ``layer`` at each point's last snapshot step, one line per feature:
        the mean over seeds with its 95% bootstrap interval over seeds. In a grid sweep
        each seed's R² is first averaged over the values of the other factors (a main
        effect; a missing grid cell leaves its values out). In a one-at-a-time sweep a
        panel holds the points of its factor, and the base point's mean R² (the point that
        sets no factor, if any) is a dashed horizontal line per feature.

    Raises
    ------
    ValueError
        When ``ds`` has no swept factor, or no layer ``layer``.
    """
    keys = _factors(ds)
    r2, where = _at_layer(ds.r2_final, layer)
    features = [str(f) for f in ds.feature.values]
    palette = dict(zip(features, sns.color_palette(n_colors=len(features)), strict=True))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys) + 1, 3.6), squeeze=False,
                             sharey=True)
    for key, ax in zip(keys, axes[0], strict=True):
        if "point" in r2.dims:
            _one_at_a_time_panel(ds, r2, key, ax, palette)
        else:
            df = _frame(r2, key)
            sns.pointplot(df, x=key, y="R2", hue="feature", hue_order=features,
                          palette=palette, errorbar=("ci", 95), seed=0, ax=ax)
        ax.set_xlabel(key)
        ax.set_ylabel("R²")
        ax.set_title(f"R² at {where} vs {key}")
    fig.tight_layout()
    return fig


def _one_at_a_time_panel(ds: xr.Dataset, r2: xr.DataArray, key: str, ax, palette) -> None:
    """The points of one factor of a one-at-a-time sweep, with the base point's mean R²."""
    factor = np.asarray(ds.factor.values, dtype=str)
    sub = r2.isel(point=np.flatnonzero(factor == key))
    df = sub.assign_coords(point=sub.value.values).drop_vars(["factor", "value"],
                                                             errors="ignore")
    df = df.reset_coords(drop=True).to_dataframe(name="R2").reset_index()
    sns.pointplot(df, x="point", y="R2", hue="feature", hue_order=list(palette),
                  palette=palette, errorbar=("ci", 95), seed=0, ax=ax)
    base = np.flatnonzero(factor == "")
    if base.size:
        mean = r2.isel(point=int(base[0])).mean("seed")
        for feat, colour in palette.items():
            ax.axhline(float(mean.sel(feature=feat)), color=colour, linestyle="--",
                       linewidth=1, label=f"{feat} (base)")
        ax.legend(fontsize="small")


def save_sweep_figure(ds: xr.Dataset, out_dir: str | Path) -> Path:
    """Draw :func:`plot_sweep` of a sweep into ``out_dir/sweep_r2.png``.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep, as :func:`plot_sweep` takes it.
    out_dir : str or pathlib.Path
        Folder for the figure (created if missing).

    Returns
    -------
    pathlib.Path
        ``out_dir/sweep_r2.png``, written atomically by :func:`save_figure` (the figure is
        closed).
    """
    return save_figure(plot_sweep(ds), Path(out_dir) / "sweep_r2.png")
