"""Summaries of the bias suite's manipulations that span more than one run: finished runs
side by side (CNN vs ResNet, ``rsa-bias compare``) and the R² of a Transformer's features
by the position they are emitted at (a sweep of ``model.transformer.output_order``).

Means come with the 95% percentile bootstrap interval over seeds of
:func:`~rsa_bias.experiments.complexity_bias.seed_interval`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias.experiments.complexity_bias import seed_interval
from rsa_bias.plotting.suite import position_frame, runs_frame
from rsa_bias.store import COMPLEXITY_BIAS_RESULTS, read_results


def _summary(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    rows = []
    for key, sub in df.groupby(by, sort=False):
        values = sub.R2.to_numpy(dtype=float)
        lo, hi = seed_interval(values)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)), "n": len(values),
                     "R2": float(np.mean(values)), "R2_lo": lo, "R2_hi": hi})
    return pd.DataFrame(rows)


def read_runs(folders: Sequence[str | Path], *,
              labels: Sequence[str] | None = None) -> dict[str, xr.Dataset]:
    """The ``results.nc`` of finished runs, by label.

    Parameters
    ----------
    folders : sequence of str or pathlib.Path
        Output folders of ``rsa-bias run``.
    labels : sequence of str, optional
        One label per folder (default: the folders' names).

    Returns
    -------
    dict of str to xarray.Dataset
        ``{label: results}``, in the order given.

    Raises
    ------
    ValueError
        For a wrong number of labels or a label given twice.
    """
    labels = [Path(f).name for f in folders] if labels is None else list(labels)
    if len(labels) != len(folders):
        raise ValueError(f"{len(labels)} labels for {len(folders)} runs; give one per run")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must differ, got {labels} (pass --labels)")
    return {label: read_results(Path(f) / "results.nc", variables=COMPLEXITY_BIAS_RESULTS)
            for label, f in zip(labels, folders, strict=True)}


def runs_table(results: Mapping[str, xr.Dataset], *,
               layers: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean final R² per run and feature with its 95% interval over seeds.

    Parameters
    ----------
    results : mapping of str to xarray.Dataset
        ``{label: results}`` of finished runs (see :func:`read_runs`).
    layers : sequence of str, optional
        The layer of each run; default each run's last layer.

    Returns
    -------
    pandas.DataFrame
        Columns ``run``, ``layer``, ``feature``, ``n`` (seeds), ``R2``, ``R2_lo``,
        ``R2_hi``.
    """
    return _summary(runs_frame(results, layers=layers), ["run", "layer", "feature"])


def position_table(ds: xr.Dataset, *, layer: str | None = None) -> pd.DataFrame:
    """Mean final R² by emission position: per feature, and over all features.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep over ``model.transformer.output_order``
        (:func:`rsa_bias.store.read_sweep` of its ``sweep.nc``).
    layer : str, optional
        The Transformer block; default the last one.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature`` (a feature's name, or ``"all"`` pooling every feature),
        ``position`` (1: emitted first), ``n`` (runs: seeds x orders), ``R2``, ``R2_lo``,
        ``R2_hi``, and ``attrs["layer"]``.
    """
    df, where = position_frame(ds, layer=layer)
    table = pd.concat([_summary(df, ["feature", "position"]),
                       _summary(df.assign(feature="all"), ["feature", "position"])],
                      ignore_index=True)
    table.attrs["layer"] = where
    return table
