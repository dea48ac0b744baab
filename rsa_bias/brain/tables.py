"""Your own responses (numpy arrays or a CSV table) in the labelled form the analyses use.

Both functions return an ``xr.Dataset`` following the data model of
``docs/architecture.md``: ``response(stimulus, <unit dim>)`` with stimulus ids on
``stimulus``, one coordinate ``feature_<name>`` per stimulus feature and
``attrs["feature_names"]`` listing the features in order — the same layout as the generated
tasks, so every analysis (RDMs, variance explained by a feature, encoding models) runs on it
unchanged::

    ds = dataset_from_csv("responses.csv", stimulus_column="image",
                          feature_columns=["category", "size"])
    d = rdm(ds.response, method="correlation")
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr


def _is_missing(value: Any) -> bool:
    if isinstance(value, str | bytes):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like element: not a missing scalar
        return False


def _id_kind(value: Any) -> str:
    if isinstance(value, str | bytes):
        return "str"
    if isinstance(value, numbers.Number):
        return "number"
    return type(value).__name__


def _checked_ids(stimulus_ids: Any, n: int) -> np.ndarray:
    given = np.asarray(stimulus_ids)
    if given.ndim != 1 or given.size != n:
        raise ValueError(f"{given.size} stimulus ids for {n} stimuli (responses along "
                         "'stimulus'); pass exactly one id per stimulus")
    # element by element: np.asarray(["a", 1]) would silently turn 1 into "1"
    elements = np.asarray(stimulus_ids, dtype=object).tolist()
    empty = [pos for pos, v in enumerate(elements) if _is_missing(v)]
    if empty:
        raise ValueError(f"{len(empty)} stimulus id(s) are empty or NaN (at position(s) "
                         f"{empty[:5]}); every stimulus needs an id: fill them in or drop "
                         "those stimuli")
    kinds: dict[str, Any] = {}
    for v in elements:
        kinds.setdefault(_id_kind(v), v)
    if len(kinds) > 1:
        examples = ", ".join(f"{v!r} ({k})" for k, v in kinds.items())
        raise ValueError(f"stimulus ids mix types: {examples}; use one type for all ids, e.g. "
                         "[str(i) for i in ids]")
    ids = given if given.dtype != object else np.asarray(elements)
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


def _aligned(name: Any, values: Any, ids: np.ndarray) -> np.ndarray:
    """Feature values in the order of ``ids``: by index for a pandas Series with an index
    other than the default ``0..n-1``, else by position."""
    if not isinstance(values, pd.Series) or values.index.equals(pd.RangeIndex(len(values))):
        return np.asarray(values)
    if not values.index.is_unique:
        dup = values.index[values.index.duplicated()].unique()
        raise ValueError(f"feature {name!r} has an index with repeated labels (e.g. "
                         f"{dup[:5].tolist()}); give one row per stimulus id")
    missing = pd.Index(ids).difference(values.index)
    if missing.size:
        raise ValueError(f"feature {name!r} is indexed by labels but lacks {missing.size} "
                         f"stimulus id(s), e.g. {missing[:5].tolist()}; index it by the "
                         "stimulus ids, or pass it in stimulus order without an index "
                         "(.to_numpy() or .reset_index(drop=True))")
    return values.reindex(ids).to_numpy()


def _feature_coords(features: Mapping[str, Any] | pd.DataFrame | None, ids: np.ndarray,
                    allow_nan: bool) -> tuple[dict[str, Any], list[str]]:
    if features is None:
        return {}, []
    coords, names = {}, []
    for name, values in features.items():
        arr = _aligned(name, values, ids)
        if arr.ndim != 1 or arr.size != ids.size:
            raise ValueError(f"feature {name!r} has {arr.size} values for {ids.size} stimuli; "
                             "a feature needs one value per stimulus")
        empty = np.flatnonzero(pd.isna(arr))
        if empty.size and not allow_nan:
            raise ValueError(f"feature {name!r} is missing (NaN) for {empty.size} stimuli (ids "
                             f"{ids[empty][:5].tolist()}); fill or drop them, or pass "
                             "allow_nan=True to keep them")
        coords[f"feature_{name}"] = ("stimulus", arr)
        names.append(str(name))
    return coords, names


def dataset_from_arrays(responses: Any, *, stimulus_ids: Sequence[Any] | np.ndarray,
                        dims: Sequence[str] = ("stimulus", "neuron"),
                        features: Mapping[str, Any] | pd.DataFrame | None = None,
                        name: str = "response", allow_nan: bool = False) -> xr.Dataset:
    """Wrap a response array as a labelled Dataset.

    The result follows the data model of ``docs/architecture.md``, the same layout as the
    generated tasks, so every analysis (RDMs, variance explained by a feature, encoding models) runs
    on it unchanged.

    Parameters
    ----------
    responses : array_like
        Numeric (or boolean) array, one axis per name in ``dims`` (e.g. stimuli x neurons,
        or stimuli x neurons x repeats with ``dims=("stimulus", "neuron", "repeat")``).
    stimulus_ids : sequence or numpy.ndarray
        One id per stimulus, unique, all str or all numbers (no empty or NaN id).
    dims : sequence of str, default ("stimulus", "neuron")
        Dim names, each once; must contain ``"stimulus"``. Other dims get ``0..n-1``
        coords.
    features : mapping of str to array_like, or pandas.DataFrame, optional
        ``{name: per-stimulus values}`` or a DataFrame with one column per feature, stored
        as coords ``feature_<name>``. A pandas Series (or DataFrame) indexed by labels is
        matched to ``stimulus_ids`` by its index (every id must be there; extra rows are
        dropped); plain arrays, lists and the default ``0..n-1`` index are taken in
        stimulus order.
    name : str, default "response"
        Name of the data variable.
    allow_nan : bool, default False
        Keep NaN/inf responses (e.g. missing repeats) and NaN feature values; by default
        they are an error naming the stimuli.

    Returns
    -------
    xarray.Dataset with dims ("stimulus", ...)
        ``<name>(*dims)`` (float64), coords ``stimulus``, ``feature_<name>`` and
        ``attrs["feature_names"]``.

    Raises
    ------
    ValueError
        For dims without ``"stimulus"``, a shape that does not match ``dims``, non-numeric
        responses, missing, repeated or mixed-type ids, misaligned features, or NaN values
        without ``allow_nan``.

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
    feats, names = _feature_coords(features, ids, allow_nan)
    coords.update(feats)
    ds = xr.Dataset({name: (dims, values)}, coords=coords)
    ds.attrs["feature_names"] = names
    return ds


