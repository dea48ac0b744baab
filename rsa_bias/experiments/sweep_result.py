"""A sweep as one labelled result: the ``results.nc`` of every point of a sweep
(:func:`rsa_bias.experiments.sweep.run_sweep`) read back and joined into one Dataset, with a
dim per swept factor (a grid sweep) or per point (a one-at-a-time sweep). Write it with
:func:`rsa_bias.store.write_sweep`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias.config import load_config
from rsa_bias.experiments.complexity_bias import _stored_hash
from rsa_bias.store import COMPLEXITY_BIAS_RESULTS, read_results

#: The dims of a point's results that a sweep keeps.
POINT_DIMS = ("seed", "layer", "feature", "step", "split", "eval_step")
#: Names of a sweep's dims and coords, which no swept key may take.
RESERVED = (*POINT_DIMS, "point", "factor", "value", "config_hash")
#: The provenance attrs copied from the first point.
COPIED_ATTRS = ("rsa_bias_version", "git_sha", "created")


def sweep_dataset(out: str | Path, points: Sequence[tuple[str, Mapping[str, str]]], *,
                  config: str | Path, one_at_a_time: bool = False) -> xr.Dataset:
    """The results of every point of a sweep as one Dataset.

    Each point's ``out/<name>/results.nc`` is read with the store. Points whose snapshot
    steps, eval steps, seeds, layers or features differ are outer-joined: NaN where a point
    lacks one.

    Parameters
    ----------
    out : str or pathlib.Path
        The sweep's folder.
    points : sequence of (str, mapping of str to str)
        Each point's folder name under ``out`` and its grid values, ``{dotted config key:
        value text}`` (e.g. ``{"model.depth": "2"}``); the base point of a one-at-a-time
        sweep has ``{}``.
    config : str or pathlib.Path
        The sweep's config file. A swept value is typed from the config its point records
        (``config_json`` of its ``results.nc``); only for a file without one is it this
        config with the point's grid values.
    one_at_a_time : bool, default False
        The points are the base config and each grid value alone (``rsa-bias sweep
        --one-at-a-time``) rather than the product of the grids.

    Returns
    -------
    xarray.Dataset
        ``r2`` (R² per ``seed``, ``layer``, ``feature`` and snapshot ``step``),
        ``r2_final`` (``r2`` at each point's last step) and the learning curves
        ``accuracy`` and ``loss`` (``seed``, ``split``, ``feature``, ``eval_step``), over:

        * a grid sweep: a dim per swept factor, named by its dotted key, whose coords are
          the typed config values (int, float, bool or str; a list or table as its JSON),
          ascending, first in every variable's dims. A grid cell without a point is NaN.
        * a one-at-a-time sweep: a ``point`` dim (the point names, in the order given)
          with the coords ``factor`` (its key, ``""`` for the base) and ``value`` (its value
          text, ``""`` for the base).

        The coord ``config_hash`` (on the factor dims, or ``point``) is each point's
        recorded config hash (``""`` for a grid cell without a point). Flat attrs:
        ``rsa_bias_version``, ``git_sha`` and ``created`` of the first point, ``method =
        "sweep"``, ``factors`` (JSON list of the swept keys), ``points_json`` (JSON of
        point name -> grid values) and ``config_file``.

    Raises
    ------
    rsa_bias.store.StoreError
        When a point's ``results.nc`` is missing, unreadable or not complexity-bias results.
    ValueError
        When ``points`` is empty, names a point twice, or does not fit the layout (the
        points of a grid sweep set different keys or two set the same values; a point of a
        one-at-a-time sweep sets more than one key).
    """
    out = Path(out)
    points = _check_points(points, one_at_a_time=one_at_a_time)
    runs = [read_results(out / name / "results.nc", variables=COMPLEXITY_BIAS_RESULTS)
            for name, _ in points]
    subs = _outer_join([_point_variables(r) for r in runs])
    hashes = [_stored_hash(r.attrs) or "" for r in runs]
    keys = list(dict.fromkeys(k for _, factors in points for k in factors))
    if one_at_a_time:
        ds = _by_point(subs, points, hashes)
    else:
        values = {k: _typed_values(k, points, runs, config) for k in keys}
        ds = _by_factor(subs, [n for n, _ in points], values, hashes)
    ds.attrs = {**{k: str(runs[0].attrs[k]) for k in COPIED_ATTRS if k in runs[0].attrs},
                "method": "sweep", "factors": json.dumps(keys),
                "points_json": json.dumps({name: factors for name, factors in points}),
                "config_file": str(config)}
    return ds


def _check_points(points, *, one_at_a_time: bool) -> list[tuple[str, dict[str, str]]]:
    """``points`` as a list of (name, {key: value text}), refusing what breaks the layout."""
    if isinstance(points, (str, Mapping)) or not len(points):
        raise ValueError("points must be a non-empty sequence of (name, {key: value}) pairs, "
                         "one per point folder of the sweep")
    checked = [(str(name), {str(k): str(v) for k, v in dict(factors).items()})
               for name, factors in points]
    names = [n for n, _ in checked]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"points names the folders {twice} more than once; give each point "
                         "once")
    bad = sorted({k for _, f in checked for k in f if k in RESERVED})
    if bad:
        raise ValueError(f"swept keys {bad} clash with the dims and coords of a sweep "
                         f"{list(RESERVED)}; they are no config keys")
    cells = [tuple(sorted(f.items())) for _, f in checked]
    same = sorted({names[i] for i, c in enumerate(cells) if cells.count(c) > 1})
    if same:
        raise ValueError(f"the points {same} set the same grid values; give each value once")
    if one_at_a_time:
        many = [n for n, f in checked if len(f) > 1]
        if many:
            raise ValueError(f"the points {many} set more than one key, as in a grid sweep; "
                             "pass one_at_a_time=False for the product of the grids")
        return checked
    key_sets = {tuple(sorted(f)) for _, f in checked}
    if len(key_sets) > 1:
        raise ValueError(f"the points of a grid sweep set different keys {sorted(key_sets)}; "
                         "each must set one value of every swept key (pass "
                         "one_at_a_time=True for a one-at-a-time sweep)")
    return checked


def _point_variables(res: xr.Dataset) -> xr.Dataset:
    """What a sweep keeps of a point's results: ``r2``, ``r2_final``, the learning curves."""
    r2 = res.r2
    final = r2.isel(step=-1, drop=True) if "step" in r2.dims else r2
    ds = xr.Dataset({"r2": r2, "r2_final": final, "accuracy": res.accuracy,
                     "loss": res.loss})
    return ds.drop_vars([c for c in ds.coords if c not in ds.dims])


def _ordered_union(lists: list[list]) -> list:
    """The values of all ``lists``, each list's order kept: a new value goes right after the
    value that precedes it in its list (so ``hidden_2`` of a deeper point follows
    ``hidden_1``)."""
    out: list = []
    for values in lists:
        for i, v in enumerate(values):
            if v not in out:
                out.insert(out.index(values[i - 1]) + 1 if i else 0, v)
    return out


def _outer_join(subs: list[xr.Dataset]) -> list[xr.Dataset]:
    """Every point's variables on the union of all points' coords (NaN where missing):
    numeric coords ascending, names in the points' own order."""
    index = {}
    for dim in POINT_DIMS:
        lists = [s[dim].values.tolist() for s in subs if dim in s.dims]
        if not lists:
            continue
        if np.asarray(subs[0][dim]).dtype.kind in "iuf":
            index[dim] = sorted(set().union(*lists))
        else:
            index[dim] = _ordered_union(lists)
    return [s.reindex({d: v for d, v in index.items() if d in s.dims}) for s in subs]


def _by_point(subs, points, hashes) -> xr.Dataset:
    """A one-at-a-time sweep: the points along ``point``."""
    factor = [next(iter(f), "") for _, f in points]
    value = [next(iter(f.values()), "") for _, f in points]
    ds = xr.concat(subs, dim="point", data_vars="all", coords="minimal", join="exact")
    return ds.assign_coords(point=[n for n, _ in points], factor=("point", factor),
                            value=("point", value), config_hash=("point", hashes))


def _by_factor(subs, names, values: dict[str, list], hashes) -> xr.Dataset:
    """A grid sweep: the points unstacked to a dim per swept key (NaN for a missing cell)."""
    ds = xr.concat(subs, dim="_point", data_vars="all", coords="minimal", join="exact")
    ds["config_hash"] = ("_point", hashes)
    if not values:  # a single point, no grid
        return ds.isel(_point=0, drop=True).set_coords("config_hash")
    index = pd.MultiIndex.from_arrays(list(values.values()), names=list(values))
    ds = ds.assign_coords(xr.Coordinates.from_pandas_multiindex(index, "_point"))
    ds = ds.unstack("_point").sortby(list(values))
    found = ds.config_hash.notnull()
    ds["config_hash"] = xr.where(found, ds.config_hash, "").astype(str)
    typed = {k: np.asarray(ds[k].values.tolist()) for k in values}
    return ds.assign_coords(typed).set_coords("config_hash").transpose(*values, ...)


def _typed_values(key: str, points, runs, config) -> list:
    """Each point's value of ``key``, typed; all as their text when the types differ."""
    typed = [_typed(key, factors, res.attrs, config) for (_, factors), res in zip(
        points, runs, strict=True)]
    kinds = {"bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float))
             else "str" for v in typed}
    return typed if len(kinds) == 1 else [str(v) for v in typed]


def _typed(key: str, factors: dict[str, str], attrs: dict, config) -> Any:
    """The config value ``key`` of a point: from the config it records, else from ``config``
    with its grid values; a list or table as its JSON; the value text if not found."""
    if "config_json" in attrs:
        cfg = json.loads(str(attrs["config_json"]))
    else:
        cfg = load_config(config, [f"{k}={v}" for k, v in factors.items()]).to_dict()
    value: Any = cfg
    for part in key.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]  # an array of tables: task.features.1.prevalence
            continue
        if not isinstance(value, Mapping) or part not in value:
            return factors[key]
        value = value[part]
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True)
