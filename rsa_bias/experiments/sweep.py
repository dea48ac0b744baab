"""Sweeps (``rsa-bias sweep``): the complexity-bias experiment at every point of a grid of
overrides, each into its own folder, one row per point in ``sweep.csv`` and all of them as
one labelled dataset in ``sweep.nc`` (:func:`rsa_bias.experiments.sweep_result.sweep_dataset`).
Points that differ only in values train as one batched ensemble.

A sweep is resumable: a rerun after a kill skips every point whose run is finished with the
same config (:func:`rsa_bias.experiments.complexity_bias.stored_run`) and reads its row back
from its files; a point whose files are of another config, or unreadable, is recomputed. What
happens to each point is printed before anything runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from rsa_bias._atomic import remove_stale_tmp
from rsa_bias._lock import folder_lock
from rsa_bias.config import load_config
from rsa_bias.executors import executor
from rsa_bias.experiments.complexity_bias import stored_run, summary_table
from rsa_bias.experiments.sweep_groups import group_checkpoint, group_points, run_group
from rsa_bias.experiments.sweep_result import sweep_dataset
from rsa_bias.store import write_sweep
from rsa_bias.store.tables import write_table


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
        seeds), ``R2_f_lo`` and ``R2_f_hi`` (its 95% bootstrap interval over seeds),
        ``R2_f_min``, ``R2_f_max`` and ``acc_f_min`` (lowest final test accuracy).
    """
    row = {"run": name, "overrides": " ".join(overrides), "time_s": round(elapsed_s, 1)}
    for feat, r in table.iterrows():
        row.update({f"R2_{feat}": r.R2_mean, f"R2_{feat}_lo": r.R2_lo,
                    f"R2_{feat}_hi": r.R2_hi, f"R2_{feat}_min": r.R2_min,
                    f"R2_{feat}_max": r.R2_max, f"acc_{feat}_min": r.test_acc_min})
    return row


def run_point(config: str, out_dir: str, overrides: list[str],
              figures: bool = True, force: bool = False,
              sequential: bool = False) -> tuple[pd.DataFrame, float]:
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
    sequential : bool, default False
        Train its seeds one after another instead of as one batched ensemble.

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
                         force=force, sequential=sequential)
    return run.table, float(run.results["results"].attrs["elapsed_s"])


