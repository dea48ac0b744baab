"""Figures of a complexity-bias results Dataset. Each function returns the matplotlib Figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import xarray as xr

from rsa_bias.plotting._save import save_figure


def _final(da: xr.DataArray) -> xr.DataArray:
    return da.isel(step=-1) if "step" in da.dims else da


def plot_r2_by_layer(res: xr.Dataset, *, ax=None):
    """Bar plot of R² per layer and feature at the final step, 95% CI over seeds.

    Parameters
    ----------
    res : xarray.Dataset
        Results of a complexity-bias run (:func:`rsa_bias.experiments.run_complexity_bias`):
        ``r2(layer, feature, seed[, step])`` and ``r2_joint(layer, seed[, step])``; only the
        last ``step`` is drawn.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new Figure.

    Returns
    -------
    matplotlib.figure.Figure
        The Figure of ``ax`` (or a new one): per layer, one bar per feature and one for all
        features jointly (``"all (joint)"``), each the mean test R² over seeds with its 95%
        bootstrap interval, one dot per seed; y axis 0..1.
    """
    df = _final(res.r2).to_dataframe(name="R2").reset_index()
    joint = _final(res.r2_joint).to_dataframe(name="R2").reset_index()
    joint["feature"] = "all (joint)"
    df = pd.concat([df, joint], ignore_index=True)
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.5, 3.8))
    ax = ax or fig.add_subplot()
    sns.barplot(df, x="layer", y="R2", hue="feature", errorbar=("ci", 95), seed=0, ax=ax)
    sns.stripplot(df, x="layer", y="R2", hue="feature", dodge=True, legend=False, ax=ax,
                  palette="dark:k", size=3, alpha=0.6)
    ax.set_ylabel("variance explained (R², test)")
    ax.set_title("Variance of each layer explained by each feature")
    ax.set_ylim(0, 1)
    fig.tight_layout()
    return fig


def plot_training_curves(res: xr.Dataset, *, layer: str | None = None):
    """R² of ``layer`` (default: last) over snapshot steps and test accuracy over training.

    Parameters
    ----------
    res : xarray.Dataset
        Results of a complexity-bias run (:func:`rsa_bias.experiments.run_complexity_bias`):
        ``r2(layer, feature, seed, step)``, optionally ``r2_final_norm`` (same dims, from
        :func:`rsa_bias.normalise_by_final`) and ``accuracy(seed, split, feature,
        eval_step)``.
    layer : str, optional
        The layer whose R² is drawn; default the last of ``res.layer``.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels, one line per feature, mean over seeds with a 95% interval: the R² of
        ``layer`` over the snapshot steps (share of the current variance); the same
        explained variance over the final step's total variance (left empty when ``res``
        has no ``r2_final_norm``); and the test accuracy of each feature over training.
    """
    layer = layer or str(res.layer.values[-1])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    r2 = res.r2.sel(layer=layer).to_dataframe(name="R2").reset_index()
    sns.lineplot(r2, x="step", y="R2", hue="feature", marker="o", errorbar=("ci", 95), seed=0,
                 ax=axes[0])
    axes[0].set_title(f"R² at {layer} (share of current variance)")
    if "r2_final_norm" in res:
        norm = res.r2_final_norm.sel(layer=layer).to_dataframe(name="R2").reset_index()
        sns.lineplot(norm, x="step", y="R2", hue="feature", marker="o", errorbar=("ci", 95), seed=0,
                     ax=axes[1])
    axes[1].set_title(f"R² at {layer} / final total variance")
    acc = res.accuracy.sel(split="test").to_dataframe(name="accuracy").reset_index()
    sns.lineplot(acc, x="eval_step", y="accuracy", hue="feature", errorbar=("ci", 95), seed=0,
                 ax=axes[2])
    axes[2].set_title("held-out (test) accuracy")
    axes[2].set_xlabel("step")
    fig.tight_layout()
    return fig


def plot_pca(res: xr.Dataset, *, layer: str | None = None):
    """Variance fraction of the top PCs, coloured by the feature they align with most.

    Parameters
    ----------
    res : xarray.Dataset
        Results of a complexity-bias run (:func:`rsa_bias.experiments.run_complexity_bias`):
        ``variance_fraction(layer, seed, pc)`` and ``feature_corr(layer, seed, pc,
        feature)``, as from :func:`rsa_bias.pca_summary` per layer.
    layer : str, optional
        The layer to draw; default the last of ``res.layer``.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: bars of the share of the total variance on each PC (mean over seeds,
        95% interval) and an annotated heatmap of ``|corr(PC score, feature)|`` (PC x
        feature), mean over seeds.
    """
    layer = layer or str(res.layer.values[-1])
    sub = res.sel(layer=layer)
    frac = sub.variance_fraction.to_dataframe(name="fraction").reset_index()
    best = sub.feature_corr.mean("seed")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    sns.barplot(frac, x="pc", y="fraction", errorbar=("ci", 95), seed=0, ax=axes[0], color="0.6")
    axes[0].set_title(f"PCA of {layer}")
    sns.heatmap(best.to_pandas(), annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis",
                ax=axes[1])
    axes[1].set_title("|corr(PC score, feature)|, mean over seeds")
    fig.tight_layout()
    return fig


def save_figures(res: xr.Dataset, out_dir: str | Path) -> list[Path]:
    """Draw the standard figures of a complexity-bias run into ``out_dir``.

    Parameters
    ----------
    res : xarray.Dataset
        Results of a complexity-bias run, as :func:`plot_r2_by_layer`,
        :func:`plot_training_curves` and :func:`plot_pca` take them.
    out_dir : str or pathlib.Path
        Folder for the figures (created if missing).

    Returns
    -------
    list of pathlib.Path
        ``r2_by_layer.png``, ``training_curves.png`` and ``pca.png`` in ``out_dir``, each
        written atomically by :func:`save_figure` (the figures are closed).
    """
    out_dir = Path(out_dir)
    paths = []
    for name, fn in (("r2_by_layer", plot_r2_by_layer), ("training_curves",
                     plot_training_curves), ("pca", plot_pca)):
        paths.append(save_figure(fn(res), out_dir / f"{name}.png"))
    return paths
