"""Causal checks on a trained run: is the loud feature also the one the network uses?

Lampinen, Chan & Hermann (2025, "Representation biases: variance is not always a good proxy
for importance") separate how much variance a feature takes from how the network uses it.
For every seed of a config this trains the network (as ``rsa-bias run`` does, into the same
files), then at one layer, at the last step:

* **steering** (:func:`rsa_bias.training.steering_table`): move each test stimulus along its
  feature's class-mean difference, ``scale`` times, and count how often the network's own
  head for that feature flips, and how often the other heads change; ``step_needed`` is the
  scale at which half of them flip, ``step_norm`` that step as a fraction of the mean
  activation norm;
* **principal components needed** (:func:`rsa_bias.analysis.pcs_needed`): how many top PCs
  (up to :data:`MAX_PCS`) a linear read-out of each feature needs to reach 99% test
  accuracy;
* **read-out reliance** (:func:`rsa_bias.analysis.readout_reliance`): trained on stimuli
  where the first two features agree, which one a linear read-out follows where they
  conflict.

Everything lands in ``causal.nc`` beside the run's ``results.nc`` and ``activations.nc``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias.analysis.features.causal import pcs_needed, readout_reliance
from rsa_bias.config import ExperimentConfig, load_config
from rsa_bias.experiments.complexity_bias import _train_seeds, eval_mask, seed_interval, write_run
from rsa_bias.provenance import provenance_attrs
from rsa_bias.store import layer_activation, read_activations, write_results
from rsa_bias.tasks import make_task
from rsa_bias.training import steering_table

#: Multiples of the class-mean difference a stimulus is moved by.
SCALES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
#: The most top PCs read out (a feature needing more has ``pcs_needed`` NaN).
MAX_PCS = 32
CAUSAL_FILE = "causal.nc"


def _per_seed(model, stimuli: xr.Dataset, act: xr.DataArray, layer: str,
              scales) -> xr.Dataset:
    names = list(stimuli.attrs["feature_names"])
    steer = steering_table(model, stimuli=stimuli, layer=layer, scales=scales)
    steer = steer.drop_vars("n_eval").assign(
        step_norm=steer.step_needed * steer.relative_norm)
    pcs = pcs_needed(act, features=names, max_pcs=min(MAX_PCS, act.sizes["unit"]))
    parts = [steer, pcs.rename({"accuracy": "pc_accuracy"})]
    if len(names) >= 2:
        rel = readout_reliance(act, a=names[0], b=names[1])
        parts.append(rel[["reliance_a", "agree_accuracy", "n_conflict"]])
    return xr.merge(parts, combine_attrs="drop")


def run_causal(cfg: ExperimentConfig, out_dir: str | Path, *, layer: str | None = None,
               scales=SCALES, progress: bool = True) -> xr.Dataset:
    """Train every seed of ``cfg`` and run the three causal checks at ``layer``.

    Parameters
    ----------
    cfg : ExperimentConfig
        The experiment (e.g. ``models/complexity_bias.toml``); its seeds train as one
        batched ensemble.
    out_dir : str or pathlib.Path
        Folder for the run's ``results.nc`` and ``activations.nc`` and for ``causal.nc``.
    layer : str, optional
        The layer checked; default the network's last named layer.
    scales : sequence of float, default :data:`SCALES`
        Steering scales, in multiples of the class-mean difference.
    progress : bool, default True
        Show training progress.

    Returns
    -------
    xarray.Dataset
        Over ``seed`` (and ``feature``, ``target_feature``, ``scale``, ``n_pcs``):
        ``flip_rate``, ``accuracy``, ``step_needed``, ``relative_norm``, ``step_norm``
        (steering), ``pc_accuracy``, ``variance_fraction``, ``pcs_needed`` (PCs), and for
        two or more features ``reliance_a`` (reliance on the first feature over the second),
        ``agree_accuracy`` and ``n_conflict``; ``r2`` (the layer's final R² per feature)
        and provenance attrs with ``layer``.
    """
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    stimuli = make_task(cfg.task)
    config_json = json.dumps(cfg.to_dict(), sort_keys=True)
    results = _train_seeds(stimuli, cfg, eval_mask(stimuli), out_dir / "checkpoints",
                           config_json, progress=progress, sequential=False)
    res = write_run(cfg, out_dir, stimuli, results, elapsed_s=time.perf_counter() - t0)
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    layer = layer or results[0].model.layer_names[-1]
    act = layer_activation(read_activations(out_dir / "activations.nc"), layer).isel(step=-1)
    per_seed = [_per_seed(r.model.cpu(), stimuli, act.sel(seed=r.seed), layer, scales)
                for r in results]
    ds = xr.concat(per_seed, dim=xr.DataArray([r.seed for r in results], dims="seed",
                                              name="seed"))
    ds["r2"] = res.r2.sel(layer=layer).isel(step=-1).reset_coords(drop=True)
    ds.attrs.update(provenance_attrs(cfg, list(cfg.seeds), method="causal_checks"))
    ds.attrs.update(layer=layer, scales=json.dumps(list(scales)),
                    elapsed_s=round(time.perf_counter() - t0, 2))
    write_results(ds, out_dir / CAUSAL_FILE)
    return ds


def causal_table(ds: xr.Dataset) -> pd.DataFrame:
    """Per feature: R², PCs needed, the steering step and what it does to the other heads.

    Parameters
    ----------
    ds : xarray.Dataset
        The result of :func:`run_causal` (or ``causal.nc`` read back).

    Returns
    -------
    pandas.DataFrame
        Indexed by feature: the means over seeds of ``R2``, ``pcs_needed``,
        ``step_needed`` and ``step_norm`` with 95% bootstrap intervals over seeds
        (``_lo``/``_hi``; a step is NaN in a seed where half the stimuli never flip, and
        the mean is over the other seeds), ``flips_at_1`` (share of the feature's labels
        flipped at scale 1), ``others_changed`` (the largest share of another head's labels
        changed at any scale) and, on the first feature's row, ``reliance_on_it`` (its
        read-out reliance over the second feature).
    """
    rows = []
    features = [str(f) for f in ds.feature.values]
    for feat in features:
        row: dict = {"feature": feat}
        for name, da in (("R2", ds.r2), ("pcs_needed", ds.pcs_needed),
                         ("step_needed", ds.step_needed), ("step_norm", ds.step_norm)):
            values = da.sel(feature=feat).values.astype(float)
            kept = values[np.isfinite(values)]
            lo, hi = seed_interval(kept) if kept.size else (np.nan, np.nan)
            row.update({name: float(kept.mean()) if kept.size else np.nan,
                        f"{name}_lo": lo, f"{name}_hi": hi})
        flips = ds.flip_rate.sel(feature=feat)
        row["flips_at_1"] = float(flips.sel(target_feature=feat).interp(scale=1.0).mean())
        others = [f for f in features if f != feat]
        row["others_changed"] = float(flips.sel(target_feature=others).max()) if others \
            else np.nan
        rows.append(row)
    table = pd.DataFrame(rows).set_index("feature")
    if "reliance_a" in ds:
        values = ds.reliance_a.values.astype(float)
        lo, hi = seed_interval(values)
        table["reliance_on_it"] = [float(values.mean())] + [np.nan] * (len(features) - 1)
        table["reliance_lo"] = [lo] + [np.nan] * (len(features) - 1)
        table["reliance_hi"] = [hi] + [np.nan] * (len(features) - 1)
    table.attrs["layer"] = ds.attrs.get("layer", "")
    return table


def run_causal_config(out_dir: str | Path, *, config: str | Path | ExperimentConfig,
                      layer: str | None = None, progress: bool = True
                      ) -> tuple[dict[str, xr.Dataset], dict[str, Path]]:
    """``rsa-bias causal CONFIG``: :func:`run_causal` and its figure.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for the files.
    config : str, pathlib.Path or ExperimentConfig
        The experiment, or its config file.
    layer : str, optional
        The layer checked; default the last one.
    progress : bool, default True
        Show training progress.

    Returns
    -------
    results : dict of str to xarray.Dataset
        ``{"causal": ...}``.
    paths : dict of str to pathlib.Path
        ``causal`` (``causal.nc``), ``results``, ``activations`` and ``figure``
        (``causal.png``).
    """
    from rsa_bias.plotting import plot_causal, save_figure

    cfg = config if isinstance(config, ExperimentConfig) else load_config(config)
    ds = run_causal(cfg, out_dir, layer=layer, progress=progress)
    out_dir = Path(out_dir)
    figure = save_figure(plot_causal(ds), out_dir / "causal.png")
    return {"causal": ds}, {"causal": out_dir / CAUSAL_FILE,
                            "results": out_dir / "results.nc",
                            "activations": out_dir / "activations.nc", "figure": figure}


def causal_summary(results: dict[str, xr.Dataset]) -> pd.DataFrame:
    """The registry's summary of a causal run: :func:`causal_table` of its result.

    Parameters
    ----------
    results : dict of str to xarray.Dataset
        ``{"causal": ...}`` as :func:`run_causal_config` returns it.

    Returns
    -------
    pandas.DataFrame
        :func:`causal_table`.
    """
    return causal_table(results["causal"])
