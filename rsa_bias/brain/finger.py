"""Multi-run fMRI finger patterns from the PCM toolbox (Ejaz et al. 2015; Diedrichsen 2013).

Files (``data/pcm_finger_fmri/``, provenance and licence (MIT) in ``data/README.md``
section 2):

* ``data_recipe_finger7T.mat`` — 7 participants, 7T fMRI of single finger presses (M1
  patterns); 5 fingers x 7 or 8 runs; the model RDMs / second moments ``Muscle``,
  ``Naturalstats`` and ``somatotopy``;
* ``data_recipe_correlation.mat`` — 12 hemispheres; 5 contralateral + 5 ipsilateral finger
  conditions x 8 runs.

Participants differ in their voxels (and in their number of runs), so their patterns cannot
share one array. :func:`load_finger` returns an ``xr.DataTree``: one child group per
participant holding ``response(run, stimulus, voxel)``; the root holds what they share (the
condition labels and the model RDMs). The patterns are the files' regression estimates,
unchanged; whether they were prewhitened is not recorded (data/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias.brain._paths import dataset_file
from rsa_bias.brain.rsa92 import _loadmat, _text

FOLDER = "pcm_finger_fmri"
FINGERS = ("thumb", "index", "middle", "ring", "little")
FILES = {"finger7T": ("data_recipe_finger7T.mat", "Y"),
         "correlation": ("data_recipe_correlation.mat", "Data")}
RDM_DIMS = ("stimulus_i", "stimulus_j")


def _conditions(dataset: str) -> tuple[list[str], dict[str, Any]]:
    if dataset == "finger7T":
        return list(FINGERS), {"finger": ("stimulus", list(FINGERS)),
                               "digit": ("stimulus", np.arange(1, 6))}
    names = [f"{hand}_{f}" for hand in ("contra", "ipsi") for f in FINGERS]
    return names, {"hand": ("stimulus", ["contra"] * 5 + ["ipsi"] * 5),
                   "finger": ("stimulus", list(FINGERS) * 2),
                   "digit": ("stimulus", np.tile(np.arange(1, 6), 2))}


def _patterns(y: Any, cond: Any, part: Any, names: list[str], where: str) -> xr.Dataset:
    """Rows ``(n_obs, n_vox)`` labelled by condition and run -> ``(run, stimulus, voxel)``."""
    y = np.asarray(y, dtype=np.float64)
    cond, part = np.asarray(cond).ravel().astype(int), np.asarray(part).ravel().astype(int)
    if y.ndim != 2 or not (y.shape[0] == cond.size == part.size):
        raise ValueError(f"{where}: patterns {y.shape}, {cond.size} condition and {part.size} "
                         "run labels; expected one label of each per row")
    if cond.min() < 1 or cond.max() > len(names):
        raise ValueError(f"{where}: condition codes {sorted(set(cond))}; expected 1..{len(names)}")
    runs = np.unique(part)
    out = np.full((runs.size, len(names), y.shape[1]), np.nan)
    count = np.zeros((runs.size, len(names)), dtype=int)
    r_idx = np.searchsorted(runs, part)
    out[r_idx, cond - 1] = y
    np.add.at(count, (r_idx, cond - 1), 1)
    if np.any(count != 1):
        r, c = np.argwhere(count != 1)[0]
        raise ValueError(f"{where}: run {runs[r]} has {count[r, c]} rows of condition "
                         f"{names[c]!r}; expected exactly one per run and condition")
    return xr.Dataset({"response": (("run", "stimulus", "voxel"), out)},
                      coords={"run": runs, "stimulus": names, "voxel": np.arange(y.shape[1])})


def _models(mat: dict[str, Any], file: Path, names: list[str]) -> xr.Dataset:
    models = np.asarray(mat["Model"]).ravel()
    labels = [_text(m["name"]) for m in models]
    rdms, gs = [], []
    for m, label in zip(models, labels, strict=True):
        rdm, g = np.asarray(m["RDM"], dtype=float), np.asarray(m["G_cent"], dtype=float)
        if rdm.shape != (len(names),) * 2 or g.shape != rdm.shape:
            raise ValueError(f"{file}: model {label!r} has RDM {rdm.shape} / G_cent {g.shape}; "
                             f"expected ({len(names)}, {len(names)})")
        rdms.append(rdm)
        gs.append(g)
    coords = {"model": labels, "stimulus_i": names, "stimulus_j": names}
    ds = xr.Dataset({"model_rdm": (("model", *RDM_DIMS), np.stack(rdms)),
                     "model_g": (("model", *RDM_DIMS), np.stack(gs))}, coords=coords)
    ds["model_rdm"].attrs["description"] = "model RDMs of the PCM toolbox (Ejaz et al. 2015)"
    ds["model_g"].attrs["description"] = "centred second-moment matrices (G_cent)"
    return ds


def load_finger(path: str | os.PathLike[str] | None = None, *,
                dataset: str = "finger7T") -> xr.DataTree:
    """Load per-participant, per-run finger patterns as a DataTree.

    PCM-toolbox finger fMRI (files, provenance and licence (MIT) in the module docstring
    and ``data/README.md`` section 2). Participants differ in their voxels (and in their
    number of runs), so each gets its own group. The patterns are the files' regression
    estimates, unchanged; whether they were prewhitened is not recorded (data/README.md).

    Parameters
    ----------
    path : str or os.PathLike, optional
        Folder holding the ``.mat`` files; default ``<data>/pcm_finger_fmri``
        (``<data>`` = the repository's ``data/`` or ``$RSA_BIAS_DATA``).
    dataset : str, default "finger7T"
        ``"finger7T"`` (Ejaz et al. 2015: 7 participants, 5 fingers, with model RDMs) or
        ``"correlation"`` (Diedrichsen et al. 2013: 12 hemispheres, 5 contralateral + 5
        ipsilateral fingers).

    Returns
    -------
    xarray.DataTree
        One child group per participant and a root with what they share:

        * children ``s01`` .. ``s07`` (finger7T) or ``h01`` .. ``h12`` (correlation), each with
          ``response(run, stimulus, voxel)`` — runs as numbered in the file (1..7 or 1..8),
          voxels ``0..n-1`` (their number differs between participants);
        * root: coords ``stimulus`` = ``thumb, index, middle, ring, little`` (finger7T) or
          ``contra_thumb`` .. ``ipsi_little`` (correlation) with ``finger``, ``digit`` (1..5)
          and, for correlation, ``hand``; for finger7T also ``model_rdm(model, stimulus_i,
          stimulus_j)`` and ``model_g(model, stimulus_i, stimulus_j)`` (centred second moment)
          for the models ``Muscle``, ``Naturalstats``, ``somatotopy``.

        Each child carries the condition labels (the ``stimulus`` index is shared with the root),
        so ``rdm(tree["s01"].response, method="crossnobis")`` is labelled by finger and compares
        directly with ``tree.model_rdm`` in :func:`~rsa_bias.analysis.compare_rdms`.

    Raises
    ------
    ValueError
        For an unknown ``dataset`` or a damaged / foreign file.
    FileNotFoundError
        Naming a missing file.
    """
    if dataset not in FILES:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {sorted(FILES)}")
    name, key = FILES[dataset]
    file = dataset_file(FOLDER, name, path)
    mat = _loadmat(file, (key, "condVec", "partVec") + (("Model",) if dataset == "finger7T"
                                                        else ()))
    names, extra = _conditions(dataset)
    ys, conds, parts = (np.asarray(mat[k]).ravel() for k in (key, "condVec", "partVec"))
    if not (ys.size == conds.size == parts.size):
        raise ValueError(f"{file}: {key}, condVec and partVec hold {ys.size}, {conds.size}, "
                         f"{parts.size} entries; expected one per participant")
    prefix = "s" if dataset == "finger7T" else "h"
    children = {}
    for p, (y, c, r) in enumerate(zip(ys, conds, parts, strict=True), start=1):
        child = _patterns(y, c, r, names, f"{file} participant {p}").assign_coords(extra)
        child.attrs.update(participant=f"{prefix}{p:02d}", n_runs=int(child.sizes["run"]))
        children[f"{prefix}{p:02d}"] = child
    root = (_models(mat, file, names) if dataset == "finger7T" else xr.Dataset())
    root = root.assign_coords(stimulus=names, **extra)
    root.attrs.update(
        dataset=f"{FOLDER}/{name}", path=str(file.parent), licence="MIT (pcm_toolbox)",
        source="jdiedrichsen/pcm_toolbox @ 4c72c0b8 (see data/README.md section 2)",
        reference=("Ejaz, Hamada & Diedrichsen 2015, Nat Neurosci 18:1034" if dataset ==
                   "finger7T" else "Diedrichsen, Wiestler & Krakauer 2013, Cereb Cortex "
                   "23:1362"),
        units="regression estimates as stored in the file",
    )
    return xr.DataTree.from_dict({"/": root, **children})
