"""Your own responses (numpy arrays or a CSV table) in the labelled form the analyses use.

Both functions return an ``xr.Dataset`` following the data model of DESIGN.md:
``response(stimulus, <unit dim>)`` with stimulus ids on ``stimulus``, one coordinate
``feature_<name>`` per stimulus feature and ``attrs["feature_names"]`` listing the features
in order — the same layout as the generated tasks, so every analysis (RDMs, variance
explained by a feature, encoding models) runs on it unchanged::

    ds = dataset_from_csv("responses.csv", stimulus_column="image",
                          feature_columns=["category", "size"])
    d = rdm(ds.response, method="correlation")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr


def _checked_ids(stimulus_ids: Any, n: int) -> np.ndarray:
    ids = np.asarray(stimulus_ids)
    if ids.ndim != 1 or ids.size != n:
        raise ValueError(f"{ids.size} stimulus ids for {n} stimuli (responses along "
                         "'stimulus'); pass exactly one id per stimulus")
    uniq, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        dup = uniq[counts > 1]
        raise ValueError(f"{dup.size} stimulus id(s) repeat, e.g. {dup[:5].tolist()}; each "
                         "stimulus needs its own id (average repeats first, or keep them on a "
                         "'repeat' dim)")
    return ids


def _nan_report(values: np.ndarray, ids: np.ndarray, axis_names: Sequence[Any] | None,
                what: str) -> None:
    """Raise naming the stimuli (and columns) that hold NaN/inf."""
    flat = values.reshape(values.shape[0], -1)
    bad = ~np.isfinite(flat)
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:
        return
    where = ""
    if axis_names is not None:
        cols = [axis_names[c] for c in np.flatnonzero(bad.any(axis=0))]
        where = f" in column(s) {cols[:5]}"
    raise ValueError(f"{what} contain NaN/inf{where} for {rows.size} stimuli (ids "
                     f"{ids[rows][:5].tolist()}); drop or impute them, or pass allow_nan=True "
                     "to keep them (RDMs and encoding models will then refuse those stimuli)")


def _feature_coords(features: Mapping[str, Any] | pd.DataFrame | None, n: int
                    ) -> tuple[dict[str, Any], list[str]]:
    if features is None:
        return {}, []
    coords, names = {}, []
    for name, values in features.items():
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.size != n:
            raise ValueError(f"feature {name!r} has {arr.size} values for {n} stimuli; a "
                             "feature needs one value per stimulus")
        coords[f"feature_{name}"] = ("stimulus", arr)
        names.append(str(name))
    return coords, names


def dataset_from_arrays(responses: Any, *, stimulus_ids: Sequence[Any] | np.ndarray,
                        dims: Sequence[str] = ("stimulus", "neuron"),
                        features: Mapping[str, Any] | pd.DataFrame | None = None,
                        name: str = "response", allow_nan: bool = False) -> xr.Dataset:
    """Wrap a response array as a labelled Dataset.

    Parameters
    ----------
    responses : numeric array, one axis per name in ``dims`` (e.g. stimuli x neurons, or
        stimuli x neurons x repeats with ``dims=("stimulus", "neuron", "repeat")``).
    stimulus_ids : one id per stimulus (int or str), unique.
    dims : dim names; must contain ``"stimulus"``. Other dims get ``0..n-1`` coords.
    features : ``{name: per-stimulus values}`` (or a DataFrame with one column per
        feature, in stimulus order), stored as coords ``feature_<name>``.
    name : name of the data variable.
    allow_nan : keep NaN/inf (e.g. missing repeats); by default they are an error naming
        the stimuli.

    Returns
    -------
    xarray.Dataset with ``<name>(*dims)`` (float64), coords ``stimulus``, ``feature_<name>``
    and ``attrs["feature_names"]``.

    Examples
    --------
    >>> ds = dataset_from_arrays(np.ones((3, 2)), stimulus_ids=["a", "b", "c"],
    ...                          features={"animate": [1, 0, 0]})
    >>> ds.response.dims, ds.attrs["feature_names"]
    (('stimulus', 'neuron'), ['animate'])
    """
    dims = tuple(dims)
    if "stimulus" not in dims or len(set(dims)) != len(dims):
        raise ValueError(f"dims {dims} must name each axis once and include 'stimulus'")
    arr = np.asarray(responses)
    if arr.ndim != len(dims):
        raise ValueError(f"responses have shape {arr.shape} ({arr.ndim} axes) but dims name "
                         f"{len(dims)}: {dims}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"responses have dtype {arr.dtype}; expected numbers")
    axis = dims.index("stimulus")
    ids = _checked_ids(stimulus_ids, arr.shape[axis])
    values = np.asarray(arr, dtype=np.float64)
    if not allow_nan:
        _nan_report(np.moveaxis(values, axis, 0), ids, None, "responses")
    coords: dict[str, Any] = {d: np.arange(n) for d, n in zip(dims, arr.shape, strict=True)}
    coords["stimulus"] = ids
    feats, names = _feature_coords(features, ids.size)
    coords.update(feats)
    ds = xr.Dataset({name: (dims, values)}, coords=coords)
    ds.attrs["feature_names"] = names
    return ds


def _read_table(path: str | os.PathLike[str], sep: str | None) -> pd.DataFrame:
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist")
    if sep is None:
        sep = "\t" if file.suffix in (".tsv", ".tab") else ","
    try:
        return pd.read_csv(file, sep=sep)
    except Exception as err:  # pandas raises several types for malformed tables
        raise ValueError(f"{file} could not be read as a table ({err})") from err


def dataset_from_csv(path: str | os.PathLike[str], *, stimulus_column: str,
                     feature_columns: Sequence[str] = (),
                     response_columns: Sequence[str] | None = None, unit_dim: str = "neuron",
                     allow_nan: bool = False, sep: str | None = None) -> xr.Dataset:
    """Read a wide table (one row per stimulus, one column per unit) as a labelled Dataset.

    Parameters
    ----------
    path : CSV file (``.tsv``/``.tab``: tab-separated) with a header row.
    stimulus_column : column holding the stimulus ids (unique).
    feature_columns : columns describing the stimuli, stored as ``feature_<column>``.
    response_columns : the unit columns; default: every column that is neither the stimulus
        column nor a feature column. They must be numeric.
    unit_dim : name of the unit dim (``"neuron"``, ``"voxel"``, ``"electrode"``, ...); its
        coord holds the column names.
    allow_nan : keep empty cells (NaN); by default they are an error naming the columns and
        stimuli.
    sep : column separator; default from the file suffix.

    Returns
    -------
    xarray.Dataset with ``response(stimulus, <unit_dim>)``, ``feature_<name>`` coords,
    ``attrs["feature_names"]`` and ``attrs["source"]`` (the file).
    """
    table = _read_table(path, sep)
    feature_columns = list(feature_columns)
    wanted = [stimulus_column, *feature_columns, *(response_columns or [])]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} not found; the table has "
                         f"{list(table.columns)}")
    if response_columns is None:
        skip = {stimulus_column, *feature_columns}
        response_columns = [c for c in table.columns if c not in skip]
    response_columns = list(response_columns)
    if not response_columns:
        raise ValueError(f"{path}: no response columns left after the stimulus and feature "
                         "columns")
    bad = [c for c in response_columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise ValueError(f"{path}: response column(s) {bad[:5]} are not numeric (e.g. "
                         f"{table[bad[0]].iloc[0]!r}); list the unit columns in "
                         "response_columns=[...] or the labels in feature_columns=[...]")
    ids = _checked_ids(table[stimulus_column].to_numpy(), len(table))
    values = table[response_columns].to_numpy(dtype=np.float64)
    if not allow_nan:
        _nan_report(values, ids, response_columns, f"{path}: responses")
    ds = dataset_from_arrays(values, stimulus_ids=ids, dims=("stimulus", unit_dim),
                             features={c: table[c].to_numpy() for c in feature_columns},
                             allow_nan=True)
    ds = ds.assign_coords({unit_dim: np.asarray(response_columns, dtype=str)})
    ds.attrs["source"] = str(Path(path).expanduser())
    return ds
