"""Shared helpers: read features and splits off labelled activations, with clear errors."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._features import feature_names
from rsa_bias._values import check_names, numeric_values
from rsa_bias.analysis._inputs import as_labelled, check_id_kinds


def listed_names(attrs: dict) -> list[str]:
    """``attrs["feature_names"]`` as a list; absent or ``None`` gives ``[]``."""
    return [] if attrs.get("feature_names") is None else feature_names(attrs)


def labelled_activation(x, stimuli: xr.Dataset | None, name: str = "x") -> xr.DataArray:
    """``x`` as a labelled (stimulus, unit, ...) DataArray with the coords of ``stimuli``.

    A numpy array is read as (stimulus, unit) with stimulus ids ``0..n-1``; it carries no
    feature labels, so it needs ``stimuli`` (which must describe the ids ``0..n-1``).
    """
    if isinstance(x, xr.DataArray):
        return attach_stimulus_coords(x, stimuli)
    if stimuli is None:
        raise ValueError(f"{name} is a {type(x).__module__.split('.')[0]} "
                         f"{type(x).__name__}, which carries no feature labels; "
                         "pass stimuli=<stimulus set> (the rows are read as stimulus ids "
                         "0..n-1) or a DataArray with a 'stimulus' dim and feature_<name> "
                         "coords")
    arr = as_labelled(x, name=name)
    ids = stimuli["stimulus"].values
    if not np.isin(arr["stimulus"].values, ids).all():
        raise ValueError(f"{name} is a numpy array, read as stimuli with ids 0..{len(arr) - 1}, "
                         f"but the stimulus set lacks some (its ids: {ids[:3].tolist()}, ...); "
                         "label it: "
                         f"xr.DataArray({name}, dims=('stimulus', 'unit'), "
                         "coords={'stimulus': ids})")
    return attach_stimulus_coords(arr, stimuli)


def attach_stimulus_coords(activation: xr.DataArray, stimuli: xr.Dataset | None) -> xr.DataArray:
    """Copy the stimulus coords of ``stimuli`` onto ``activation``, aligned by stimulus id.

    Refuses (naming missing ids) when ``activation`` holds stimuli that
    ``stimuli`` does not describe; never aligns by position.
    """
    if "stimulus" not in activation.dims:
        raise ValueError(f"activation has dims {activation.dims}; a 'stimulus' dim is required")
    if stimuli is None:
        return activation
    if "stimulus" not in activation.coords:
        raise ValueError("activation has no stimulus ids (coordinate 'stimulus'); label it "
                         "before passing a separate stimulus set")
    ids = activation["stimulus"].values
    check_id_kinds([ids, stimuli["stimulus"].values], ["the activations", "the stimulus set"])
    missing = np.setdiff1d(ids, stimuli["stimulus"].values)
    if missing.size:
        raise ValueError(f"stimuli differ: {missing.size} stimulus ids of the activations are "
                         f"missing from the stimulus set (e.g. {missing[:3].tolist()}); pass "
                         "the stimulus set the activations were computed on")
    sel = stimuli.sel(stimulus=ids)
    extra = {k: ("stimulus", sel[k].values) for k in sel.coords
             if k != "stimulus" and sel[k].dims == ("stimulus",)}
    out = activation.assign_coords(extra)
    out.attrs = {**activation.attrs, "feature_names": listed_names(stimuli.attrs)}
    return out


def feature_names_of(activation: xr.DataArray, features: Sequence[str] | None) -> list[str]:
    """Names of the features to analyse; checks each ``feature_<name>`` coord exists."""
    available = [str(c)[len("feature_"):] for c in activation.coords
                 if str(c).startswith("feature_")]
    listed = listed_names(activation.attrs)
    names = check_names(features, "features") if features is not None else (listed or available)
    missing = [n for n in names if n not in available]
    if missing or not names:
        raise ValueError(f"no feature coord for {missing or 'any feature'} on the activations "
                         f"(available: {available}); attach the stimulus set with "
                         "stimuli=... or add coords named feature_<name>")
    return names


def split_mask(activation: xr.DataArray, split: str | None) -> np.ndarray:
    """Boolean mask of stimuli in ``split`` (all stimuli for ``None``)."""
    n = activation.sizes["stimulus"]
    if split is None:
        return np.ones(n, dtype=bool)
    if "split" not in activation.coords:
        raise ValueError(f"split={split!r} requested but the activations have no 'split' "
                         "coord; attach the stimulus set or pass split=None")
    mask = activation["split"].values == split
    if mask.sum() < 2:
        raise ValueError(f"split {split!r} holds {int(mask.sum())} stimuli; at least 2 are "
                         f"needed (splits present: {sorted(set(activation['split'].values))})")
    return mask


def map_over_extra_dims(activation: xr.DataArray, fn, trailing: dict[str, tuple[str, ...]],
                        coords: dict[str, Sequence], *, lazy: bool = False) -> xr.Dataset:
    """Apply ``fn(phi (stimulus, unit) float64) -> dict`` over every extra dim.

    ``trailing[name]`` names the dims of ``fn``'s output ``name`` (after the extra
    dims); ``coords`` labels those trailing dims. ``lazy``: ``fn`` gets each ``(stimulus,
    unit)`` slice as a (Dask-backed) DataArray instead, never loaded as a whole.
    """
    extra = [d for d in activation.dims if d not in ("stimulus", "unit")]
    shape = [activation.sizes[d] for d in extra]
    if lazy:
        def take(idx):
            return activation.isel(dict(zip(extra, idx, strict=True)))
    else:
        values = activation.transpose(*extra, "stimulus", "unit").values

        def take(idx):
            return numeric_values(values[idx], "activation")
    outs: dict[str, np.ndarray] = {}
    for idx in itertools.product(*(range(s) for s in shape)):
        for k, v in fn(take(idx)).items():
            if k not in outs:
                outs[k] = np.empty(shape + list(np.shape(v)))
            outs[k][idx] = v
    all_coords = {d: activation[d].values for d in extra if d in activation.coords}
    all_coords.update(coords)
    return xr.Dataset({k: ((*extra, *trailing[k]), v) for k, v in outs.items()},
                      coords=all_coords)


def numeric_codes(values: np.ndarray) -> np.ndarray:
    """Feature values as floats; text labels (``"cats"``, ``"dogs"``) as the integer codes of
    their sorted values, so that they enter as categories."""
    if values.dtype.kind in "OUS":
        return np.unique(values.astype(str), return_inverse=True)[1].astype(float).ravel()
    return values.astype(float)


def feature_design(fvals: np.ndarray, names: list[str], categorical: bool | None
            ) -> tuple[np.ndarray, list[list[int]], list[str]]:
    """Design columns and their groups: a categorical feature becomes indicators of all but
    its first value. ``None``: categorical when its values are integers with > 2 levels."""
    cols, groups, cat = [], [], []
    for j, name in enumerate(names):
        v = fvals[:, j]
        levels = np.unique(v)
        is_cat = categorical if categorical is not None else (
            levels.size > 2 and np.all(levels == np.round(levels)))
        block = (v[:, None] == levels[None, 1:]).astype(float) if is_cat and levels.size > 2 \
            else v[:, None]
        groups.append(list(range(len(cols), len(cols) + block.shape[1])))
        cols.extend(block.T)
        if is_cat:
            cat.append(name)
    return np.stack(cols, axis=1), groups, cat
