"""Labelled-input handling shared by RDM, RSA, CKA and encoding functions.

Every public measure accepts an ``xarray.DataArray`` with a ``stimulus`` dim or a
plain numpy array (stimuli on axis 0). Labelled inputs are aligned on stimulus
ids; a mismatch is refused with an error naming the missing ids — never a silent
comparison by position. Option values are looked up with :func:`choose`, whose
error lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import choose  # noqa: F401 - the families look options up with it
from rsa_bias._values import numeric_values

ArrayLike = xr.DataArray | np.ndarray



def as_labelled(x: xr.DataArray | np.ndarray, *, name: str = "x",
                dims: Sequence[str] = ("stimulus", "unit")) -> xr.DataArray:
    """Wrap a numpy array as a DataArray with ``dims`` and integer stimulus ids.

    DataArrays pass through (they must have a ``stimulus`` dim); numpy arrays
    get ``dims`` in order and ``stimulus`` ids ``0..n-1``.
    """
    if isinstance(x, xr.DataArray):
        if "stimulus" not in x.dims:
            raise ValueError(f"{name} has dims {x.dims}; a 'stimulus' dim is required "
                             "(rename yours with .rename({...: 'stimulus'}))")
        if "stimulus" not in x.coords:
            x = x.assign_coords(stimulus=np.arange(x.sizes["stimulus"]))
        return x
    arr = np.asarray(x)
    if arr.ndim != len(dims):
        raise ValueError(f"{name} has shape {arr.shape}; expected {len(dims)} dims "
                         f"{tuple(dims)}")
    return xr.DataArray(arr, dims=tuple(dims), coords={"stimulus": np.arange(arr.shape[0])})


def _ids(x: xr.DataArray) -> np.ndarray:
    ids = x["stimulus"].values
    _id_kind(ids)  # ids that mix text and numbers are refused by name
    if len(np.unique(ids)) != len(ids):
        raise ValueError("stimulus ids are not unique; each stimulus needs its own id")
    return ids


def _id_kind(ids: np.ndarray) -> str:
    """"text" or "number": the kind of stimulus ids (object arrays by their elements)."""
    kind = ids.dtype.kind
    if kind == "O" and ids.size:
        kinds = {"text" if isinstance(v, (str, bytes)) else "number" for v in ids.tolist()}
        if len(kinds) > 1:
            raise ValueError("stimulus ids mix text and numbers; give every stimulus an id of "
                             "one type (e.g. .assign_coords(stimulus=x.stimulus.astype(str)))")
        return kinds.pop()
    return "text" if kind in "USO" else "number"


def check_id_kinds(ids: list[np.ndarray], names: list[str]) -> None:
    kinds = [_id_kind(i) for i in ids]
    if len(set(kinds)) > 1:
        described = ", ".join(f"{n}: {k} ({i.dtype})" for n, k, i in zip(names, kinds, ids,
                                                                        strict=True))
        raise ValueError(f"stimulus ids are of different types ({described}), so none can "
                         "match; convert one side, e.g. "
                         "y.assign_coords(stimulus=y.stimulus.astype(str))")


def canonical_order(x: xr.DataArray) -> xr.DataArray:
    """``x`` in ascending stimulus-id order, so that seeded resamples and folds do not depend
    on the row order of the input (numpy inputs, ids ``0..n-1``, are unchanged)."""
    ids = x["stimulus"].values
    _id_kind(ids)
    order = np.argsort(ids, kind="stable")
    if np.array_equal(order, np.arange(len(ids))):
        return x
    return x.isel(stimulus=order)


def align_stimuli(*arrays: xr.DataArray, names: Sequence[str] | None = None,
                  join: str = "exact") -> list[xr.DataArray]:
    """Reorder labelled arrays to the stimulus order of the first one.

    Parameters
    ----------
    *arrays : xarray.DataArray
        DataArrays with a ``stimulus`` coord (unique ids).
    names : sequence of str, optional
        Names of the inputs in error messages; default ``"input 0"``, ``"input 1"``, ...
    join : {"exact", "inner"}, default "exact"
        ``"exact"`` refuses any difference in the stimulus sets; ``"inner"``
        keeps the stimuli common to all (in the first array's order).

    Returns
    -------
    list of xarray.DataArray
        The arrays, all in the stimulus order of the first one.

    Raises
    ------
    ValueError
        Naming (some of) the ids missing from one side; also for repeated ids, an unknown
        ``join``, or fewer than 2 shared stimuli with ``"inner"``.
    """
    names = list(names or [f"input {i}" for i in range(len(arrays))])
    ids = [_ids(a) for a in arrays]
    check_id_kinds(ids, names)
    ref = ids[0]
    if join == "inner":
        keep = ref[np.all([np.isin(ref, other) for other in ids[1:]], axis=0)]
        if keep.size < 2:
            raise ValueError(f"only {keep.size} stimulus ids are shared by all inputs")
        return [a.sel(stimulus=keep) for a in arrays]
    if join != "exact":
        raise ValueError(f"unknown join {join!r}; valid: ['exact', 'inner']")
    out = [arrays[0]]
    for a, other, nm in zip(arrays[1:], ids[1:], names[1:], strict=True):
        missing = np.setdiff1d(ref, other)
        extra = np.setdiff1d(other, ref)
        if missing.size or extra.size:
            parts = []
            if missing.size:
                parts.append(f"{missing.size} ids of {names[0]} are missing from {nm} "
                             f"(e.g. {missing[:3].tolist()})")
            if extra.size:
                parts.append(f"{extra.size} ids of {nm} are missing from {names[0]} "
                             f"(e.g. {extra[:3].tolist()})")
            raise ValueError("stimuli differ: " + "; ".join(parts) +
                             "; select the stimuli both share first, e.g. "
                             "x.sel(stimulus=shared) and y.sel(stimulus=shared)")
        out.append(a.sel(stimulus=ref))
    return out


def check_finite(values: np.ndarray, name: str) -> None:
    """Refuse complex, empty and NaN/inf ``values`` (see :func:`numeric_values`)."""
    numeric_values(values, name)


def finite_values(x: xr.DataArray, name: str) -> np.ndarray:
    """The array's values as float64, refusing complex, empty and NaN/inf values."""
    return numeric_values(x.values, name)


def stimulus_matrix(x: xr.DataArray, name: str) -> np.ndarray:
    """``(stimulus, unit)`` float64 values of a labelled input, refusing NaN/inf."""
    other = [d for d in x.dims if d != "stimulus"]
    if len(other) > 1:
        raise ValueError(f"{name} has dims {x.dims}; expected (stimulus, unit): select or stack "
                         f"the extra dims {other[1:]} first")
    values = finite_values(x.transpose("stimulus", *other), name)
    return values.reshape(values.shape[0], -1)


def align_to(ref: xr.DataArray, other: xr.DataArray, names: tuple[str, str]) -> xr.DataArray:
    """``other`` in the stimulus order of ``ref`` (no copy when the ids already match)."""
    ids_ref, ids = ref["stimulus"].values, other["stimulus"].values
    if ids_ref.dtype == ids.dtype and ids.dtype != object and np.array_equal(ids_ref, ids) \
            and len(np.unique(ids)) == len(ids):
        return other
    return align_stimuli(ref, other, names=list(names))[1]


def labelled_pair(x: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("x", "y"),
                  ) -> tuple[xr.DataArray, xr.DataArray]:
    """``x`` and ``y`` as labelled arrays, ``y`` in the stimulus order of ``x``."""
    a = as_labelled(x, name=names[0])
    b = as_labelled(y, name=names[1])
    return a, align_to(a, b, names)


def paired_values(x: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("x", "y"),
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``(stimulus, unit)`` arrays of ``x`` and ``y``, aligned on stimulus ids."""
    a, b = labelled_pair(x, y, names)
    return stimulus_matrix(a, names[0]), stimulus_matrix(b, names[1])


def is_dask_backed(x) -> bool:
    """Whether ``x`` (a DataArray or an array) holds a lazy Dask array (its measures then
    stream it instead of loading it)."""
    data = getattr(x, "data", x)
    graph = getattr(data, "__dask_graph__", None)
    return callable(graph) and graph() is not None


def as_lazy_labelled(x, name: str = "x"):
    """A bare Dask array as a ``(stimulus, unit)`` DataArray with ids ``0..n-1`` (as numpy
    input is read), without computing it; anything else unchanged."""
    if isinstance(x, xr.DataArray) or not is_dask_backed(x):
        return x
    if x.ndim != 2:
        raise ValueError(f"{name} has shape {x.shape}; expected 2 dims ('stimulus', 'unit')")
    return xr.DataArray(x, dims=("stimulus", "unit"), coords={"stimulus": np.arange(x.shape[0])})


def float64_rows(data, name: str):
    """A ``(stimulus, unit)`` Dask array as float64 chunks that each span all units, refusing
    complex, non-numeric or empty values with the in-memory path's errors. One chunk across
    units lets the streamed measures reduce per-chunk products as they go (with unit blocks
    Dask was seen to hold every chunk's partial product, memory growing with n)."""
    if data.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} is {data.dtype}; the measures "
                         "are defined for real values: pass its real part, modulus or stacked "
                         "(real, imag) parts")
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name} has non-numeric values ({data.dtype}); pass real numbers")
    if data.size == 0:
        raise ValueError(f"{name} is empty (shape {data.shape}); it needs at least one "
                         "stimulus and one unit")
    return data.astype(np.float64).rechunk({1: -1})
