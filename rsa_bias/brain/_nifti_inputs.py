"""Input checks of :func:`rsa_bias.brain.nifti.patterns_from_nifti`: images, masks, events,
confounds, TR and signal scaling, each refused with an error that says what to fix."""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EVENT_COLUMNS = ("onset", "duration", "trial_type")
_TOL_S = 1e-6  # seconds of slack when checking that events end inside the run
_TR_RTOL = 0.01  # relative difference between t_r and a header's TR that earns a warning
_TIME_UNITS_S = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6, "unknown": 1.0}
UNITS = {  # signal_scaling -> units of the betas (see nilearn.glm.first_level.mean_scaling)
    "0": "percent signal change",  # of each voxel's own mean over the run
    "(0, 1)": "percent of the run's grand mean",  # one mean over all mask voxels and volumes
    "False": "image units",
}


# --------------------------------------------------------------------------- inputs

def _load_img(img: Any, what: str) -> Any:
    import nibabel as nib

    if isinstance(img, str | os.PathLike):
        path = Path(img).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{what}: {path} does not exist")
        try:
            return nib.load(path)
        except Exception as err:  # nibabel raises several types for unreadable files
            raise ValueError(f"{what}: {path} could not be read as a NIfTI image ({err})"
                             ) from err
    if isinstance(img, nib.spatialimages.SpatialImage):
        return img
    raise TypeError(f"{what} must be a file path or a nibabel image, not {type(img).__name__}")


def _as_list(x: Any) -> list[Any]:
    if isinstance(x, str | os.PathLike | pd.DataFrame) or not isinstance(x, Sequence):
        return [x]
    return list(x)


def _bold(img: Any, run: int) -> Any:
    bold = _load_img(img, f"run {run} BOLD image")
    if len(bold.shape) != 4:
        raise ValueError(f"run {run}: the BOLD image has shape {bold.shape} ({len(bold.shape)}D); "
                         "a run needs a 4D image (x, y, z, time) — pass the time series, not a "
                         "single volume or a mean image")
    return bold


def _header_tr(bold: Any) -> float | None:
    """The TR (s) in a 4D image's header, or None where the header records none."""
    header = bold.header
    try:
        zoom = float(header.get_zooms()[3])
        unit = header.get_xyzt_units()[1] if hasattr(header, "get_xyzt_units") else "unknown"
    except (IndexError, TypeError, ValueError):
        return None
    if unit not in _TIME_UNITS_S or zoom <= 0 or (unit == "unknown" and zoom == 1.0):
        return None  # pixdim[4] = 1 without a time unit is nibabel's placeholder, not a TR
    return zoom * _TIME_UNITS_S[unit]


def _check_tr(bolds: list[Any], t_r: float) -> None:
    off = {r: tr for r, bold in enumerate(bolds, start=1)
           if (tr := _header_tr(bold)) is not None and abs(tr - t_r) > _TR_RTOL * t_r}
    if off:
        run, tr = next(iter(off.items()))
        warnings.warn(f"t_r={t_r} s differs from the TR in the image header of {len(off)} "
                      f"run(s) (run {run}: {tr:g} s); the model uses t_r — check which one is "
                      "right (a wrong t_r misplaces every regressor)", UserWarning, stacklevel=3)


def _scaling(signal_scaling: Any) -> int | bool | tuple[int, int]:
    """``signal_scaling`` as nilearn takes it, if it is one of the supported settings."""
    if signal_scaling is False:
        return False
    if (isinstance(signal_scaling, numbers.Integral) and not isinstance(signal_scaling, bool)
            and signal_scaling == 0):
        return 0
    if (isinstance(signal_scaling, tuple | list) and len(signal_scaling) == 2
            and not any(isinstance(a, bool) for a in signal_scaling)
            and tuple(signal_scaling) == (0, 1)):
        return (0, 1)
    raise ValueError(f"signal_scaling={signal_scaling!r} is not supported; use 0 (each voxel "
                     "divided by its mean over the run: percent signal change, the default), "
                     "(0, 1) (divided by the run's grand mean over voxels and volumes) or "
                     "False (the image's own units)")