def _read_table(path: str | os.PathLike[str], sep: str | None,
                id_column: str | None = None) -> pd.DataFrame:
    """The table, with ``id_column`` read as text: integers only if every id is written
    as a plain integer (``"003"`` stays ``"003"``, never the integer 3)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist")
    if sep is None:
        sep = "\t" if file.suffix in (".tsv", ".tab") else ","
    try:
        table = pd.read_csv(file, sep=sep, dtype=None if id_column is None else {id_column: str})
    except Exception as err:  # pandas raises several types for malformed tables
        raise ValueError(f"{file} could not be read as a table ({err})") from err
    if id_column in table.columns:
        ids = table[id_column].str.strip()
        table[id_column] = ids
        if ids.notna().all() and ids.str.fullmatch(r"0|-?[1-9][0-9]*").all():
            numbers = [int(i) for i in ids]
            if all(-2**63 <= i < 2**63 for i in numbers):  # else they stay text
                table[id_column] = np.asarray(numbers, dtype=np.int64)
    return table


def _check_response_columns(path: Any, columns: list[str], stimulus_column: str) -> None:
    if stimulus_column in columns:
        raise ValueError(f"{path}: response_columns include the stimulus column "
                         f"{stimulus_column!r}; list only the unit columns")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"{path}: response_columns repeat {repeated}; list each unit column "
                         "once")


def dataset_from_csv(path: str | os.PathLike[str], *, stimulus_column: str,
                     feature_columns: Sequence[str] = (),
                     response_columns: Sequence[str] | None = None, unit_dim: str = "neuron",
                     allow_nan: bool = False, sep: str | None = None) -> xr.Dataset:
    """Read a wide table (one row per stimulus, one column per unit) as a labelled Dataset.

    Parameters
    ----------
    path : str or os.PathLike
        CSV file (``.tsv``/``.tab``: tab-separated) with a header row.
    stimulus_column : str
        Column holding the stimulus ids (unique), read as text without surrounding spaces;
        they become integers only when every id is written as a plain integer that fits
        64 bits (``12``, ``-3``; not ``003``, ``+3``, ``-0``, ``1.0`` or ``1e3``), so ids
        with leading zeros are never merged into numbers. Match the activation file's ids
        (``rsa-bias compare`` refuses ids of another type or value, naming both).
    feature_columns : sequence of str, default ()
        Columns describing the stimuli, stored as ``feature_<column>``.
    response_columns : sequence of str, optional
        The unit columns, each once; default: every column that is neither the stimulus
        column nor a feature column. They must be numeric.
    unit_dim : str, default "neuron"
        Name of the unit dim (``"neuron"``, ``"voxel"``, ``"electrode"``, ...); its coord
        holds the column names.
    allow_nan : bool, default False
        Keep empty response or feature cells (NaN); by default they are an error naming
        the columns and stimuli. An empty stimulus id is always an error.
    sep : str, optional
        Column separator; default from the file suffix (tab for ``.tsv``/``.tab``, else a
        comma).

    Returns
    -------
    xarray.Dataset with dims ("stimulus", unit_dim)
        ``response(stimulus, <unit_dim>)``, ``feature_<name>`` coords,
        ``attrs["feature_names"]`` and ``attrs["source"]`` (the file).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For an unreadable table, missing or repeated columns, non-numeric response
        columns, or ids and values refused as by :func:`dataset_from_arrays`.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     csv = Path(tmp) / "responses.csv"
    ...     pd.DataFrame({"image": ["im1", "im2"], "category": ["face", "house"],
    ...                   "n1": [0.5, 0.2], "n2": [1.0, 0.1]}).to_csv(csv, index=False)
    ...     ds = dataset_from_csv(csv, stimulus_column="image", feature_columns=["category"])
    >>> ds.response.dims, ds.neuron.values.tolist(), ds.feature_category.values.tolist()
    (('stimulus', 'neuron'), ['n1', 'n2'], ['face', 'house'])
    """
    table = _read_table(path, sep, stimulus_column)
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
    _check_response_columns(path, response_columns, stimulus_column)
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
                             allow_nan=allow_nan)
    ds = ds.assign_coords({unit_dim: np.asarray(response_columns, dtype=str)})
    ds.attrs["source"] = str(Path(path).expanduser())
    return ds
