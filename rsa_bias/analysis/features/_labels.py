"""Shared helpers: read features and splits off labelled activations, with clear errors."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._features import feature_names
from rsa_bias.analysis._inputs import check_id_kinds
from rsa_bias.analysis._values import numeric_values


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
    out.attrs = {**activation.attrs, "feature_names": feature_names(stimuli.attrs)}
    return out


def feature_names_of(activation: xr.DataArray, features: Sequence[str] | None) -> list[str]:
    """Names of the features to analyse; checks each ``feature_<name>`` coord exists."""
    available = [str(c)[len("feature_"):] for c in activation.coords
                 if str(c).startswith("feature_")]
    listed = feature_names(activation.attrs)
    names = list(features) if features is not None else (listed or available)
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
                        coords: dict[str, Sequence]) -> xr.Dataset:
    """Apply ``fn(phi (stimulus, unit) float64) -> dict`` over every extra dim.

    ``trailing[name]`` names the dims of ``fn``'s output ``name`` (after the extra
    dims); ``coords`` labels those trailing dims.
    """
    extra = [d for d in activation.dims if d not in ("stimulus", "unit")]
    values = activation.transpose(*extra, "stimulus", "unit").values
    shape = [activation.sizes[d] for d in extra]
    outs: dict[str, np.ndarray] = {}
    for idx in itertools.product(*(range(s) for s in shape)):
        phi = numeric_values(values[idx], "activation")
        for k, v in fn(phi).items():
            if k not in outs:
                outs[k] = np.empty(shape + list(np.shape(v)))
            outs[k][idx] = v
    all_coords = {d: activation[d].values for d in extra if d in activation.coords}
    all_coords.update(coords)
    return xr.Dataset({k: ((*extra, *trailing[k]), v) for k, v in outs.items()},
                      coords=all_coords)
