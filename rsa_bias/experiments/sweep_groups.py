"""Sweep points that differ only in values train as one batched ensemble.

Two points of a sweep can share an ensemble when they make the same stimuli (equal
``[task]``) and their networks and schedules agree up to the values the members of an
ensemble may differ in (:data:`rsa_bias.training.VALUE_FIELDS`: learning rate, weight decay,
momentum, dropout, initialisation; :func:`rsa_bias.training.ensemble_key`). A group trains
every seed of every one of its points at once, then each point's files are written into its
own folder, exactly as a run of that point alone writes them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rsa_bias._atomic import remove_stale_tmp
from rsa_bias.config import ExperimentConfig, load_config
from rsa_bias.experiments.complexity_bias import eval_mask, summary_table, write_run
from rsa_bias.tasks import make_task
from rsa_bias.training import Member, ensemble_key, train_ensemble

#: Most models one group trains at once (bounds a group's memory and its share of a sweep).
MAX_MEMBERS = 128

Point = tuple[str, list[str]]


def _key(cfg: ExperimentConfig) -> tuple:
    """What the points of one group share: the task and the :func:`ensemble_key`."""
    return (cfg.task, *ensemble_key(cfg.model, cfg.training))


def group_points(config: str | Path, points: Sequence[Point], *, jobs: int = 1,
                 sequential: bool = False, max_members: int = MAX_MEMBERS) -> list[list[Point]]:
    """Split a sweep's points into groups that train as one ensemble each.

    Parameters
    ----------
    config : str or pathlib.Path
        The experiment config file.
    points : sequence of (str, list of str)
        Each point's folder name and ``--set`` overrides.
    jobs : int, default 1
        Runs in parallel: groups are split further so that at least ``min(jobs, points)``
        groups exist, keeping every worker busy.
    sequential : bool, default False
        One group per point (no ensembles across points).
    max_members : int, default MAX_MEMBERS
        Most models (points x seeds) in one group.

    Returns
    -------
    list of list of (str, list of str)
        The groups, in the order of their first point; points keep their order inside.
    """
    if sequential:
        return [[p] for p in points]
    keyed: list[tuple[tuple, list[Point], list[int]]] = []
    for name, overrides in points:
        cfg = load_config(config, list(overrides))
        key = _key(cfg)
        group = next((g for g in keyed if g[0] == key), None)
        if group is None:
            keyed.append((key, [], []))
            group = keyed[-1]
        group[1].append((name, list(overrides)))
        group[2].append(len(cfg.seeds))
    per_group = math.ceil(len(points) / max(1, min(jobs, len(points))))
    out = []
    for _, group, sizes in keyed:
        chunk: list[Point] = []
        members = 0
        for point, size in zip(group, sizes, strict=True):
            if chunk and (len(chunk) >= per_group or members + size > max_members):
                out.append(chunk)
                chunk, members = [], 0
            chunk.append(point)
            members += size
        out.append(chunk)
    return out


def group_checkpoint(out: Path, group: Sequence[Point]) -> Path:
    """The checkpoint file of a group of several points: ``out/checkpoints/ensemble_*.pt``."""
    digest = hashlib.sha1("\n".join(name for name, _ in group).encode()).hexdigest()[:12]
    return out / "checkpoints" / f"ensemble_{digest}.pt"


def run_group(config: str, out: str, group: list[Point], figures: bool = True,
              force: bool = False, sequential: bool = False, progress: bool = False
              ) -> list[tuple[pd.DataFrame, float]]:
    """Run one group of sweep points (what each sweep worker calls).

    Parameters
    ----------
    config : str
        The experiment config file.
    out : str
        The sweep's folder; each point writes into ``out/<name>/``.
    group : list of (str, list of str)
        The points (see :func:`group_points`).
    figures : bool, default True
        Draw each point's figures.
    force : bool, default False
        Recompute a point alone even when it is finished (a group's points are never
        finished: the sweep groups only those it computes).
    sequential : bool, default False
        Train a point's seeds one after another.
    progress : bool, default False
        Show the ensemble's own progress bar over its steps (a sweep does when its groups
        run in this process).

    Returns
    -------
    list of (pandas.DataFrame, float)
        Per point, its summary table and its results' ``elapsed_s`` (for a group: its share
        of the group's training time, plus its own analysis).
    """
    from rsa_bias.experiments.sweep import run_point

    out_dir = Path(out)
    if len(group) == 1:
        name, overrides = group[0]
        return [run_point(config, str(out_dir / name), overrides, figures, force, sequential)]
    t0 = time.perf_counter()
    cfgs = [load_config(config, list(overrides)) for _, overrides in group]
    for name, _ in group:
        remove_stale_tmp(out_dir / name, report=True)
    stimuli = make_task(cfgs[0].task)
    members = [Member(c.model, c.training, s) for c in cfgs for s in c.seeds]
    checkpoint = group_checkpoint(out_dir, group)
    results = train_ensemble(stimuli, members, snapshot_mask=eval_mask(stimuli),
                             checkpoint=checkpoint, progress=progress,
                             config_json=json.dumps([c.to_dict() for c in cfgs],
                                                    sort_keys=True))
    share = (time.perf_counter() - t0) / len(group)
    rows, start = [], 0
    for (name, _), cfg in zip(group, cfgs, strict=True):
        mine = results[start:start + len(cfg.seeds)]
        start += len(cfg.seeds)
        (out_dir / name).mkdir(parents=True, exist_ok=True)
        res = write_run(cfg, out_dir / name, stimuli, mine, elapsed_s=share)
        if figures:
            from rsa_bias.plotting import save_figures

            save_figures(res, out_dir / name)
        rows.append((summary_table(res), float(res.attrs["elapsed_s"])))
    for path in [checkpoint, *checkpoint.parent.glob(f"{checkpoint.stem}_member_*.pt")]:
        path.unlink(missing_ok=True)  # the members' own, where trained one by one
    return rows
