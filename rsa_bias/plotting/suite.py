"""Figures of the bias suite: learning curves per condition (learning order), the R² of
each feature by the position it is emitted at (a Transformer's output order), and the R²
of each feature across finished runs (CNN vs ResNet, or any runs side by side)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import xarray as xr

from rsa_bias.plotting._save import save_figure
from rsa_bias.plotting.sweep import _at_layer, _factors, save_sweep_figure

#: The swept key whose values are a Transformer's output orders.
ORDER_KEY = "model.transformer.output_order"
#: The most conditions :func:`save_sweep_figures` draws learning curves of.
MAX_CURVES = 12


def condition_labels(ds: xr.Dataset) -> list[str]:
    """A readable label per point of a sweep: ``"base"`` or ``"key=value"``.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (:func:`rsa_bias.store.read_sweep`), one-at-a-time (``point`` dim with
        ``factor`` and ``value`` coords) or over exactly one swept factor.

    Returns
    -------
    list of str
        One label per point (per value of the factor), in the sweep's order.

    Raises
    ------
    ValueError
        For a grid sweep over more than one factor (select one value of the others first).
    """
    if "point" in ds.dims:
        return [f"{f}={v}" if str(f) else "base"
                for f, v in zip(ds.factor.values, ds.value.values, strict=True)]
    keys = [k for k in _factors(ds) if k in ds.dims]
    if len(keys) != 1:
        raise ValueError(f"the sweep varies {keys}; select one value of all but one factor "
                         "first (ds.isel(...))")
    return [f"{keys[0]}={_text(v)}" for v in ds[keys[0]].values]


def _text(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps([str(v) for v in value])
    return str(value)


def _by_condition(da: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """``da`` with its point (or factor) dim renamed ``condition`` and labelled."""
    dim = "point" if "point" in ds.dims else next(k for k in _factors(ds) if k in ds.dims)
    da = da.drop_vars([c for c in da.coords if c != dim and dim in da[c].dims])
    return da.rename({dim: "condition"}).assign_coords(condition=condition_labels(ds))


def plot_learning_curves(ds: xr.Dataset, *, layer: str | None = None, split: str = "test"):
    """Held-out accuracy and R² of each feature over training, one line per condition.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep over conditions (e.g. the learning orders of ``rsa-bias sweep
        --one-at-a-time --grid task.features.0.start_step=...``), as
        :func:`condition_labels` takes it.
    layer : str, optional
        The layer whose R² is drawn; default the last layer.
    split : str, default "test"
        The split whose accuracy is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        One column per feature; top row accuracy against the training step (``eval_step``),
        bottom row R² at ``layer`` against the snapshot step; per condition the mean over
        seeds with its 95% bootstrap interval over seeds (seeded).
    """
    features = [str(f) for f in ds.feature.values]
    acc = _by_condition(ds.accuracy.sel(split=split), ds)
    r2, where = _at_layer(ds.r2, layer)
    r2 = _by_condition(r2, ds)
    conditions = [str(c) for c in acc.condition.values]
    palette = dict(zip(conditions, sns.color_palette(n_colors=len(conditions)), strict=True))
    fig, axes = plt.subplots(2, len(features), figsize=(4.4 * len(features) + 1.5, 6.6),
                             squeeze=False, sharex="row")
    for j, feat in enumerate(features):
        for row, (da, x, ylabel) in enumerate(((acc, "eval_step", f"{split} accuracy"),
                                               (r2, "step", f"R² at {where}"))):
            df = da.sel(feature=feat).reset_coords(drop=True).to_dataframe(name="y")
            sns.lineplot(df.reset_index().dropna(), x=x, y="y", hue="condition",
                         hue_order=conditions, palette=palette, errorbar=("ci", 95), seed=0,
                         ax=axes[row, j], legend=row == 0 and j == len(features) - 1)
            axes[row, j].set_title(f"{feat}: {ylabel}")
            axes[row, j].set_xlabel("training step")
            axes[row, j].set_ylabel(ylabel)
    if axes[0, -1].get_legend() is not None:
        sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), fontsize="small")
    fig.tight_layout()
    return fig


def emission_positions(ds: xr.Dataset) -> xr.DataArray:
    """The position at which each feature is emitted, per output order of a sweep.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep over ``model.transformer.output_order`` (a grid sweep of that one key):
        its values list feature names in emission order (empty: the task's order).

    Returns
    -------
    xarray.DataArray
        ``position(order, feature)``: 1 for the feature emitted first, 2 for the next, ...

    Raises
    ------
    ValueError
        When ``ds`` is not a sweep over the output order.
    """
    if ORDER_KEY not in ds.dims:
        raise ValueError(f"the sweep does not vary {ORDER_KEY}; sweep it, e.g. --grid "
                         f"'{ORDER_KEY}=[\"a\",\"b\"],[\"b\",\"a\"]'")
    features = [str(f) for f in ds.feature.values]
    rows = []
    for value in ds[ORDER_KEY].values:
        order = json.loads(value) if isinstance(value, str) else list(value)
        order = [str(o) for o in order] or features
        rows.append([order.index(f) + 1 for f in features])
    return xr.DataArray(np.array(rows), dims=(ORDER_KEY, "feature"),
                        coords={ORDER_KEY: ds[ORDER_KEY].values, "feature": features},
                        name="position")


def position_frame(ds: xr.Dataset, *, layer: str | None = None) -> tuple[pd.DataFrame, str]:
    """Final R² per seed, output order and feature, with the position of the feature.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep over the output order (see :func:`emission_positions`).
    layer : str, optional
        The layer; default the last one.

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``order`` (the output order as text), ``seed``, ``feature``, ``position``
        and ``R2``.
    layer : str
        The layer the R² was read at.
    """
    positions = emission_positions(ds)
    r2, where = _at_layer(ds.r2_final, layer)
    df = r2.reset_coords(drop=True).to_dataframe(name="R2").reset_index()
    pos = positions.to_dataframe().reset_index()
    df = df.merge(pos, on=[ORDER_KEY, "feature"])
    df["order"] = [_text(v) for v in df.pop(ORDER_KEY)]
    return df[["order", "seed", "feature", "position", "R2"]], where


def plot_position_effect(ds: xr.Dataset, *, layer: str | None = None):
    """R² of each feature by the position it is emitted at, 95% intervals over seeds.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep over ``model.transformer.output_order`` (see :func:`emission_positions`).
    layer : str, optional
        The layer (a Transformer block) whose R² is drawn; default the last one.

    Returns
    -------
    matplotlib.figure.Figure
        x the emission position (1: first), y the final R² at ``layer``, one line per
        feature: the mean over the seeds of the orders that emit it there, with its 95%
        bootstrap interval (seeded).
    """
    df, where = position_frame(ds, layer=layer)
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    sns.pointplot(df, x="position", y="R2", hue="feature", errorbar=("ci", 95), seed=0,
                  dodge=0.2, ax=ax)
    ax.set_xlabel("position the feature is emitted at (1 = first)")
    ax.set_ylabel(f"R² at {where}")
    ax.set_title("output position")
    fig.tight_layout()
    return fig


def runs_frame(results: Mapping[str, xr.Dataset], *,
               layers: Sequence[str] | None = None) -> pd.DataFrame:
    """Final R² per run, seed and feature, each run at its own layer.

    Parameters
    ----------
    results : mapping of str to xarray.Dataset
        ``{label: results}``, each the ``results.nc`` of a finished run
        (:func:`rsa_bias.store.read_results`): ``r2(layer, seed, step, feature)``.
    layers : sequence of str, optional
        The layer of each run, in the order of ``results``; default each run's last layer
        (an MLP's last hidden layer, the CNN's last fc layer, the ResNet's ``pool`` when it
        has no fc layers).

    Returns
    -------
    pandas.DataFrame
        Columns ``run``, ``layer``, ``seed``, ``feature`` and ``R2`` (at the last step).

    Raises
    ------
    ValueError
        When ``layers`` has another length than ``results`` or names a missing layer.
    """
    if layers is not None and len(layers) != len(results):
        raise ValueError(f"{len(layers)} layers for {len(results)} runs; give one per run")
    frames = []
    for i, (label, res) in enumerate(results.items()):
        names = [str(v) for v in res.layer.values]
        layer = names[-1] if layers is None else layers[i]
        if layer not in names:
            raise ValueError(f"run {label!r} has no layer {layer!r}; its layers: {names}")
        r2 = res.r2.sel(layer=layer).isel(step=-1).reset_coords(drop=True)
        df = r2.to_dataframe(name="R2").reset_index()[["seed", "feature", "R2"]]
        frames.append(df.assign(run=label, layer=layer))
    return pd.concat(frames, ignore_index=True)[["run", "layer", "seed", "feature", "R2"]]


def plot_runs(results: Mapping[str, xr.Dataset], *, layers: Sequence[str] | None = None):
    """R² of each feature in several finished runs side by side (e.g. CNN vs ResNet).

    Parameters
    ----------
    results : mapping of str to xarray.Dataset
        ``{label: results}``, as :func:`runs_frame` takes them.
    layers : sequence of str, optional
        The layer of each run; default each run's last layer.

    Returns
    -------
    matplotlib.figure.Figure
        Bars of the mean final R² per feature (x) and run (hue), with 95% bootstrap
        intervals over seeds (seeded); the legend names each run's layer.
    """
    df = runs_frame(results, layers=layers)
    df["run"] = [f"{r} ({la})" for r, la in zip(df.run, df.layer, strict=True)]
    fig, ax = plt.subplots(figsize=(1.6 * df.feature.nunique() * df.run.nunique() + 2, 3.8))
    sns.barplot(df, x="feature", y="R2", hue="run", errorbar=("ci", 95), seed=0, ax=ax)
    ax.set_ylabel("R² (final step)")
    ax.set_title("feature variance explained per run")
    fig.tight_layout()
    return fig


def save_sweep_figures(ds: xr.Dataset, out_dir: str | Path) -> list[Path]:
    """Every figure that fits a sweep, into ``out_dir``.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep (:func:`rsa_bias.store.read_sweep`).
    out_dir : str or pathlib.Path
        Folder for the figures (created if missing).

    Returns
    -------
    list of pathlib.Path
        ``sweep_r2.png`` (:func:`~rsa_bias.plotting.plot_sweep`); ``learning_curves.png``
        (:func:`plot_learning_curves`) for a one-at-a-time sweep or a sweep of one factor,
        of at most :data:`MAX_CURVES` conditions; ``position.png``
        (:func:`plot_position_effect`) when the sweep varies the output order.
    """
    out_dir = Path(out_dir)
    paths = [save_sweep_figure(ds, out_dir)]
    one_factor = "point" in ds.dims or len([k for k in _factors(ds) if k in ds.dims]) == 1
    n = ds.sizes.get("point", 0) or max((ds.sizes[k] for k in _factors(ds) if k in ds.dims),
                                        default=0)
    if one_factor and n <= MAX_CURVES:
        paths.append(save_figure(plot_learning_curves(ds), out_dir / "learning_curves.png"))
    if ORDER_KEY in ds.dims:
        paths.append(save_figure(plot_position_effect(ds), out_dir / "position.png"))
    return paths
