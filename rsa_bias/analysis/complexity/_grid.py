"""Shared input handling of the complexity measures: functions sampled on a grid.

Every measure takes ``values`` whose last ``ndim`` axes are the grid and whose leading axes
(any number, possibly none) index the functions. :func:`grid_batch` checks them and stacks
the functions as ``(n_functions, *grid)``; :func:`finish` shapes a per-function result back
to the leading axes, as a float, a numpy array or (for a DataArray input) a DataArray whose
attrs record the computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias._values import check_count, numeric_values
from rsa_bias.provenance import result_attrs

GRID_NDIMS = (1, 2)


@dataclass(frozen=True)
class Grid:
    """Checked functions: ``flat`` ``(n_functions, *grid)`` float64, each rescaled by a power
    of two so that its largest magnitude lies in [0.5, 1) (exact; every measure is scale
    invariant), ``constant`` flags the constant functions, ``lead_shape`` the leading axes
    and ``template`` the DataArray input (None for arrays)."""

    flat: np.ndarray
    constant: np.ndarray
    lead_shape: tuple[int, ...]
    template: xr.DataArray | None


def check_ndim(ndim: Any) -> int:
    """``ndim`` as 1 or 2, or a ValueError listing the valid values."""
    if isinstance(ndim, bool) or ndim not in GRID_NDIMS:
        raise ValueError(f"unknown ndim {ndim!r}; valid: {list(GRID_NDIMS)} (the number of "
                         "trailing axes of values that form the grid)")
    return int(ndim)


def check_levels(levels: Any) -> int:
    """``levels`` as an integer >= 2 (one symbol cannot tell functions apart)."""
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 2:
        raise ValueError(f"levels must be an integer >= 2 (the alphabet size of the "
                         f"quantised function, 2 for binary); got {levels!r}")
    return int(levels)


def check_max_order(max_order: Any) -> int:
    """``max_order`` as an integer >= 1."""
    return check_count(max_order, "max_order", minimum=1)


def grid_batch(values: Any, ndim: int, *, min_size: int = 2,
               why: str = "a grid needs at least 2 points along each axis") -> Grid:
    """The functions of ``values`` as a checked :class:`Grid`.

    Refuses complex, non-numeric, empty and NaN/inf values, fewer than ``ndim`` axes and a
    grid with fewer than ``min_size`` points along an axis (``why`` says what needs them).
    """
    ndim = check_ndim(ndim)
    template = values if isinstance(values, xr.DataArray) else None
    arr = numeric_values(values.values if template is not None else values, "values",
                         finite=False)
    if arr.ndim < ndim:
        layout = "(..., n_y, n_x)" if ndim == 2 else "(..., n)"
        raise ValueError(f"values has shape {arr.shape}; with ndim={ndim} its last {ndim} "
                         f"axes are the grid {layout}: pass ndim={arr.ndim} for a "
                         f"{arr.ndim}-D function, or add the missing axis")
    grid = arr.shape[arr.ndim - ndim:]
    if min(grid) < min_size:
        raise ValueError(f"the grid {grid} (last {ndim} axes of values, shape {arr.shape}) "
                         f"has an axis with fewer than {min_size} points; {why}")
    lead = arr.shape[:arr.ndim - ndim]
    flat = arr.reshape(-1, *grid)
    bad = ~np.isfinite(flat)
    if bad.any():
        n_fun = int(bad.reshape(len(flat), -1).any(axis=1).sum())
        raise ValueError(f"values contains {int(bad.sum())} NaN/inf values (in {n_fun} of "
                         f"{len(flat)} functions); drop those functions or impute them first")
    axes = tuple(range(1, ndim + 1))
    constant = np.ptp(flat, axis=axes) == 0
    top = np.max(np.abs(flat), axis=axes)
    _, exponent = np.frexp(np.where(top > 0, top, 1.0))
    scaled = np.ldexp(flat, -exponent.reshape(-1, *([1] * ndim)))
    return Grid(scaled, constant, lead, template)


def finish(result: np.ndarray, grid: Grid, function: str, **params: Any
           ) -> np.ndarray | float | xr.DataArray:
    """Per-function ``result`` over the leading axes: a float for one function without
    leading axes, a float64 array, or for a DataArray input a DataArray over its leading dims
    (their coords kept) with attrs from :func:`result_attrs`."""
    out = np.asarray(result, dtype=np.float64).reshape(grid.lead_shape)
    if grid.template is None:
        return float(out) if out.ndim == 0 else out
    return xr.DataArray(out, dims=lead_dims(grid), coords=lead_coords(grid), name=function,
                        attrs=result_attrs(function, **params))


def lead_dims(grid: Grid) -> tuple[str, ...]:
    """The dims of the leading axes: the DataArray's own, else ``function_0, function_1, ...``."""
    if grid.template is not None:
        return tuple(map(str, grid.template.dims[:len(grid.lead_shape)]))
    return tuple(f"function_{i}" for i in range(len(grid.lead_shape)))


def lead_coords(grid: Grid) -> dict[str, xr.DataArray]:
    """The DataArray's coords that lie on its leading dims only (none for an array)."""
    if grid.template is None:
        return {}
    dims = set(lead_dims(grid))
    return {str(k): v for k, v in grid.template.coords.items() if set(v.dims) <= dims}
