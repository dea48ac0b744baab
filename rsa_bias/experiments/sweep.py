"""Sweeps (``rsa-bias sweep``): the complexity-bias experiment at every point of a grid of
overrides, each into its own folder, one row per point in ``sweep.csv``.

A sweep is resumable: a rerun after a kill skips every point whose run is finished with the
same config (:func:`rsa_bias.experiments.complexity_bias.stored_run`) and reads its row back
from its files; a point whose files are of another config, or unreadable, is recomputed. What
happens to each point is printed before anything runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rsa_bias._atomic import atomic_path, remove_stale_tmp
from rsa_bias.config import load_config
from rsa_bias.executors import executor
from rsa_bias.experiments.complexity_bias import stored_run, summary_table


def sweep_row(name: str, overrides: Sequence[str], table: pd.DataFrame,
              elapsed_s: float) -> dict:
    """One row of ``sweep.csv``: a point's name, overrides, time and summary per feature.

    Parameters
    ----------
    name : str
        The point's folder name.
    overrides : sequence of str
        Its ``--set`` overrides (the sweep's own and the grid point's).
    table : pandas.DataFrame
        Its :func:`rsa_bias.experiments.summary_table`.
    elapsed_s : float
        Seconds its run took (its results' ``elapsed_s``: training and analysis).

    Returns
    -------
    dict
        ``run``, ``overrides``, ``time_s`` and, per feature ``f``, ``R2_f`` (mean over
        seeds), ``R2_f_min``, ``R2_f_max`` and ``acc_f_min`` (lowest final test accuracy).
    """
    row = {"run": name, "overrides": " ".join(overrides), "time_s": round(elapsed_s, 1)}
    for feat, r in table.iterrows():
        row.update({f"R2_{feat}": r.R2_mean, f"R2_{feat}_min": r.R2_min,
                    f"R2_{feat}_max": r.R2_max, f"acc_{feat}_min": r.test_acc_min})
    return row


def run_point(config: str, out_dir: str, overrides: list[str],
              figures: bool = True, force: bool = False) -> tuple[pd.DataFrame, float]:
    """Run one sweep point through the registry (what each sweep worker calls).

    Parameters
    ----------
    config : str
        The experiment config file.
    out_dir : str
        The point's output folder.
    overrides : list of str
        Its ``--set`` overrides.
    figures : bool, default True
        Draw its figures.
    force : bool, default False
        Recompute it even when a finished run of the same config is there.

    Returns
    -------
    table : pandas.DataFrame
        Its summary table.
    elapsed_s : float
        The results' ``elapsed_s``: seconds the training and analysis took (for a finished
        run that was only read back, those of the run that made it).
    """
    from rsa_bias.experiments.registry import run_experiment

    run = run_experiment("complexity-bias", out_dir, config=config, overrides=overrides,
                         progress=False, keep_checkpoints=False, figures=figures,
                         force=force)
    return run.table, float(run.results["results"].attrs["elapsed_s"])


def run_sweep(config: str | Path, out: str | Path, points: Sequence[tuple[str, Sequence[str]]],
              *, jobs: int = 1, scheduler: str | None = None, figures: bool = True,
              force: bool = False) -> pd.DataFrame:
    """Run every point of a sweep into ``out/<name>/`` and write ``out/sweep.csv``.

    Temporary files of interrupted writes in ``out`` are removed first. Then, for each point
    in turn, one line says what happens to it: ``skipping <name>: results.nc complete, same
    config`` (a finished run of the same config: its row is read from its files, and with
    ``figures`` only its figures are redrawn), ``recomputing <name>: <why>`` (files of another
    config, or unreadable), ``resuming <name> from its checkpoints`` (an interrupted run) or
    ``running <name>``. The runs go to
    :func:`rsa_bias.executors.executor`; each row is printed as JSON when its run is done.

    Parameters
    ----------
    config : str or pathlib.Path
        The experiment config file.
    out : str or pathlib.Path
        The sweep's folder (created if missing).
    points : sequence of (str, sequence of str)
        Each point's folder name and its full ``--set`` overrides, in the order of the rows.
    jobs : int, default 1
        Runs in parallel (see :func:`rsa_bias.executors.executor`).
    scheduler : str, optional
        ``None`` (local processes), ``"local"`` (a Dask ``LocalCluster``) or the address of
        a Dask scheduler.
    figures : bool, default True
        Draw each run's figures.
    force : bool, default False
        Recompute every point, finished ones included.

    Returns
    -------
    pandas.DataFrame
        The rows of ``sweep.csv`` (:func:`sweep_row`), in the order of ``points``; ``time_s``
        is each run's stored ``elapsed_s``, so a rerun of a finished sweep writes the same
        file.

    Raises
    ------
    rsa_bias.config.ConfigError
        When a point's config is invalid (before anything runs).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(out, report=True)
    print(f"sweep: {len(points)} runs into {out}", flush=True)
    plan = []
    for name, overrides in points:
        stored, reason = (None, "") if force else stored_run(
            out / name, load_config(config, list(overrides)))
        if stored is not None:
            print(f"skipping {name}: results.nc complete, same config"
                  + ("; redrawing its figures" if figures else ""), flush=True)
            stored = (summary_table(stored), float(stored.attrs.get("elapsed_s", float("nan"))))
        elif reason:
            print(f"recomputing {name}: {reason}", flush=True)
        elif any((out / name / "checkpoints").glob("seed_*.pt")):
            print(f"resuming {name} from its checkpoints", flush=True)
        else:
            print(f"running {name}", flush=True)
        plan.append((name, list(overrides), stored))
    todo = [p for p in plan if p[2] is None or figures]
    rows = []
    with executor(jobs, scheduler) if todo else contextlib.nullcontext() as pool:
        futures = [pool.submit(run_point, str(config), str(out / name), overrides, figures,
                               force)
                   if stored is None or figures else None for name, overrides, stored in plan]
        for (name, overrides, stored), fut in zip(plan, futures, strict=True):
            done = fut.result() if fut is not None else None
            table, elapsed = stored if stored is not None else done
            rows.append(sweep_row(name, overrides, table, elapsed))
            print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    with atomic_path(out / "sweep.csv") as tmp:
        df.to_csv(tmp, index=False)
    return df
