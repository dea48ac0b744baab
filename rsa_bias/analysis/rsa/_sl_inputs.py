"""Checking and preparing the inputs of the searchlight functions (data, noise, models)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rsa_bias._values import check_count, check_flag, numeric_values, safe_scale
from rsa_bias.analysis._inputs import choose
from rsa_bias.analysis._rdm_vectors import PAIR_DIM, RdmStack, as_stack, common_ids, select_pairs
from rsa_bias.analysis.rsa._sl_kernels import NOISY, SearchlightState
from rsa_bias.analysis.rsa._spheres import SearchlightSpheres
from rsa_bias.analysis.rsa.crossnobis import _COVARIANCES, N_ROWS, RUN_WEIGHTS
from rsa_bias.analysis.rsa.rdms import _METHODS, _as_patterns, _checked_values


def checked_spheres(spheres) -> SearchlightSpheres:
    if not isinstance(spheres, SearchlightSpheres):
        raise TypeError(f"spheres must be the output of searchlight_spheres(mask, affine, "
                        f"radius_mm=...); got {type(spheres).__name__}")
    if len(spheres) == 0:
        raise ValueError("spheres has no centres (every sphere had fewer than min_voxels "
                         "voxels); lower min_voxels or raise radius_mm")
    return spheres


def _check_voxels(patterns: xr.DataArray, spheres: SearchlightSpheres) -> None:
    channel = patterns.dims[2]
    if patterns.sizes[channel] != spheres.n_voxels:
        raise ValueError(f"data has {patterns.sizes[channel]} voxels ({channel!r}) but the "
                         f"mask of spheres has {spheres.n_voxels}; pass the patterns of that "
                         "mask's voxels, in np.argwhere(mask) order")
    carried = [c for n, c in enumerate(("i", "j", "k"))
               if c in patterns.coords and patterns[c].dims == (channel,)]
    for c in carried:
        col = ("i", "j", "k").index(c)
        off = np.flatnonzero(patterns[c].values != spheres.ijk[:, col])
        if off.size:
            raise ValueError(f"data's voxel coord {c!r} differs from the mask's at {off.size} "
                             f"voxels (first: voxel {off[0]}); the data come from another "
                             "mask or voxel order")


def _residuals(residuals, n_voxels: int, channel: str) -> np.ndarray:
    if isinstance(residuals, xr.DataArray):
        if channel in residuals.dims:
            residuals = residuals.transpose(..., channel)
        residuals = residuals.values
    r = numeric_values(residuals, "residuals", finite=False, empty_ok=True)
    if r.ndim < 2 or r.shape[-1] != n_voxels:
        raise ValueError(f"residuals have shape {r.shape}; expected (..., {n_voxels} voxels) "
                         "with the voxels last")
    r = r.reshape(-1, n_voxels)
    padding = np.isnan(r).all(axis=1)  # rows of NaN: runs of different lengths, padded
    r = r[~padding]
    if not np.all(np.isfinite(r)):
        raise ValueError("residuals contain NaN/inf (other than whole NaN rows of padding)")
    if r.shape[0] < 2:
        raise ValueError(f"residuals have {r.shape[0]} rows; a noise estimate needs >= 2")
    r = r - r.mean(axis=0, keepdims=True)
    constant = ~np.any(r != 0, axis=0)
    if constant.any():
        raise ValueError(f"{int(constant.sum())} voxels have constant residuals (no noise "
                         "variance, so no precision); drop them from the mask")
    return r


def _noise(state: SearchlightState, method: str, noise, residuals, noise_method: str,
           dof, channel: str) -> None:
    choose(_COVARIANCES, noise_method, "noise method")
    if noise is not None and residuals is not None:
        raise ValueError("pass either noise=<diagonal precision per voxel> or residuals= "
                         "(a precision estimated in each sphere), not both")
    if (noise is not None or residuals is not None) and method not in NOISY:
        raise ValueError(f"noise and residuals are used only by methods {list(NOISY)}, "
                         f"not {method!r}")
    if method == "mahalanobis" and noise is None and residuals is None:
        raise ValueError("method='mahalanobis' needs residuals=<GLM residuals (time, voxel)> "
                         "or noise=<diagonal precision per voxel>; without noise use "
                         "'sqeuclidean'")
    v = state.spheres.n_voxels
    if noise is not None:
        prec = numeric_values(noise.values if isinstance(noise, xr.DataArray) else noise,
                              "noise")
        if prec.shape != (v,):
            raise ValueError(f"noise has shape {prec.shape}; expected the diagonal precision "
                             f"of each voxel, shape ({v},) (for a full precision per sphere "
                             "pass residuals=)")
        if np.any(prec <= 0):
            raise ValueError("noise (a diagonal precision) must be positive")
        state.noise_diag = prec
        return
    if residuals is None:
        return
    r = _residuals(residuals, v, channel)
    largest = int(state.spheres.sizes.max())
    if noise_method == "full" and r.shape[0] - 1 < largest:
        raise ValueError(f"noise_method='full' needs more residuals than voxels per sphere "
                         f"({r.shape[0]} residuals, spheres of up to {largest} voxels: the "
                         "covariance is singular); use noise_method='shrinkage_diag'")
    state.dof = r.shape[0] - 1 if dof is None else check_count(dof, "dof")
    if noise_method == "diag":  # diagonal in every sphere: one precision per voxel
        state.noise_diag = state.dof / np.einsum("ij,ij->j", r, r)
    else:
        state.residuals, state.noise_method = np.ascontiguousarray(r.T), noise_method


def prepare(data, spheres, *, method: str, runs, noise, residuals, noise_method: str,
            dof, remove_mean: bool, run_weights: str) -> tuple[SearchlightState, xr.DataArray,
                                                                int]:
    """The state of a searchlight, the patterns (run, stimulus, voxel) and the log2 scale."""
    spheres = checked_spheres(spheres)
    choose(_METHODS, method, "RDM method")
    check_flag(remove_mean, "remove_mean")
    rows_weighted = choose(RUN_WEIGHTS, run_weights, "run_weights option")
    patterns = _as_patterns(data, runs)
    _check_voxels(patterns, spheres)
    values = _checked_values(patterns, np.float64)
    scale = safe_scale(values)
    if scale != 1:
        values = values / scale
    counts = None
    if rows_weighted and N_ROWS in patterns.coords:
        counts = np.asarray(patterns[N_ROWS].transpose("run", "stimulus").values, float)
    state = SearchlightState(spheres=spheres, method=method, patterns=values,
                             remove_mean=remove_mean)
    if method == "crossnobis":
        r = values.shape[0]
        if r < 2:
            raise ValueError("crossnobis needs patterns from at least 2 runs (found 1); pass "
                             "data with a 'run' dim or runs=<run label of each row>")
        if counts is None:
            train, state.folds = values.sum(axis=0)[None] - values, r * (r - 1)
        else:
            sums = values * counts[:, :, None]
            train = sums.sum(axis=0)[None] - sums
            train /= (counts.sum(axis=0)[None] - counts)[:, :, None]
            state.folds = r
        state.patterns = np.ascontiguousarray(values.transpose(2, 0, 1))
        state.train = np.ascontiguousarray(train.transpose(2, 0, 1))
    elif counts is None:
        state.patterns = np.ascontiguousarray(values.mean(axis=0).T)
    else:
        mean = np.einsum("rs,rsp->sp", counts, values) / counts.sum(axis=0)[:, None]
        state.patterns = np.ascontiguousarray(mean.T)
    _noise(state, method, noise, residuals, noise_method, dof, str(patterns.dims[2]))
    return state, patterns, int(round(np.log2(scale)))


def aligned_models(models, patterns: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Model vectors over the data's stimuli (in the data's order) and the model labels."""
    stack = as_stack(models, "models")
    if np.isinf(stack.vectors).any():
        raise ValueError("models contain inf dissimilarities; an RDM holds finite distances "
                         "(NaN marks a missing one)")
    if len(stack.dims) > 1:
        raise ValueError(f"models have leading dims {stack.dims}; expected one (e.g. 'model') "
                         "or a single RDM; stack the others into it first")
    ids = patterns["stimulus"].values
    n = ids.size
    data = RdmStack(np.empty((1, n * (n - 1) // 2)), ids)
    common_ids(stack, data, ("models", "data"), "exact", "searchlight RSA")  # refuses others
    vectors = select_pairs(stack.vectors, stack.ids, ids)
    if stack.dims:
        dim = stack.dims[0]
        labels = stack.coords[dim].values if dim in stack.coords else np.arange(stack.shape[0])
    else:
        name = getattr(models, "name", None)
        labels = np.array([name if isinstance(name, str) else "model"])
    return vectors, labels


def pair_coords(ids: np.ndarray) -> dict:
    i, j = np.triu_indices(ids.size, 1)
    return {"stimulus_i": (PAIR_DIM, ids[i]), "stimulus_j": (PAIR_DIM, ids[j])}


def centre_coords(spheres: SearchlightSpheres) -> dict:
    ijk = spheres.ijk[spheres.centres]
    return {"centre": np.arange(len(spheres)), "voxel": ("centre", spheres.centres),
            "i": ("centre", ijk[:, 0]), "j": ("centre", ijk[:, 1]), "k": ("centre", ijk[:, 2]),
            "n_voxels": ("centre", spheres.sizes)}


def geometry_attrs(spheres: SearchlightSpheres) -> dict:
    return {"radius_mm": spheres.radius_mm, "min_voxels": spheres.min_voxels,
            "mask_shape": list(spheres.mask_shape),
            "affine": [float(a) for a in spheres.affine.ravel()],
            "n_mask_voxels": spheres.n_voxels}


def check_chunks(chunk_size, n_workers) -> tuple[int, int | None]:
    size = check_count(chunk_size, "chunk_size")
    return size, None if n_workers is None else check_count(n_workers, "n_workers")