def _binary_mask(mask_img: Any, bold: Any) -> np.ndarray:
    mask = _load_img(mask_img, "mask_img")
    data = np.asanyarray(mask.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.shape != bold.shape[:3]:
        raise ValueError(f"mask_img has shape {data.shape} but the BOLD grid is "
                         f"{bold.shape[:3]}; resample the mask to the BOLD images first "
                         "(nilearn.image.resample_to_img(mask, bold, interpolation='nearest'))")
    if not np.allclose(mask.affine, bold.affine, atol=1e-3):
        raise ValueError("mask_img and the BOLD images have different affines (same shape, "
                         "different position in space); resample the mask to the BOLD images")
    keep = np.asarray(data != 0) & np.isfinite(data)
    if not keep.any():
        raise ValueError("mask_img has no non-zero voxel")
    return keep


def _events(events: Any, run: int, n_volumes: int, t_r: float) -> pd.DataFrame:
    if isinstance(events, str | os.PathLike):
        path = Path(events).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"run {run} events: {path} does not exist")
        events = pd.read_csv(path, sep="," if path.suffix == ".csv" else "\t")
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"run {run} events must be a DataFrame or a TSV path, not "
                        f"{type(events).__name__}")
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"run {run} events lack the column(s) {missing} (they have "
                         f"{list(events.columns)}); BIDS events need onset, duration and "
                         "trial_type")
    if events["trial_type"].isna().any():
        raise ValueError(f"run {run} events have empty trial_type in rows "
                         f"{np.flatnonzero(events['trial_type'].isna())[:5].tolist()}")
    end = events["onset"].to_numpy(float) + events["duration"].to_numpy(float)
    run_end = n_volumes * t_r
    late = np.flatnonzero(end > run_end + _TOL_S)
    if late.size:
        raise ValueError(f"run {run}: {late.size} event(s) end after the run "
                         f"({n_volumes} volumes x t_r {t_r} s = {run_end} s), e.g. row "
                         f"{late[0]} ends at {end[late[0]]} s; are the events, t_r or the run "
                         "order misaligned?")
    out = events.copy()
    out["trial_type"] = out["trial_type"].astype(str)
    return out


def _confounds(conf: Any, run: int, n_volumes: int) -> pd.DataFrame | None:
    if conf is None:
        return None
    if isinstance(conf, str | os.PathLike):
        path = Path(conf).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"run {run} confounds: {path} does not exist")
        if path.suffix in (".tsv", ".csv"):
            conf = pd.read_csv(path, sep="," if path.suffix == ".csv" else "\t")
        else:
            conf = np.loadtxt(path, ndmin=2)
    if not isinstance(conf, pd.DataFrame):
        arr = np.asarray(conf, dtype=float)
        arr = arr[:, None] if arr.ndim == 1 else arr
        conf = pd.DataFrame(arr, columns=[f"confound_{c}" for c in range(arr.shape[1])])
    if len(conf) != n_volumes:
        raise ValueError(f"run {run}: confounds have {len(conf)} rows but the run has "
                         f"{n_volumes} volumes; one confound row per volume is needed")
    if conf.isna().to_numpy().any():
        rows = np.flatnonzero(conf.isna().to_numpy().any(axis=1))
        raise ValueError(f"run {run}: confounds contain NaN in rows {rows[:5].tolist()}; fill "
                         "them (e.g. with 0 for fMRIPrep's first-row derivatives)")
    return conf.reset_index(drop=True)


def _conditions(events: list[pd.DataFrame], conditions: Sequence[str] | None) -> list[str]:
    present = [set(ev["trial_type"]) for ev in events]
    wanted = sorted(set().union(*present)) if conditions is None else [str(c) for c in
                                                                        conditions]
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"conditions repeat: {wanted}")
    for run, have in enumerate(present, start=1):
        lost = [c for c in wanted if c not in have]
        if lost:
            raise ValueError(f"condition(s) {lost} are missing from run {run}'s events (it has "
                             f"{sorted(have)}); every condition needs a beta in every run — "
                             "drop that run or pass conditions=[...] without them")
    return wanted


# --------------------------------------------------------------------------- GLM
