"""Neural Redshift (Teney et al. 2024): the complexity of random networks, as labelled results.

:func:`run_redshift` samples thousands of random MLPs on a 2D grid over [-1, 1]² (every
activation x variant x weight scale x depth cell of ``config.mlp``, one batched computation
per cell) and measures each function's Fourier mean frequency, Legendre polynomial order and
LZ compressibility (:mod:`rsa_bias.analysis.complexity`); and it generates token sequences
greedily from random GPT-style models (every activation x layer-norm gain x depth cell of
``config.transformer``) and measures their LZ complexity. The random draws are paired: every
cell uses the same seed, so network ``i`` of two cells differs only in what the cells vary.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from rsa_bias.analysis.complexity import fourier_frequency, lz_complexity, polynomial_order
from rsa_bias.config.redshift import RedshiftConfig
from rsa_bias.networks.random_gpt import random_gpt_generate
from rsa_bias.networks.random_mlp import grid_points, random_mlp_outputs
from rsa_bias.provenance import provenance_attrs
from rsa_bias.training.loop import resolve_device

MEASURES = ("fourier_frequency", "polynomial_order", "lz_complexity")
#: ``variant`` -> (residual, layer_norm) of :func:`random_mlp_outputs`
VARIANT_FLAGS = {"plain": (False, False), "residual": (True, False),
                 "layer_norm": (False, True), "residual_layer_norm": (True, True)}


def _measures(values: np.ndarray, cfg: RedshiftConfig) -> dict[str, np.ndarray]:
    """The three measures of ``(n, grid, grid)`` functions."""
    return {"fourier_frequency": fourier_frequency(values, ndim=2,
                                                   boundary=cfg.fourier_boundary),
            "polynomial_order": polynomial_order(values, ndim=2, max_order=cfg.max_order),
            "lz_complexity": lz_complexity(values, ndim=2, levels=cfg.levels)}


def random_mlp_sweep(cfg: RedshiftConfig, *, progress: bool = True) -> xr.Dataset:
    """Complexity of random MLPs in every cell of ``cfg.mlp``.

    Parameters
    ----------
    cfg : RedshiftConfig
        The grid, the measures and the sweep (``cfg.mlp``); validated first.
    progress : bool, default True
        Show a progress bar over the cells.

    Returns
    -------
    xarray.Dataset
        ``fourier_frequency``, ``polynomial_order`` and ``lz_complexity`` over
        ``("activation", "variant", "scale", "depth", "network")``, and ``example``
        ``("activation", "scale", "y", "x")``: network 0's function at depth
        ``cfg.mlp.example_depth``, plain variant (or the first variant listed).
    """
    cfg.validate()
    sweep, n = cfg.mlp, cfg.grid_size
    device = str(resolve_device(cfg.device))
    points = grid_points(n, ndim=2)
    dims = (len(sweep.activations), len(sweep.variants), len(sweep.scales), len(sweep.depths))
    out = {m: np.full(dims + (sweep.n_networks,), np.nan) for m in MEASURES}
    example = np.full((dims[0], dims[2], n, n), np.nan)
    example_variant = "plain" if "plain" in sweep.variants else sweep.variants[0]
    cells = list(itertools.product(*(range(d) for d in dims)))
    for a, v, s, d in tqdm(cells, desc="random MLPs", unit="cell", disable=not progress):
        residual, layer_norm = VARIANT_FLAGS[sweep.variants[v]]
        values = random_mlp_outputs(
            points, n_networks=sweep.n_networks, activation=sweep.activations[a],
            depth=sweep.depths[d], width=sweep.width, scale=sweep.scales[s], init=sweep.init,
            residual=residual, layer_norm=layer_norm, seed=cfg.seed, device=device,
            dtype=sweep.dtype)
        values = values.detach().cpu().double().numpy().reshape(-1, n, n)
        for name, m in _measures(values, cfg).items():
            out[name][a, v, s, d] = m
        if sweep.variants[v] == example_variant and sweep.depths[d] == sweep.example_depth:
            example[a, s] = values[0]
    return _mlp_dataset(out, example, cfg)


def _mlp_dataset(out: dict[str, np.ndarray], example: np.ndarray,
                 cfg: RedshiftConfig) -> xr.Dataset:
    sweep = cfg.mlp
    dims = ("activation", "variant", "scale", "depth", "network")
    axis = np.linspace(-1.0, 1.0, cfg.grid_size)
    ds = xr.Dataset(
        {name: (dims, values) for name, values in out.items()}
        | {"example": (("activation", "scale", "y", "x"), example)},
        coords={"activation": list(sweep.activations), "variant": list(sweep.variants),
                "scale": list(sweep.scales), "depth": list(sweep.depths),
                "network": np.arange(sweep.n_networks), "y": axis, "x": axis})
    ds.attrs.update(provenance_attrs(cfg, seed=cfg.seed, method="random_mlp_sweep"))
    ds.attrs.update(init=sweep.init, width=sweep.width, example_depth=sweep.example_depth,
                    dtype=sweep.dtype,
                    max_order=cfg.max_order, levels=cfg.levels,
                    fourier_boundary=cfg.fourier_boundary)
    return ds


def random_gpt_sweep(cfg: RedshiftConfig, *, progress: bool = True) -> xr.Dataset:
    """LZ complexity of token sequences generated greedily by random GPT-style models.

    Parameters
    ----------
    cfg : RedshiftConfig
        The sweep (``cfg.transformer``); validated first.
    progress : bool, default True
        Show a progress bar over the cells.

    Returns
    -------
    xarray.Dataset
        ``lz_complexity`` over ``("activation", "ln_gain", "depth", "model")`` (1: as
        complex as uniformly random tokens) and ``distinct_tokens``, the number of different
        tokens each generated sequence uses.
    """
    cfg.validate()
    t = cfg.transformer
    device = str(resolve_device(cfg.device))
    shape = (len(t.activations), len(t.ln_gains), len(t.depths), t.n_models)
    lz, distinct = np.full(shape, np.nan), np.full(shape, np.nan)
    cells = list(itertools.product(*(range(k) for k in shape[:3])))
    for a, g, d in tqdm(cells, desc="random Transformers", unit="cell", disable=not progress):
        tokens = random_gpt_generate(
            n_models=t.n_models, n_tokens=t.n_tokens, vocab=t.vocab, width=t.width,
            depth=t.depths[d], n_heads=t.n_heads, activation=t.activations[a],
            ln_gain=t.ln_gains[g], weight_scale=t.weight_scale, prompt_len=t.prompt_len,
            seed=cfg.seed, device=device).cpu().numpy()
        lz[a, g, d] = lz_complexity(tokens, ndim=1, levels=t.vocab)
        distinct[a, g, d] = [len(np.unique(row)) for row in tokens]
    dims = ("activation", "ln_gain", "depth", "model")
    ds = xr.Dataset({"lz_complexity": (dims, lz), "distinct_tokens": (dims, distinct)},
                    coords={"activation": list(t.activations), "ln_gain": list(t.ln_gains),
                            "depth": list(t.depths), "model": np.arange(t.n_models)})
    ds.attrs.update(provenance_attrs(cfg, seed=cfg.seed, method="random_gpt_sweep"))
    ds.attrs.update(vocab=t.vocab, n_tokens=t.n_tokens, width=t.width,
                    weight_scale=t.weight_scale)
    return ds


def complexity_ratios(mlp: xr.Dataset, *, min_scale: float = 10.0,
                      min_depth: int = 3, variant: str = "plain") -> pd.DataFrame:
    """Each activation's complexity at small and at large weight scale, and against ReLU.

    Parameters
    ----------
    mlp : xarray.Dataset
        :func:`random_mlp_sweep`'s result.
    min_scale : float, default 10.0
        "Large A": the scales >= this.
    min_depth : int, default 3
        "Deep": the depths >= this.
    variant : str, default "plain"
        The variant compared.

    Returns
    -------
    pandas.DataFrame
        One row per activation and measure: the mean at the smallest scale and depth
        (``small``), over large scales and depths (``large``), ``large`` over ReLU's
        ``large`` (``vs_relu``, NaN without ReLU), the spread of the cell means over every
        scale and depth (``cell_spread``: max - min) and the mean within-cell standard
        deviation over networks (``network_sd``, the seed-to-seed noise).
    """
    plain = mlp.sel(variant=variant)
    big = plain.sel(scale=plain.scale >= min_scale, depth=plain.depth >= min_depth)
    rows = []
    for act in plain.activation.values:
        for m in MEASURES:
            cell = plain[m].sel(activation=act)
            means = cell.mean("network")
            rows.append({"activation": str(act), "measure": m,
                         "small": float(cell.isel(scale=0, depth=0).mean()),
                         "large": float(big[m].sel(activation=act).mean()),
                         "cell_spread": float(means.max() - means.min()),
                         "network_sd": float(cell.std("network", ddof=1).mean())})
    table = pd.DataFrame(rows)
    relu = table[table.activation == "relu"].set_index("measure")["large"]
    table["vs_relu"] = table.measure.map(relu) if len(relu) else np.nan
    table["vs_relu"] = table["large"] / table["vs_relu"]
    return table


def variant_effect(mlp: xr.Dataset, *, measure: str = "fourier_frequency") -> pd.DataFrame:
    """How residual connections and layer normalisation change a complex configuration.

    For each activation, the plain cell (scale, depth) whose mean ``measure`` is highest is
    compared with the same cell under every other variant.

    Parameters
    ----------
    mlp : xarray.Dataset
        :func:`random_mlp_sweep`'s result, with a ``"plain"`` variant.
    measure : str, default "fourier_frequency"
        The measure that picks the most complex plain cell.

    Returns
    -------
    pandas.DataFrame
        One row per activation and measure: the cell's ``scale`` and ``depth`` and the mean
        over networks under each variant (one column per variant).
    """
    if "plain" not in mlp.variant.values:
        raise ValueError(f"variant_effect compares with the plain variant; the sweep has "
                         f"{list(mlp.variant.values)}")
    rows = []
    for act in mlp.activation.values:
        means = {m: mlp[m].sel(activation=act).mean("network") for m in MEASURES}
        plain = means[measure].sel(variant="plain")
        s, d = np.unravel_index(int(np.nanargmax(plain.values)), plain.shape)
        cell = {"scale": float(plain.scale[s]), "depth": int(plain.depth[d])}
        for m in MEASURES:
            values = means[m].sel(**cell)
            rows.append({"activation": str(act), "measure": m, **cell,
                         **{str(v): float(values.sel(variant=v)) for v in mlp.variant.values}})
    return pd.DataFrame(rows)


def measure_agreement(mlp: xr.Dataset) -> pd.DataFrame:
    """Spearman rank correlations between the three measures over every cell of the sweep.

    Parameters
    ----------
    mlp : xarray.Dataset
        :func:`random_mlp_sweep`'s result.

    Returns
    -------
    pandas.DataFrame
        ``measure x measure``: Spearman's rho of the cell means (over networks).
    """
    from scipy.stats import spearmanr

    cells = np.stack([mlp[m].mean("network").values.ravel() for m in MEASURES], axis=1)
    rho = spearmanr(cells[np.isfinite(cells).all(axis=1)]).statistic
    return pd.DataFrame(np.atleast_2d(rho), index=list(MEASURES), columns=list(MEASURES))


def run_redshift(cfg: RedshiftConfig, *, progress: bool = True) -> dict[str, xr.Dataset]:
    """Both sweeps of the Neural Redshift experiment.

    Parameters
    ----------
    cfg : RedshiftConfig
        The experiment; validated first.
    progress : bool, default True
        Show progress bars.

    Returns
    -------
    dict of str to xarray.Dataset
        ``"mlp"`` (:func:`random_mlp_sweep`) and ``"transformer"`` (:func:`random_gpt_sweep`).
    """
    return {"mlp": random_mlp_sweep(cfg, progress=progress),
            "transformer": random_gpt_sweep(cfg, progress=progress)}


def run_redshift_config(out_dir: str | Path, *, config: str | Path | RedshiftConfig,
                        progress: bool = True, figures: bool = True
                        ) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """Run the experiment of a config file into ``out_dir`` (the ``rsa-bias redshift`` verb).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for ``redshift_mlp.nc``, ``redshift_transformer.nc`` and the figures.
    config : str, pathlib.Path or RedshiftConfig
        The config (a path is read with :func:`~rsa_bias.config.redshift.load_redshift_config`).
    progress : bool, default True
        Show progress bars.
    figures : bool, default True
        Draw the figures.

    Returns
    -------
    results : dict of str to xarray.Dataset
        As :func:`run_redshift`.
    paths : dict of str to pathlib.Path
        Every file written.
    """
    from rsa_bias.config.redshift import load_redshift_config
    from rsa_bias.store import write_results

    cfg = config if isinstance(config, RedshiftConfig) else load_redshift_config(config)
    out = Path(out_dir)
    results = run_redshift(cfg, progress=progress)
    paths = {name: write_results(ds, out / f"redshift_{name}.nc")
             for name, ds in results.items()}
    if figures:
        from rsa_bias.plotting.redshift import save_redshift_figures

        paths.update(save_redshift_figures(results, out))
    return results, paths


def redshift_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """The summary ``rsa-bias redshift`` prints: each activation's mean complexity at the
    smallest and at large scales and depths, and its ratio to ReLU (plain MLPs).

    Parameters
    ----------
    results : dict of str to xarray.Dataset
        :func:`run_redshift`'s results.

    Returns
    -------
    pandas.DataFrame
        Indexed by activation; columns ``<measure>_small``, ``<measure>_large``,
        ``<measure>_vs_relu``.
    """
    table = complexity_ratios(results["mlp"])
    wide = table.pivot(index="activation", columns="measure",
                       values=["small", "large", "vs_relu"])
    wide.columns = [f"{m}_{what}" for what, m in wide.columns]
    order = [f"{m}_{w}" for m in MEASURES for w in ("small", "large", "vs_relu")]
    return wide[order].loc[list(results["mlp"].activation.values)]
