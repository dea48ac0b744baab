"""RDM forms (square <-> condensed) and RDM inputs read as stacks of condensed vectors.

Shared by every family that takes RDMs (:mod:`rsa_bias.analysis.rsa` for comparisons,
ceilings and inference; :mod:`rsa_bias.analysis.features` for RDM variance partitioning).

Any accepted RDM input — a labelled ``(..., "stimulus_i", "stimulus_j")`` or
``(..., "pair")`` DataArray, a condensed vector, a square RDM or a stack of either
— is read into a :class:`RdmStack` of upper-triangle vectors plus the labels needed
to rebuild a labelled result. Stacks over different stimulus sets are re-expressed
over their common stimuli by id, never by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias._values import numeric_values
from rsa_bias.analysis._inputs import align_stimuli

RDM_DIMS = ("stimulus_i", "stimulus_j")
PAIR_DIM = "pair"


def triu_vectors(arr: np.ndarray) -> np.ndarray:
    """Row-wise upper triangles of ``(..., n, n)``: one contiguous slice copy per row."""
    n = arr.shape[-1]
    stack = arr.reshape(-1, n, n)
    out = np.empty((stack.shape[0], n * (n - 1) // 2), dtype=arr.dtype)
    start = 0
    for row in range(n - 1):
        out[:, start:start + n - row - 1] = stack[:, row, row + 1:]
        start += n - row - 1
    return out.reshape(*arr.shape[:-2], out.shape[1])


def n_stimuli_from_pairs(m: int) -> int:
    """``n`` with ``n(n-1)/2 == m``; ValueError if ``m`` is not such a number."""
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        raise ValueError(f"{m} is not the length of a condensed RDM (n(n-1)/2)")
    return n


def vectors_to_square(v: np.ndarray) -> np.ndarray:
    """Condensed vectors ``(..., m)`` to square RDMs ``(..., n, n)`` with a zero diagonal."""
    n = n_stimuli_from_pairs(v.shape[-1])
    out = np.zeros((*v.shape[:-1], n, n), dtype=v.dtype)
    i, j = np.triu_indices(n, 1)
    out[..., i, j] = v
    out[..., j, i] = v
    return out


@dataclass
class RdmStack:
    """RDMs as condensed vectors ``(k, m)`` plus the labels needed to rebuild the result."""

    vectors: np.ndarray
    ids: np.ndarray
    dims: tuple[str, ...] = ()
    shape: tuple[int, ...] = ()
    coords: dict[str, Any] = field(default_factory=dict)


def _pair_ids(v: xr.DataArray, n: int) -> np.ndarray:
    if "stimulus_i" not in v.coords:
        return np.arange(n)
    si, sj = v["stimulus_i"].values, v["stimulus_j"].values
    ids = np.concatenate([si[:1], sj[: n - 1]])
    i, j = np.triu_indices(n, 1)
    if not (np.array_equal(ids[i], si) and np.array_equal(ids[j], sj)):
        raise ValueError("the stimulus_i/stimulus_j coords of the 'pair' dim are not in "
                         "condensed() order; build vector RDMs with condensed()")
    return ids


def square_to_vectors(square: np.ndarray, name: str) -> np.ndarray:
    """Upper triangles of square RDMs; asymmetry is detected through row vs column sums."""
    rows, cols = square.sum(axis=-1), square.sum(axis=-2)
    scale = np.nanmax(np.abs(rows), initial=0.0)
    if not np.allclose(rows, cols, rtol=1e-6, atol=1e-9 * scale, equal_nan=True):
        raise ValueError(f"{name} is not symmetric; an RDM must have d(i, j) == d(j, i) "
                         "(symmetrise it with (d + d.T) / 2 or pass condensed() vectors)")
    return triu_vectors(square).reshape(-1, square.shape[-1] * (square.shape[-1] - 1) // 2)


def _from_dataarray(x: xr.DataArray, name: str) -> RdmStack:
    if PAIR_DIM in x.dims:
        lead = tuple(str(d) for d in x.dims if d != PAIR_DIM)
        x = x.transpose(*lead, PAIR_DIM)
        ids = _pair_ids(x, n_stimuli_from_pairs(x.sizes[PAIR_DIM]))
        vectors = numeric_values(x.values, name, finite=False, empty_ok=True).reshape(
            -1, x.sizes[PAIR_DIM])
    elif set(RDM_DIMS) <= set(x.dims):
        lead = tuple(str(d) for d in x.dims if d not in RDM_DIMS)
        x = x.transpose(*lead, *RDM_DIMS)
        ids = x["stimulus_i"].values if "stimulus_i" in x.coords else np.arange(x.shape[-1])
        if "stimulus_j" in x.coords and not np.array_equal(ids, x["stimulus_j"].values):
            jds = x["stimulus_j"].values
            if set(ids.tolist()) != set(jds.tolist()):
                raise ValueError(f"{name}: stimulus_i and stimulus_j hold different ids (e.g. "
                                 f"{np.setdiff1d(ids, jds)[:3].tolist()} vs "
                                 f"{np.setdiff1d(jds, ids)[:3].tolist()}); an RDM is square "
                                 "over one stimulus set")
            x = x.sel(stimulus_j=ids)
        vectors = square_to_vectors(numeric_values(x.values, name, finite=False,
                                                   empty_ok=True), name)
    else:
        raise ValueError(f"{name} has dims {x.dims}; expected (..., 'stimulus_i', "
                         "'stimulus_j') or (..., 'pair') from condensed()")
    coords = {k: c.variable for k, c in x.coords.items() if c.dims and set(c.dims) <= set(lead)}
    return RdmStack(vectors, ids, lead, tuple(x.shape[: len(lead)]), coords)


def as_stack(x: xr.DataArray | np.ndarray, name: str) -> RdmStack:
    """Any accepted RDM input as a :class:`RdmStack` of condensed vectors.

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        A labelled ``(..., "stimulus_i", "stimulus_j")`` or ``(..., "pair")`` DataArray, a
        condensed vector ``(m,)``, a square RDM ``(n, n)`` or a stack ``(k, n, n)`` /
        ``(k, m)`` (numpy stacks get the leading dim ``"rdm"`` and ids ``0..n-1``).
    name : str
        Name of the input in error messages.

    Returns
    -------
    RdmStack
        The upper-triangle vectors ``(k, m)`` and the labels needed to rebuild a result.

    Raises
    ------
    ValueError
        An unrecognised shape or dims, an asymmetric square RDM, fewer than 3 stimuli, or
        inf dissimilarities.
    """
    if isinstance(x, xr.DataArray):
        stack = _from_dataarray(x, name)
    else:
        arr = numeric_values(x, name, finite=False, empty_ok=True)
        if arr.ndim == 1:
            stack = RdmStack(arr[None, :], np.arange(n_stimuli_from_pairs(arr.size)))
        elif arr.ndim in (2, 3) and arr.shape[-1] == arr.shape[-2]:
            lead = ("rdm",) if arr.ndim == 3 else ()
            stack = RdmStack(square_to_vectors(arr, name), np.arange(arr.shape[-1]), lead,
                           arr.shape[:-2])
        elif arr.ndim == 2:
            try:
                n = n_stimuli_from_pairs(arr.shape[1])
            except ValueError:
                raise ValueError(f"{name} has shape {arr.shape}: neither square RDMs (n, n) nor "
                                 "a stack of condensed vectors (k, n(n-1)/2)") from None
            stack = RdmStack(arr, np.arange(n), ("rdm",), arr.shape[:1])
        else:
            raise ValueError(f"{name} has shape {arr.shape}; expected a condensed vector "
                             "(m,), a square RDM (n, n) or a stack (k, n, n) / (k, m)")
    if stack.ids.size < 3:
        raise ValueError(f"{name} has {stack.ids.size} stimuli; comparing RDMs needs at least 3")
    if np.isinf(stack.vectors).any():
        raise ValueError(f"{name} contains inf dissimilarities")
    return stack


def select_pairs(vectors: np.ndarray, ids_from: np.ndarray, ids_to: np.ndarray) -> np.ndarray:
    """Condensed vectors over ``ids_from`` re-expressed over ``ids_to`` (a subset, any order)."""
    if np.array_equal(ids_from, ids_to):
        return vectors
    lookup = {v: k for k, v in enumerate(ids_to.tolist())}
    pos = np.array([lookup.get(v, -1) for v in ids_from.tolist()])
    i, j = np.triu_indices(ids_from.size, 1)
    keep = (pos[i] >= 0) & (pos[j] >= 0)
    n = ids_to.size
    target = pair_index(pos[i][keep], pos[j][keep], n)
    out = np.empty((vectors.shape[0], n * (n - 1) // 2))
    out[:, target] = vectors[:, keep]
    return out


def pair_index(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position of pair ``(i, j)``, ``i != j``, in a condensed vector over ``n`` stimuli."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo * n - lo * (lo + 1) // 2 + (hi - lo - 1)


def common_ids(a: RdmStack, b: RdmStack, names: tuple[str, str], join: str, purpose: str,
                ) -> np.ndarray:
    """Stimulus ids shared by two stacks, in ``a``'s order (refuses mismatches, naming ids)."""
    def labels(ids: np.ndarray) -> xr.DataArray:
        return xr.DataArray(np.zeros(ids.size), dims="stimulus", coords={"stimulus": ids})

    common, _ = align_stimuli(labels(a.ids), labels(b.ids), names=list(names), join=join)
    ids = common["stimulus"].values
    if ids.size < 3:
        raise ValueError(f"{names[0]} and {names[1]} share {ids.size} stimuli; {purpose} needs "
                         "at least 3")
    return ids
