"""Complexity bias (Lampinen, Chan & Hermann 2024): an easy and a hard feature,
both learned, and how much of each layer's variance each one takes."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._atomic import remove_stale_tmp
from rsa_bias.analysis import (
    feature_variance_explained,
    normalise_by_final,
    pca_summary,
    unit_tuning,
)
from rsa_bias.config import ExperimentConfig
from rsa_bias.provenance import config_hash, provenance_attrs
from rsa_bias.store import (
    COMPLEXITY_BIAS_RESULTS,
    StoreError,
    activation_tree,
    layer_activation,
    read_attrs,
    read_results,
    write_activations,
    write_results,
)
from rsa_bias.tasks import make_task
from rsa_bias.training import TrainResult, seed_members, train, train_ensemble
from rsa_bias.training.loop import EVAL_SPLITS


def _stack_snapshots(results: list[TrainResult], steps: tuple[int, ...]) -> dict[str, np.ndarray]:
    layers = results[0].model.layer_names
    return {name: np.stack([np.stack([r.snapshots[s][name] for s in steps]) for r in results])
            for name in layers}


def _history(results: list[TrainResult], names: list[str]) -> xr.Dataset:
    steps = results[0].eval_steps
    out = {}
    for metric in ("accuracy", "loss"):
        arr = np.array([[[r.history[s][metric][n] for n in names] for s in EVAL_SPLITS]
                        for r in results])  # seed, split, feature, eval_step
        out[metric] = (("seed", "split", "feature", "eval_step"), arr)
    return xr.Dataset(out, coords={"seed": [r.seed for r in results], "split": list(EVAL_SPLITS),
                                   "feature": names, "eval_step": steps})


def analyse_tree(tree: xr.DataTree, cfg: ExperimentConfig) -> xr.Dataset:
    """All per-layer analyses of an activation tree, concatenated over ``layer``."""
    per_layer = []
    for layer in tree.children:
        act = layer_activation(tree, layer)
        var = feature_variance_explained(act)
        if "step" in var.dims:
            var = var.merge(normalise_by_final(var))
        final = act.isel(step=-1) if "step" in act.dims else act
        pca = pca_summary(final, n_pcs=cfg.analysis.n_pcs)
        units = unit_tuning(final, threshold=cfg.analysis.unit_threshold)
        per_layer.append(xr.merge([var, pca, units], combine_attrs="drop"))
    names = np.array(list(tree.children), dtype="U")
    out = xr.concat(per_layer, dim="layer", coords="minimal", compat="override", join="outer")
    return out.assign_coords(layer=names)


def _train_seeds(stimuli: xr.Dataset, cfg: ExperimentConfig, mask: np.ndarray,
                 folder: Path, config_json: str, *, progress: bool,
                 sequential: bool) -> list[TrainResult]:
    """Every seed of ``cfg``: one batched ensemble (checkpoint ``ensemble.pt``), or one
    run after another (``seed_<s>.pt`` each)."""
    seeds = list(cfg.seeds)
    if progress and folder.is_dir() and any(folder.glob("*.pt")):
        print(f"resuming from the checkpoints in {folder}", flush=True)
    if not sequential:
        if progress and cfg.model.arch != "transformer":  # it trains them one by one
            print(f"training {len(seeds)} seeds as one batched ensemble", flush=True)
        return train_ensemble(stimuli, seed_members(cfg.model, cfg.training, seeds),
                              snapshot_mask=mask, checkpoint=folder / "ensemble.pt",
                              config_json=config_json, progress=progress)
    results = []
    for i, seed in enumerate(seeds):
        if progress:
            print(f"[{i + 1}/{len(seeds)}] training seed {seed}", flush=True)
        results.append(train(stimuli, cfg.model, cfg.training, seed=seed, snapshot_mask=mask,
                             checkpoint=folder / f"seed_{seed}.pt",
                             config_json=config_json, progress=progress))
    return results


def run_complexity_bias(cfg: ExperimentConfig, out_dir: str | Path, *, progress: bool = True,
                        keep_checkpoints: bool = False, sequential: bool = False
                        ) -> xr.Dataset:
    """Train every seed of ``cfg``, store activations and results, return the results.

    The seeds train as one batched ensemble (:func:`rsa_bias.training.train_ensemble`:
    the numbers of one run after another up to float32 rounding, and for the MLP at the
    shipped sizes identical to the bit on the CPU), or one after another with
    ``sequential``. Writes ``out_dir/activations.nc`` (all hidden
    layers at every snapshot step, on the val and test stimuli) and ``out_dir/results.nc``.
    Checkpoints in ``out_dir/checkpoints/`` (one for the ensemble, or one per seed) let an
    interrupted run resume where it stopped;
    they are removed once both files are written unless ``keep_checkpoints``. Temporary files
    that interrupted writes left in both folders are removed first.

    Parameters
    ----------
    cfg : ExperimentConfig
        The experiment: ``task``, ``model``, ``training``, ``analysis`` and ``seeds``.
    out_dir : str or pathlib.Path
        Folder for the two files and the checkpoints.
    progress : bool, default True
        Print which seed is training and show a progress bar per seed.
    keep_checkpoints : bool, default False
        Keep ``out_dir/checkpoints/`` after a successful run.
    sequential : bool, default False
        Train the seeds one after another (:func:`rsa_bias.training.train`) instead of as
        one batched ensemble.

    Returns
    -------
    xarray.Dataset
        The contents of ``results.nc``: per layer (dim ``layer``) the feature variance
        explained (per snapshot ``step``, with its normalisation by the final step's), the
        PCA summary and the unit tuning of the final snapshot, merged with
        the learning curves ``accuracy`` and ``loss`` (seed, split, feature, eval_step);
        provenance attrs and ``elapsed_s``.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    for folder in (out_dir, out_dir / "checkpoints"):
        remove_stale_tmp(folder, report=True)
    config_json = json.dumps(cfg.to_dict(), sort_keys=True)
    stimuli = make_task(cfg.task)
    mask = eval_mask(stimuli)
    results = _train_seeds(stimuli, cfg, mask, out_dir / "checkpoints", config_json,
                           progress=progress, sequential=sequential)
    res = write_run(cfg, out_dir, stimuli, results, elapsed_s=time.perf_counter() - t0)
    if not keep_checkpoints:
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    return res


def eval_mask(stimuli: xr.Dataset) -> np.ndarray:
    """The stimuli whose activations a run records: those of the val and test splits."""
    return np.isin(stimuli.split.values, EVAL_SPLITS)


def write_run(cfg: ExperimentConfig, out_dir: Path, stimuli: xr.Dataset,
              results: list[TrainResult], *, elapsed_s: float) -> xr.Dataset:
    """Store one run's activations, analyse them and store the results (see
    :func:`run_complexity_bias`); ``results``: one per seed of ``cfg``, in order, trained
    on ``stimuli`` with the snapshots of :func:`eval_mask`. The results' ``elapsed_s`` is
    ``elapsed_s`` (the training's seconds) plus the seconds spent here. Returns the
    results."""
    t0 = time.perf_counter()
    names = list(stimuli.attrs["feature_names"])
    steps = cfg.training.all_snapshot_steps
    attrs = provenance_attrs(cfg, list(cfg.seeds), method="complexity_bias")
    tree = activation_tree(stimuli.isel(stimulus=eval_mask(stimuli)),
                           _stack_snapshots(results, steps), seeds=list(cfg.seeds),
                           steps=list(steps), attrs=attrs)
    write_activations(tree, out_dir / "activations.nc")
    res = xr.merge([analyse_tree(tree, cfg), _history(results, names)],
                   combine_attrs="drop")
    res.attrs.update(attrs)
    res.attrs["elapsed_s"] = round(elapsed_s + time.perf_counter() - t0, 2)
    write_results(res, out_dir / "results.nc")
    return res


def _stored_hash(attrs: dict) -> str | None:
    """The config hash a file records (from its ``config_json`` when it predates
    ``config_hash``)."""
    if "config_hash" in attrs:
        return str(attrs["config_hash"])
    if "config_json" in attrs:
        return config_hash(json.loads(str(attrs["config_json"])))
    return None


def stored_run(out_dir: str | Path, cfg: ExperimentConfig) -> tuple[xr.Dataset | None, str]:
    """The results of a finished run of ``cfg`` in ``out_dir``, if there is one.

    A run is finished when ``results.nc`` and ``activations.nc`` are both readable (complete:
    the store writes every file whole or not at all) and record the hash of ``cfg``
    (``config_hash``, see :func:`rsa_bias.provenance.config_hash`). Only the attrs of
    ``activations.nc`` are read, not its (possibly large) data.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The run's output folder.
    cfg : ExperimentConfig
        The config the run must have been made with.

    Returns
    -------
    results : xarray.Dataset or None
        The contents of ``results.nc`` of a finished run; None otherwise.
    reason : str
        Why the run counts as finished, or why not: empty when there is no ``results.nc``
        yet (nothing to recompute), else e.g. ``"results.nc was written by a different
        config"`` or ``"results.nc is unreadable (...)"``.
    """
    out_dir = Path(out_dir)
    if not (out_dir / "results.nc").exists():
        return None, ""
    want = config_hash(cfg)
    res = None
    for name in ("results.nc", "activations.nc"):
        path = out_dir / name
        if not path.exists():
            return None, f"{name} is missing"
        try:
            if name == "results.nc":
                res = read_results(path, variables=COMPLEXITY_BIAS_RESULTS)
            attrs = res.attrs if name == "results.nc" else read_attrs(path, kind="activations")
        except StoreError as exc:
            return None, f"{name} is unreadable ({' '.join(str(exc).split())})"
        if _stored_hash(attrs) != want:
            return None, f"{name} was written by a different config"
    return res, "results.nc and activations.nc complete, same config"


#: Bootstrap resamples of the seeds behind the 95% interval of :func:`summary_table`.
N_BOOT = 10_000


def seed_interval(values: np.ndarray, *, level: float = 0.95, n_boot: int = N_BOOT,
                  seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over seeds.

    Parameters
    ----------
    values : numpy.ndarray
        One value per seed, ``(seed,)``.
    level : float, default 0.95
        Coverage of the interval.
    n_boot : int, default N_BOOT
        Resamples of the seeds (with replacement).
    seed : int, default 0
        Seeds the resampling, so a table is the same every time it is printed.

    Returns
    -------
    (float, float)
        The interval's ends, within the range of ``values``; NaN for fewer than two seeds or
        a NaN value (a dead seed is not dropped silently). With few seeds a percentile
        bootstrap is too narrow: for 2 or 3 it is the range itself. Use 10 or more.

    Examples
    --------
    >>> lo, hi = seed_interval(np.array([0.40, 0.50, 0.60]))
    >>> bool(0.40 <= lo < 0.50 < hi <= 0.60)
    True
    """
    values = np.asarray(values, dtype=float)
    if values.size < 2 or np.isnan(values).any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (n_boot, values.size))].mean(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.clip(np.quantile(means, [tail, 1 - tail]), values.min(), values.max())
    return float(lo), float(hi)


@legacy_call(positional=("layer",))
def summary_table(res: xr.Dataset, *, layer: str | None = None) -> pd.DataFrame:
    """Summarise a complexity-bias result per feature, at one layer and the final step.

    Parameters
    ----------
    res : xarray.Dataset
        The results of :func:`run_complexity_bias` (``r2`` and ``accuracy``).
    layer : str, optional
        The layer; default the last one (the last hidden layer).

    Returns
    -------
    pandas.DataFrame
        One row per feature (index named ``"feature @ <layer>"``): mean of R² at the final
        step over seeds with its 95% bootstrap interval over seeds (``R2_lo``, ``R2_hi``:
        :func:`seed_interval`, NaN with a single seed), its sd, min and max over seeds,
        and the min and mean over seeds of the final test accuracy. A seed whose layer was
        constant (NaN R²: a dead layer) makes the R² columns NaN instead of silently
        dropping out of them.
    """
    layer = layer or str(res.layer.values[-1])
    r2 = res.r2.sel(layer=layer)
    if "step" in r2.dims:
        r2 = r2.isel(step=-1)
    acc = res.accuracy.sel(split="test").isel(eval_step=-1)
    per_feature = r2.transpose("feature", "seed")
    lo, hi = zip(*(seed_interval(v) for v in per_feature.values), strict=True)
    table = pd.DataFrame({
        "R2_mean": r2.mean("seed", skipna=False).to_series(),
        "R2_lo": pd.Series(lo, index=per_feature.feature.values),
        "R2_hi": pd.Series(hi, index=per_feature.feature.values),
        "R2_sd": r2.std("seed", ddof=1, skipna=False).to_series() if r2.sizes["seed"] > 1
        else np.nan,
        "R2_min": r2.min("seed", skipna=False).to_series(),
        "R2_max": r2.max("seed", skipna=False).to_series(),
        "test_acc_min": acc.min("seed").to_series(),
        "test_acc_mean": acc.mean("seed").to_series(),
    })
    return table.rename_axis(f"feature @ {layer}")  # a new index: xarray's stays untouched


def run_config(out_dir: str | Path, *, config: str | Path | ExperimentConfig,
               overrides: Sequence[str] = (), progress: bool = True,
               keep_checkpoints: bool = False, figures: bool = True, force: bool = False,
               sequential: bool = False) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """The registry's ``complexity-bias`` experiment: :func:`run_complexity_bias` of a config
    (a path, with ``--set``-style ``overrides``, or an :class:`ExperimentConfig`), plus its
    figures. Returns ``({"results": results}, {name: path})``.

    A finished run of the same config in ``out_dir`` (:func:`stored_run`) is not redone: its
    results are read back and only the figures are drawn (a kill during the figures costs
    only the figures), unless ``force``. Stored files of another config, or unreadable ones,
    are recomputed; either is printed. The check is on the config alone: results written by
    an earlier rsa_bias version are reused too (``force=True``, ``rsa-bias run --force``,
    recomputes them). ``sequential`` trains the seeds one after another instead of as one
    batched ensemble."""
    from rsa_bias.config import load_config

    cfg = config if isinstance(config, ExperimentConfig) else load_config(config,
                                                                           list(overrides))
    out_dir = Path(out_dir)
    res, reason = stored_run(out_dir, cfg) if not force else (None, "")
    if force:  # recompute from scratch: checkpoints of an earlier config would be refused
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    if res is None:
        if reason:
            print(f"{out_dir}: {reason}; recomputing it", flush=True)
        res = run_complexity_bias(cfg, out_dir, progress=progress,
                                  keep_checkpoints=keep_checkpoints, sequential=sequential)
    else:
        print(f"{out_dir}: {reason}; skipping training and analysis"
              + ("; redrawing the figures" if figures else ""), flush=True)
        if not keep_checkpoints:  # a kill between the last write and their removal
            shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    paths = {"activations": out_dir / "activations.nc", "results": out_dir / "results.nc"}
    if figures:
        from rsa_bias.plotting import save_figures

        paths.update({Path(p).stem: Path(p) for p in save_figures(res, out_dir)})
    return {"results": res}, paths


def config_table(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """:func:`summary_table` of the run's results (last hidden layer, final step)."""
    return summary_table(results["results"])
