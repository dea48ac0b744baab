"""From initialisation to representation: an architecture's complexity at random
initialisation against the easy/hard representation gap it ends with after training.

For every activation x init scale of a complexity-bias config (an MLP), :func:`run_init_gap`
trains all the config's seeds (a sweep, :func:`rsa_bias.experiments.sweep.run_sweep`, so
finished points are reused and interrupted ones resumed) and measures, for each seed, the
complexity of *the very network that was then trained*, at its initialisation: the
network is rebuilt exactly as training built it (``torch.manual_seed(seed)`` then
:func:`rsa_bias.networks.build_model`) and evaluated on a 2D plane through its input space
(:func:`input_plane`); each head's logit over the plane is one function, measured with
:mod:`rsa_bias.analysis.complexity`, and the measures are averaged over the heads.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from rsa_bias.config import ExperimentConfig, load_config
from rsa_bias.experiments.complexity_bias import seed_interval
from rsa_bias.experiments.redshift import MEASURES
from rsa_bias.networks import build_model
from rsa_bias.networks.random_mlp import grid_points
from rsa_bias.provenance import provenance_attrs
from rsa_bias.tasks import make_task
from rsa_bias.tasks.images import n_classes

KEYS = {"activation": "model.activation", "init_scale": "model.init_scale"}


def input_plane(n_bits: int, *, coding: str, grid_size: int = 64, seed: int = 0) -> np.ndarray:
    """Points of a 2D plane through the centre of the input cube, ``(grid_size², n_bits)``.

    The plane is spanned by two random orthonormal directions (seeded) and reaches as far
    from the centre as a corner of the cube is: ``x(u, v) = c + r (u e1 + v e2)`` for
    ``u, v`` on ``np.linspace(-1, 1, grid_size)`` (row-major: ``v`` then ``u``), with
    ``c`` the cube's centre and ``r = sqrt(n_bits) * half side``.

    Parameters
    ----------
    n_bits : int
        Input dimension.
    coding : str
        ``"01"`` (inputs in {0, 1}) or ``"pm1"`` (inputs in {-1, 1}).
    grid_size : int, default 64
        Points per axis of the plane.
    seed : int, default 0
        Seeds the two directions.

    Returns
    -------
    numpy.ndarray
        float32 ``(grid_size**2, n_bits)``.
    """
    centre, half = {"01": (0.5, 0.5), "pm1": (0.0, 1.0)}[coding]
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((n_bits, 2)))
    uv = grid_points(grid_size, ndim=2)[:, ::-1]  # columns (u, v): x varies fastest
    return (centre + math.sqrt(n_bits) * half * uv @ basis.T).astype(np.float32)


def init_network(cfg: ExperimentConfig, seed: int, *, stimuli: xr.Dataset | None = None):
    """The network training starts from for ``seed``: built as training builds it
    (``torch.manual_seed(seed)``, then :func:`rsa_bias.networks.build_model`), in eval mode.

    Parameters
    ----------
    cfg : ExperimentConfig
        A binary-task MLP config.
    seed : int
        The training seed.
    stimuli : xarray.Dataset, optional
        The config's stimulus set (default: made from ``cfg.task``).

    Returns
    -------
    rsa_bias.networks.MLP
        The untrained network.
    """
    if cfg.model.arch != "mlp" or cfg.task.kind != "binary":
        raise ValueError(f"the init-gap experiment takes an MLP on a binary task; this config "
                         f"is a {cfg.model.arch} on a {cfg.task.kind} task")
    stimuli = make_task(cfg.task) if stimuli is None else stimuli
    torch.manual_seed(int(seed))
    return build_model(stimuli.inputs.shape[1:], n_classes(stimuli), cfg.model).eval()


def init_functions(cfg: ExperimentConfig, seeds, *, grid_size: int = 64,
                   plane_seed: int = 0) -> np.ndarray:
    """Each head's logit over :func:`input_plane` for the networks of ``seeds`` at init.

    Parameters
    ----------
    cfg : ExperimentConfig
        A binary-task MLP config.
    seeds : sequence of int
        The seeds (each builds its network as training does).
    grid_size : int, default 64
        Points per axis of the plane.
    plane_seed : int, default 0
        Seeds the plane (the same plane for every network).

    Returns
    -------
    numpy.ndarray
        ``(seed, head, grid_size, grid_size)`` float64.
    """
    stimuli = make_task(cfg.task)
    n_bits = int(np.prod(stimuli.inputs.shape[1:]))
    x = torch.from_numpy(input_plane(n_bits, coding=cfg.task.coding, grid_size=grid_size,
                                     seed=plane_seed))
    out = []
    for seed in seeds:
        net = init_network(cfg, int(seed), stimuli=stimuli)
        with torch.no_grad():
            logits = net(x)
        out.append([v.double().numpy().reshape(grid_size, grid_size) for v in logits.values()])
    return np.asarray(out)


def init_complexity(cfg: ExperimentConfig, seeds, *, grid_size: int = 64,
                    max_order: int = 10, levels: int = 2) -> xr.Dataset:
    """The complexity measures of each seed's network at init, averaged over its heads.

    Parameters
    ----------
    cfg : ExperimentConfig
        A binary-task MLP config.
    seeds : sequence of int
        The seeds.
    grid_size : int, default 64
        Points per axis of the input plane.
    max_order : int, default 10
        Legendre order of the polynomial measure.
    levels : int, default 2
        Quantisation levels of the LZ measure.

    Returns
    -------
    xarray.Dataset
        ``fourier_frequency``, ``polynomial_order``, ``lz_complexity`` over ``seed``.
    """
    from rsa_bias.analysis.complexity import fourier_frequency, lz_complexity, polynomial_order

    f = init_functions(cfg, seeds, grid_size=grid_size)
    values = {"fourier_frequency": fourier_frequency(f, ndim=2),
              "polynomial_order": polynomial_order(f, ndim=2, max_order=max_order),
              "lz_complexity": lz_complexity(f, ndim=2, levels=levels)}
    return xr.Dataset({m: ("seed", np.asarray(v).mean(axis=1)) for m, v in values.items()},
                      coords={"seed": [int(s) for s in seeds]})


def _point(activation: str, scale: float) -> tuple[str, list[str], dict[str, str]]:
    values = {KEYS["activation"]: f'"{activation}"', KEYS["init_scale"]: repr(float(scale))}
    name = f"activation={activation},init_scale={float(scale):g}"
    return name, [f"{k}={v}" for k, v in values.items()], values


def init_gap_dataset(sweep: xr.Dataset, cfg: ExperimentConfig, *, grid_size: int = 64,
                     max_order: int = 10, levels: int = 2) -> xr.Dataset:
    """Join a sweep over activation x init scale with each seed's complexity at init.

    Parameters
    ----------
    sweep : xarray.Dataset
        The ``sweep.nc`` of a grid sweep over ``model.activation`` and
        ``model.init_scale`` of ``cfg``.
    cfg : ExperimentConfig
        The sweep's base config (with the base overrides applied).
    grid_size, max_order, levels
        As for :func:`init_complexity`.

    Returns
    -------
    xarray.Dataset
        Over ``("activation", "init_scale", "seed")``: the three complexity measures at
        init, ``r2`` (with ``feature``) at the last layer and last step, ``r2_gap`` (first
        feature's R² minus the second's), and ``accuracy`` (``feature``; held-out accuracy at
        the last evaluation). Attrs ``easy`` and ``hard`` name the two features, ``layer``
        the layer.
    """
    missing = [k for k in KEYS.values() if k not in sweep.dims]
    if missing:
        raise ValueError(f"the sweep does not vary {missing}; run it over both "
                         f"{list(KEYS.values())}")
    sweep = sweep.rename({v: k for k, v in KEYS.items()})
    layer = str(sweep.layer.values[-1])
    easy, hard = (str(f) for f in sweep.feature.values[:2])
    r2 = sweep["r2_final"].sel(layer=layer)
    acc = sweep["accuracy"].sel(split="test").isel(eval_step=-1)
    parts = []
    for act in sweep.activation.values:
        for scale in sweep.init_scale.values:
            point = _with_model(cfg, str(act), float(scale))
            c = init_complexity(point, sweep.seed.values, grid_size=grid_size,
                                max_order=max_order, levels=levels)
            parts.append(c.expand_dims(activation=[act], init_scale=[scale]))
    ds = xr.combine_by_coords(parts)
    ds["r2"] = r2.transpose("activation", "init_scale", "seed", "feature")
    ds["r2_gap"] = r2.sel(feature=easy) - r2.sel(feature=hard)
    ds["accuracy"] = acc.transpose("activation", "init_scale", "seed", "feature")
    ds.attrs.update(provenance_attrs(cfg, seed=[int(s) for s in sweep.seed.values],
                                     method="init_gap"))
    ds.attrs.update(easy=easy, hard=hard, layer=layer, grid_size=grid_size,
                    max_order=max_order, levels=levels)
    return ds


def _with_model(cfg: ExperimentConfig, activation: str, init_scale: float) -> ExperimentConfig:
    model = dataclasses.replace(cfg.model, activation=activation, init_scale=init_scale)
    return dataclasses.replace(cfg, model=model)


def run_init_gap(out_dir: str | Path, *, config: str | Path, activations=("relu", "tanh",
                 "sine"), scales=(0.1, 1.0, 3.0), overrides=(), jobs: int = 1,
                 progress: bool = True, figures: bool = True
                 ) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """Train every activation x init scale of a config and relate its complexity at init to
    its representation gap (the ``rsa-bias init-gap`` verb).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The sweep's folder: one subfolder per point, ``sweep.nc``, and ``init_gap.nc``
        with its figure.
    config : str or pathlib.Path
        A complexity-bias MLP config file (e.g. ``models/complexity_bias.toml``).
    activations : sequence of str, default ("relu", "tanh", "sine")
        The activations compared.
    scales : sequence of float, default (0.1, 1.0, 3.0)
        The ``model.init_scale`` values compared.
    overrides : sequence of str, default ()
        ``--set`` overrides applied to every point.
    jobs : int, default 1
        Sweep points run in parallel.
    progress : bool, default True
        Show progress.
    figures : bool, default True
        Draw ``init_gap.png``.

    Returns
    -------
    results : dict of str to xarray.Dataset
        ``{"init_gap": init_gap_dataset(...)}``.
    paths : dict of str to pathlib.Path
        ``init_gap.nc`` and the figure.
    """
    from rsa_bias.experiments.sweep import run_sweep
    from rsa_bias.store import read_sweep, write_results

    if not activations or not scales:
        raise ValueError("give at least one activation and one init scale")
    cfg = load_config(config, list(overrides))  # refuse a bad config before training
    points = []
    for act in activations:
        for scale in scales:
            name, sets, values = _point(act, scale)
            load_config(config, list(overrides) + sets)
            points.append((name, list(overrides) + sets, values))
    out = Path(out_dir)
    run_sweep(config, out, points, jobs=jobs, figures=False, progress=progress)
    ds = init_gap_dataset(read_sweep(out / "sweep.nc"), cfg)
    paths = {"init_gap": write_results(ds, out / "init_gap.nc")}
    if figures:
        from rsa_bias.plotting import save_figure
        from rsa_bias.plotting.redshift import plot_init_gap

        paths["init_gap_figure"] = save_figure(plot_init_gap(ds), out / "init_gap.png")
    return {"init_gap": ds}, paths


def init_gap_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """The summary ``rsa-bias init-gap`` prints: one row per activation x init scale.

    Parameters
    ----------
    results : dict of str to xarray.Dataset
        ``{"init_gap": ...}`` from :func:`run_init_gap`.

    Returns
    -------
    pandas.DataFrame
        Mean complexity at init (each measure), the mean R² gap with its 95% bootstrap
        interval over seeds, the mean R² of each feature and the lowest held-out accuracy.
    """
    ds = results["init_gap"]
    rows = []
    for act in ds.activation.values:
        for scale in ds.init_scale.values:
            cell = ds.sel(activation=act, init_scale=scale)
            gap = cell["r2_gap"].values
            lo, hi = seed_interval(gap)
            row = {"activation": str(act), "init_scale": float(scale)}
            row |= {m: float(cell[m].mean()) for m in MEASURES}
            row |= {"r2_gap": float(np.mean(gap)), "gap_lo": lo, "gap_hi": hi}
            row |= {f"r2_{f}": float(cell["r2"].sel(feature=f).mean())
                    for f in (ds.attrs["easy"], ds.attrs["hard"])}
            row["min_accuracy"] = float(cell["accuracy"].min())
            rows.append(row)
    return pd.DataFrame(rows)
