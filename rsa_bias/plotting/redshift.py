"""Figures of the Neural Redshift experiment: complexity heatmaps of weight scale x depth per
activation, images of sampled random functions, the LZ complexity of random Transformers'
generations, and complexity at initialisation against the representation gap after training."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import xarray as xr

from rsa_bias.plotting._save import save_figure

MEASURE_LABELS = {"fourier_frequency": "Fourier mean frequency",
                  "polynomial_order": "Legendre polynomial order",
                  "lz_complexity": "LZ complexity (1 = random)"}


def _label(measure: str) -> str:
    try:
        return MEASURE_LABELS[measure]
    except KeyError:
        raise ValueError(f"unknown measure {measure!r}; valid: {sorted(MEASURE_LABELS)}") \
            from None


def _scale_text(values) -> list[str]:
    return [f"{v:g}" for v in np.asarray(values, dtype=float)]


def plot_complexity_heatmaps(mlp: xr.Dataset, *, measure: str = "fourier_frequency",
                             variant: str = "plain"):
    """Mean complexity over networks, weight scale (y) x depth (x), one panel per activation.

    Parameters
    ----------
    mlp : xarray.Dataset
        :func:`rsa_bias.experiments.redshift.random_mlp_sweep`'s result.
    measure : str, default "fourier_frequency"
        ``"fourier_frequency"``, ``"polynomial_order"`` or ``"lz_complexity"``.
    variant : str, default "plain"
        The architectural variant drawn.

    Returns
    -------
    matplotlib.figure.Figure
        One heatmap per activation on one shared colour scale.
    """
    label = _label(measure)
    means = mlp[measure].sel(variant=variant).mean("network")
    acts = list(means.activation.values)
    cols = min(4, len(acts))
    rows = -(-len(acts) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.8 * rows), squeeze=False,
                             sharex=True, sharey=True)
    vmin, vmax = float(means.min()), float(means.max())
    for ax, act in zip(axes.flat, acts, strict=False):
        grid = means.sel(activation=act).transpose("scale", "depth").values[::-1]
        sns.heatmap(grid, ax=ax, vmin=vmin, vmax=vmax, cmap="magma", cbar=False,
                    xticklabels=list(means.depth.values),
                    yticklabels=_scale_text(means.scale.values)[::-1])
        ax.set_title(str(act))
    for ax in axes.flat[len(acts):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("depth")
    for ax in axes[:, 0]:
        ax.set_ylabel("weight scale A")
    fig.colorbar(plt.cm.ScalarMappable(plt.Normalize(vmin, vmax), "magma"), ax=axes,
                 label=label, shrink=0.8)
    fig.suptitle(f"{label} of random MLPs ({variant}), mean over networks")
    return fig


def plot_random_functions(mlp: xr.Dataset):
    """Sampled random functions on the grid: one row per activation, one column per scale.

    Parameters
    ----------
    mlp : xarray.Dataset
        :func:`rsa_bias.experiments.redshift.random_mlp_sweep`'s result (its ``example``).

    Returns
    -------
    matplotlib.figure.Figure
        Network 0 of each cell at the sweep's example depth, each image on its own colour
        scale.
    """
    ex = mlp["example"]
    acts, scales = list(ex.activation.values), list(ex.scale.values)
    fig, axes = plt.subplots(len(acts), len(scales), squeeze=False,
                             figsize=(1.3 * len(scales) + 1, 1.3 * len(acts) + 0.6))
    for i, act in enumerate(acts):
        for j, scale in enumerate(scales):
            ax = axes[i, j]
            ax.imshow(ex.sel(activation=act, scale=scale).values, cmap="viridis",
                      origin="lower", extent=(-1, 1, -1, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"A = {scale:g}", fontsize=9)
            if j == 0:
                ax.set_ylabel(str(act), fontsize=9)
    fig.suptitle(f"random MLPs on [-1, 1]², depth {mlp.attrs.get('example_depth', '?')}")
    fig.tight_layout()
    return fig


def plot_gpt_complexity(transformer: xr.Dataset):
    """LZ complexity of greedily generated sequences against the layer-norm gain.

    Parameters
    ----------
    transformer : xarray.Dataset
        :func:`rsa_bias.experiments.redshift.random_gpt_sweep`'s result.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per depth; one line per activation, mean over models with its 95%
        bootstrap interval (seeded); the dashed line is uniformly random tokens.
    """
    df = transformer["lz_complexity"].to_dataframe().reset_index()
    grid = sns.relplot(df, x="ln_gain", y="lz_complexity", hue="activation", col="depth",
                       kind="line", marker="o", errorbar=("ci", 95), seed=0,
                       height=3.0, aspect=1.0)
    gains = [float(g) for g in transformer["ln_gain"].values]
    for ax in grid.axes.flat:
        ax.set_xscale("log")
        ax.set_xticks(gains, [f"{g:g}" for g in gains])
        ax.minorticks_off()
        ax.axhline(1.0, ls="--", c="0.5", lw=1)
    grid.set_axis_labels("layer-norm gain", "LZ complexity of generations")
    grid.figure.suptitle("random GPT-style models: complexity of what they generate")
    grid.figure.subplots_adjust(top=0.8)
    return grid.figure


def plot_init_gap(ds: xr.Dataset, *, measure: str = "fourier_frequency"):
    """Complexity at initialisation (x) against the R² gap after training (y).

    Parameters
    ----------
    ds : xarray.Dataset
        :func:`rsa_bias.experiments.init_gap.init_gap_dataset`'s result.
    measure : str, default "fourier_frequency"
        The complexity measure on the x axis.

    Returns
    -------
    matplotlib.figure.Figure
        One small point per seed; per activation x init scale, the mean with 95% bootstrap
        intervals over seeds in both directions.
    """
    label = _label(measure)
    df = ds[[measure, "r2_gap"]].to_dataframe().reset_index()
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    sns.scatterplot(df, x=measure, y="r2_gap", hue="activation", style="init_scale",
                    alpha=0.35, s=18, ax=ax, legend=False)
    summary = _mean_intervals(df, measure)
    palette = dict(zip(df.activation.unique(),
                       sns.color_palette(n_colors=df.activation.nunique()), strict=True))
    for row in summary.itertuples():
        ax.errorbar(row.x, row.y, xerr=[[row.x - row.x_lo], [row.x_hi - row.x]],
                    yerr=[[row.y - row.y_lo], [row.y_hi - row.y]], fmt="o", ms=7,
                    color=palette[row.activation], capsize=2)
        ax.annotate(f"{row.activation} ×{row.init_scale:g}", (row.x, row.y), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.axhline(0.0, c="0.6", lw=0.8)
    ax.set_xlabel(f"{label} at initialisation")
    ax.set_ylabel(f"R² {ds.attrs.get('easy', 'easy')} − R² {ds.attrs.get('hard', 'hard')} "
                  "after training")
    ax.set_title("complexity at init vs representation gap")
    fig.tight_layout()
    return fig


def _mean_intervals(df: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Mean and seeded 95% bootstrap interval of x and y per activation x init scale."""
    rng = np.random.default_rng(0)
    rows = []
    for (act, scale), g in df.groupby(["activation", "init_scale"], sort=False):
        row = {"activation": act, "init_scale": scale}
        for key, col in (("x", measure), ("y", "r2_gap")):
            v = g[col].to_numpy(dtype=float)
            boots = rng.choice(v, size=(2000, len(v))).mean(axis=1)
            row |= {key: v.mean(), f"{key}_lo": np.percentile(boots, 2.5),
                    f"{key}_hi": np.percentile(boots, 97.5)}
        rows.append(row)
    return pd.DataFrame(rows)


