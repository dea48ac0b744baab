"""Haxby et al. (2001) subject 1, one axial slice, 12 runs: per-run category patterns.

Files (``data/haxby2001_pymvpa/``, provenance and licence (CC BY-SA 3.0) in
``data/README.md`` section 4): ``mask.nii.gz`` (40 x 20 x 1 grid, 530 voxels) and, for each
run ``NNN = 001..012``, ``haxby2001/sub001/BOLD/task001_runNNN/`` with ``bold_1slice.nii.gz``
(121 volumes, TR 2.5 s), ``bold_events.tsv`` (8 blocks of 22.5 s, one per category) and
``bold_moest.txt`` (6 motion estimates per volume, used as confounds).

:func:`load_haxby` runs :func:`~rsa_bias.brain.nifti.patterns_from_nifti` on them: one
nilearn GLM per run (Glover HRF, cosine drift with a 128 s cut-off, motion confounds,
AR(1) noise, percent-signal-change scaling). It takes about 1.5 s on one CPU core; the
result is kept in memory for the rest of the session (``cache=True``), never on disk.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias.brain._paths import data_dir, dataset_file
from rsa_bias.brain.nifti import patterns_from_nifti

FOLDER = "haxby2001_pymvpa"
#: the fixed category order of :func:`load_haxby` (faces first, scrambled pictures last)
CATEGORIES = ("face", "house", "cat", "shoe", "bottle", "scissors", "chair", "scrambledpix")
N_RUNS = 12
T_R = 2.5
SUPERORDINATE = {"face": "face", "house": "place", "cat": "animal", "shoe": "object",
                 "bottle": "object", "scissors": "object", "chair": "object",
                 "scrambledpix": "scrambled"}
FLAGS = {
    "animate": ("face", "cat"),
    "face": ("face",),
    "scrambled": ("scrambledpix",),
    "manmade": ("house", "shoe", "bottle", "scissors", "chair"),
}
#: category-model RDMs: 1 where the two categories differ in the flag, else 0
MODELS = {"face_vs_rest": "face", "animate_vs_inanimate": "animate",
          "scrambled_vs_objects": "scrambled", "superordinate": "superordinate"}
MOTION = tuple(f"motion_{c}" for c in range(6))


def _run_files(r: int, path: str | os.PathLike[str] | None) -> tuple[Path, Path, Path]:
    run = f"haxby2001/sub001/BOLD/task001_run{r:03d}"
    return tuple(dataset_file(FOLDER, f"{run}/{name}", path)  # type: ignore[return-value]
                 for name in ("bold_1slice.nii.gz", "bold_events.tsv", "bold_moest.txt"))


def _motion(file: Path) -> pd.DataFrame:
    arr = np.loadtxt(file, ndmin=2)
    if arr.shape[1] != len(MOTION):
        raise ValueError(f"{file} has {arr.shape[1]} columns; expected 6 motion estimates")
    return pd.DataFrame(arr, columns=list(MOTION))


def _category_coords(ds: xr.Dataset) -> xr.Dataset:
    names = list(ds["stimulus"].values)
    coords = {"category": ("stimulus", np.array(names)),
              "superordinate": ("stimulus", np.array([SUPERORDINATE[c] for c in names]))}
    for flag, members in FLAGS.items():
        coords[flag] = ("stimulus", np.array([c in members for c in names]))
    return ds.drop_vars("condition").assign_coords(coords)


def _model_rdms(ds: xr.Dataset) -> xr.DataArray:
    ids = ds["stimulus"].values
    rdms = []
    for flag in MODELS.values():
        v = ds[flag].values
        rdms.append((v[:, None] != v[None, :]).astype(np.float64))
    return xr.DataArray(np.stack(rdms), dims=("model", "stimulus_i", "stimulus_j"),
                        coords={"model": list(MODELS), "stimulus_i": ids, "stimulus_j": ids})


def _load(path: str | os.PathLike[str] | None, residuals: bool, progress: bool) -> xr.Dataset:
    files = [_run_files(r, path) for r in range(1, N_RUNS + 1)]
    mask = dataset_file(FOLDER, "mask.nii.gz", path)
    start = time.perf_counter()
    ds = patterns_from_nifti([f[0] for f in files], [f[1] for f in files], mask_img=mask,
                             t_r=T_R, confounds=[_motion(f[2]) for f in files],
                             conditions=CATEGORIES, residuals=residuals, progress=progress)
    elapsed = time.perf_counter() - start
    ds = _category_coords(ds)
    ds["model_rdm"] = _model_rdms(ds)
    ds["model_rdm"].attrs.update(
        description="1 where the two categories differ in the flag named by the model "
                    "(superordinate: face / place / animal / object / scrambled), else 0")
    ds.attrs.update(
        dataset=FOLDER, subject="sub001", glm_seconds=round(elapsed, 3), path=str(mask.parent),
        source="PyMVPA/PyMVPA mvpa2/data @ 20f0335f (see data/README.md section 4)",
        reference="Haxby et al. 2001, Science 293:2425-2430; Hanke et al. 2009, Front "
                  "Neuroinform 3:3 (PyMVPA)",
        licence="CC BY-SA 3.0 (http://creativecommons.org/licenses/by-sa/3.0/)",
    )
    return ds


@functools.lru_cache(maxsize=4)
def _load_cached(root: str, residuals: bool) -> xr.Dataset:
    return _load(root, residuals, progress=False)


def load_haxby(path: str | os.PathLike[str] | None = None, *, residuals: bool = True,
               progress: bool = False, cache: bool = True) -> xr.Dataset:
    """Load per-run GLM patterns of the 8 object categories of Haxby 2001's subject 1.

    Haxby et al. (2001) subject 1, one axial slice, 12 runs (files and provenance in the
    module docstring and ``data/README.md`` section 4), through
    :func:`~rsa_bias.brain.nifti.patterns_from_nifti`: one nilearn GLM per run (Glover HRF,
    cosine drift with a 128 s cut-off, the 6 motion estimates as confounds, AR(1) noise,
    percent-signal-change scaling), about 1.5 s on one CPU core.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The ``haxby2001_pymvpa`` folder; default ``<data>/haxby2001_pymvpa``
        (``<data>`` = the repository's ``data/`` or ``$RSA_BIAS_DATA``).
    residuals : bool, default True
        Include the GLM residuals (for a crossnobis noise precision).
    progress : bool, default False
        Show a progress bar over the 12 runs. It only has an effect when the GLMs are
        fitted: with ``cache=True`` the first call for a folder fits them without a bar,
        and later calls return the cached result at once.
    cache : bool, default True
        Reuse the GLMs fitted earlier in this Python session for the same folder and
        ``residuals`` (a copy is returned, so changing it does not change the cache). The
        cache is kept in memory, never on disk, and is keyed on the folder's path only: it
        does not notice files changed on disk during the session; pass ``cache=False`` to
        refit after changing them.

    Returns
    -------
    xarray.Dataset with dims ("run", "stimulus", "voxel", ...)
        See :func:`~rsa_bias.brain.nifti.patterns_from_nifti` for the layout:

        * ``response(run, stimulus, voxel)`` — effect sizes (percent signal change), runs
          ``1..12``, ``stimulus`` = the categories in the order of :data:`CATEGORIES`: face,
          house, cat, shoe, bottle, scissors, chair, scrambledpix; 530 voxels;
        * ``residual(run, time, voxel)`` (121 volumes) and ``residual_dof(run)`` (if
          ``residuals``);
        * ``model_rdm(model, stimulus_i, stimulus_j)`` — 0/1 category models
          ``face_vs_rest``, ``animate_vs_inanimate`` (face, cat vs the rest),
          ``scrambled_vs_objects`` and ``superordinate``;
        * ``mean_bold(grid_i, grid_j, grid_k)``, voxel coords ``i``, ``j``, ``k``;
        * stimulus coords ``category``, ``superordinate`` (face / place / animal / object /
          scrambled) and the flags ``animate``, ``face``, ``scrambled``, ``manmade``.

    Raises
    ------
    FileNotFoundError
        Naming a missing file.
    ValueError
        For a damaged or inconsistent one.
    """
    if path is None and cache:
        path = data_dir() / FOLDER
    if not cache:
        return _load(path, residuals, progress)
    return _load_cached(str(Path(path).expanduser().resolve()), residuals).copy(deep=True)