def run_sweep(config: str | Path, out: str | Path,
              points: Sequence[tuple[str, Sequence[str]] | tuple[str, Sequence[str], dict]],
              *, jobs: int = 1, scheduler: str | None = None, figures: bool = True,
              force: bool = False, one_at_a_time: bool = False, sequential: bool = False,
              resources: dict[str, float] | None = None, plot: bool = False,
              progress: bool = True) -> pd.DataFrame:
    """Run every point of a sweep into ``out/<name>/``; write ``out/sweep.csv`` and
    ``out/sweep.nc``.

    Temporary files of interrupted writes in ``out`` are removed first. Then, for each point
    in turn, one line says what happens to it: ``skipping <name>: results.nc complete, same
    config`` (a finished run of the same config: its row is read from its files, and with
    ``figures`` only its figures are redrawn), ``recomputing <name>: <why>`` (files of another
    config, or unreadable), ``resuming <name> from its checkpoints`` (an interrupted run) or
    ``running <name>``. Points to compute that differ only in values train as one batched
    ensemble (:func:`rsa_bias.experiments.sweep_groups.group_points`; one line names each
    such group). The groups go to :func:`rsa_bias.executors.executor`, with a progress bar
    over the runs (and its ETA); each row is printed as JSON when its run is done.

    Parameters
    ----------
    config : str or pathlib.Path
        The experiment config file.
    out : str or pathlib.Path
        The sweep's folder (created if missing).
    points : sequence of (str, sequence of str[, dict of str to str])
        Each point's folder name, its full ``--set`` overrides and, optionally, its swept
        values ``{key: value text}`` (the dims of ``sweep.nc``; default: every override).
    jobs : int, default 1
        Runs in parallel (see :func:`rsa_bias.executors.executor`).
    scheduler : str, optional
        ``None`` (local processes), ``"local"`` (a Dask ``LocalCluster``) or the address of
        a Dask scheduler.
    figures : bool, default True
        Draw each run's figures.
    force : bool, default False
        Recompute every point, finished ones included.
    one_at_a_time : bool, default False
        The points vary one factor each (``sweep.nc`` gets a ``point`` dim), not a grid.
    sequential : bool, default False
        No ensembles: each point alone, its seeds one after another.
    resources : dict of str to float, optional
        Dask worker resources each run needs, e.g. ``{"GPU": 1}`` (only with a
        ``scheduler``).
    plot : bool, default False
        Also draw ``out/sweep_r2.png`` (:func:`rsa_bias.plotting.plot_sweep`).
    progress : bool, default True
        Show the progress bar over runs.

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
    OSError
        (``FolderBusy``) When another sweep is running in ``out``: its lock
        ``out/.sweep.lock`` names the process (a lock left by a killed sweep is taken
        over).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "sweep"):  # a second sweep on this folder stops here
        return _sweep(config, out, points, jobs=jobs, scheduler=scheduler, figures=figures,
                      force=force, one_at_a_time=one_at_a_time, sequential=sequential,
                      resources=resources, plot=plot, progress=progress)


def _sweep(config, out: Path, points, *, jobs, scheduler, figures, force, one_at_a_time,
           sequential, resources, plot, progress) -> pd.DataFrame:
    """:func:`run_sweep`'s work, holding the folder's lock."""
    remove_stale_tmp(out, report=True)
    remove_stale_tmp(out / "checkpoints", report=True)
    if force:  # recompute from scratch: group checkpoints of earlier configs would be refused
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    factors = {p[0]: dict(p[2]) if len(p) > 2 else dict(o.split("=", 1) for o in p[1])
               for p in points}
    points = [(p[0], list(p[1])) for p in points]
    print(f"sweep: {len(points)} runs into {out}", flush=True)
    stored = _plan(config, out, points, figures=figures, force=force)
    todo = [p for p in points if stored[p[0]] is None]
    groups = group_points(config, todo, jobs=jobs, sequential=sequential)
    for group in groups:
        if len(group) > 1:
            again = group_checkpoint(out, group).exists()
            print(f"{'resuming' if again else 'training'} {', '.join(n for n, _ in group)} "
                  f"as one batched ensemble{' from its checkpoint' if again else ''}",
                  flush=True)
    if figures:  # finished points: only their figures are redrawn, one call each
        groups += [[p] for p in points if stored[p[0]] is not None]
    done = _run_groups(config, out, groups, jobs=jobs, scheduler=scheduler, figures=figures,
                       force=force, sequential=sequential, resources=resources,
                       progress=progress)
    rows = []
    for name, overrides in points:
        table, elapsed = stored[name] if stored[name] is not None else done[name]
        rows.append(sweep_row(name, overrides, table, elapsed))
    df = pd.DataFrame(rows)
    write_table(df, out / "sweep.csv")
    ds = sweep_dataset(out, [(name, factors[name]) for name, _ in points], config=config,
                       one_at_a_time=one_at_a_time)
    ds.attrs["overrides_json"] = json.dumps({name: list(ov) for name, ov in points})
    write_sweep(ds, out / "sweep.nc")
    if plot:
        from rsa_bias.plotting import save_sweep_figures

        for path in save_sweep_figures(ds, out):
            print(f"wrote {path}", flush=True)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return df


def _plan(config, out: Path, points, *, figures: bool, force: bool) -> dict:
    """Say what happens to each point; ``{name: (table, elapsed) of a finished run, or
    None}``."""
    stored = {}
    for name, overrides in points:
        res, reason = (None, "") if force else stored_run(
            out / name, load_config(config, list(overrides)))
        if res is not None:
            print(f"skipping {name}: results.nc complete, same config"
                  + ("; redrawing its figures" if figures else ""), flush=True)
            res = (summary_table(res), float(res.attrs.get("elapsed_s", float("nan"))))
        elif reason:
            print(f"recomputing {name}: {reason}", flush=True)
        elif any((out / name / "checkpoints").glob("*.pt")):
            print(f"resuming {name} from its checkpoints", flush=True)
        else:
            print(f"running {name}", flush=True)
        stored[name] = res
    return stored


def _run_groups(config, out: Path, groups, *, jobs, scheduler, figures, force, sequential,
                resources, progress) -> dict:
    """Run every group; ``{name: (table, elapsed)}``, each row printed when its group is
    done."""
    done = {}
    if not groups:
        return done
    total = sum(len(g) for g in groups)
    with executor(jobs, scheduler, resources=resources) as pool, \
            tqdm(total=total, unit="run", desc="sweep", disable=not progress,
                 dynamic_ncols=True) as bar:
        inline = jobs == 1 and scheduler is None  # a group's own bar: steps and their ETA
        futures = [pool.submit(run_group, str(config), str(out), group, figures, force,
                               sequential, progress and inline) for group in groups]
        for group, fut in zip(groups, futures, strict=True):
            for (name, overrides), (table, elapsed) in zip(group, fut.result(), strict=True):
                done[name] = (table, elapsed)
                bar.write(json.dumps(sweep_row(name, overrides, table, elapsed)))
            bar.update(len(group))
    return done