def save_redshift_figures(results: dict[str, xr.Dataset], out_dir: str | Path
                          ) -> dict[str, Path]:
    """Every Neural Redshift figure, into ``out_dir``.

    Parameters
    ----------
    results : dict of str to xarray.Dataset
        ``"mlp"`` and/or ``"transformer"`` results of
        :func:`rsa_bias.experiments.redshift.run_redshift`.
    out_dir : str or pathlib.Path
        Folder for the figures.

    Returns
    -------
    dict of str to pathlib.Path
        ``redshift_<measure>`` (one heatmap figure per measure), ``redshift_functions``
        and ``redshift_transformer``, for the results given.
    """
    out_dir = Path(out_dir)
    paths = {}
    if "mlp" in results:
        for m in MEASURE_LABELS:
            paths[f"redshift_{m}"] = save_figure(plot_complexity_heatmaps(results["mlp"],
                                                                          measure=m),
                                                 out_dir / f"redshift_{m}.png")
        paths["redshift_functions"] = save_figure(plot_random_functions(results["mlp"]),
                                                  out_dir / "redshift_functions.png")
    if "transformer" in results:
        paths["redshift_transformer"] = save_figure(
            plot_gpt_complexity(results["transformer"]), out_dir / "redshift_transformer.png")
    return paths
