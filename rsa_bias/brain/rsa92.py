"""The "92 images" RSA dataset (Kriegeskorte et al. 2008, Neuron 60:1126) as one ``xr.Dataset``.

Files (``data/rsa92_kriegeskorte2008/``, provenance in ``data/README.md`` section 1):

* ``Kriegeskorte_Neuron2008_supplementalData.mat`` — the 92 images, categories, and the
  group monkey-IT / human-IT RDMs of the paper's figure 1 (condensed vectors);
* ``92_brainRDMs.mat`` — human-IT RDMs, 4 subjects x 2 sessions;
* ``92_behavRDMs.mat`` — 16 similarity-judgement RDMs (Mur et al. 2013);
* ``92_modelRDMs.mat`` — 8 model RDMs (animacy, face/body/..., monkeyIT, EVA, HMAX, ...).

All RDMs are ``1 - Pearson r`` (brain) or model dissimilarities, in the canonical stimulus
order of the files; stimulus ids are ``1..92`` (the image numbers of the paper).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
import xarray as xr
from scipy.spatial.distance import squareform

from rsa_bias.brain._paths import dataset_file

FOLDER = "rsa92_kriegeskorte2008"
N_STIMULI = 92
SUBJECTS = ("BE", "KO", "SN", "TI")
SESSIONS = (1, 2)
RDM_DIMS = ("stimulus_i", "stimulus_j")


def _loadmat(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for damaged files
        raise ValueError(f"{path} could not be read as a MATLAB file ({err}); the file is "
                         "corrupt or not the shipped one (checksums in data/README.md)") from err
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} lacks the variable(s) {missing} (it holds {found}); "
                         "not the shipped file (checksums in data/README.md)")
    return mat


def _square(rdm: Any, path: Path, what: str) -> np.ndarray:
    arr = np.asarray(rdm, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim == 1:
        if arr.size != N_STIMULI * (N_STIMULI - 1) // 2:
            raise ValueError(f"{path}: {what} has {arr.size} entries; expected "
                             f"{N_STIMULI * (N_STIMULI - 1) // 2} (condensed 92x92 RDM)")
        arr = squareform(arr, checks=False)
    if arr.shape != (N_STIMULI, N_STIMULI):
        raise ValueError(f"{path}: {what} has shape {arr.shape}; expected (92, 92)")
    return arr


def _text(x: Any) -> str:
    arr = np.asarray(x)
    return str(arr.ravel()[0]) if arr.size else ""


def _structs(mat: dict[str, Any], key: str, path: Path, n: int) -> np.ndarray:
    arr = mat[key]
    if arr.dtype.names is None or arr.size != n:
        raise ValueError(f"{path}: {key!r} should be a struct array with {n} entries; got "
                         f"shape {arr.shape}")
    return arr


def load_rsa92(path: str | os.PathLike[str] | None = None, *, images: bool = True) -> xr.Dataset:
    """Load the 92-image RSA dataset.

    Kriegeskorte et al. (2008): human-IT and monkey-IT RDMs, behavioural and model RDMs of
    the 92 images, with the images and their category labels (files and provenance in the
    module docstring and ``data/README.md`` section 1).

    Parameters
    ----------
    path : str or os.PathLike, optional
        Folder holding the four ``.mat`` files; default ``<data>/rsa92_kriegeskorte2008``
        (``<data>`` = the repository's ``data/`` or ``$RSA_BIAS_DATA``).
    images : bool, default True
        Include the 92 RGB images (``image``, 175x175x3 uint8); ``False`` skips them.

    Returns
    -------
    xarray.Dataset with dims ("stimulus", "stimulus_i", "stimulus_j", ...)
        Stimulus ids ``1..92`` on ``stimulus``, ``stimulus_i`` and ``stimulus_j``:

        * ``human_it(subject, session, stimulus_i, stimulus_j)`` — per-subject, per-session
          human-IT fMRI RDMs (``1 - r``), subjects BE, KO, SN, TI; sessions 1, 2;
        * ``human_it_mean(stimulus_i, stimulus_j)`` — the group RDM of the paper's figure 1
          (``hITvisStim_316vx``; equals the mean of ``human_it``);
        * ``monkey_it(stimulus_i, stimulus_j)`` — monkey IT, 674 neurons (``mIT_674neurons``);
        * ``behaviour(rater, stimulus_i, stimulus_j)`` — 16 similarity-judgement RDMs
          (raters ``subject1`` .. ``subject16``; small values, compare by rank);
        * ``model_rdm(model, stimulus_i, stimulus_j)`` — 8 model RDMs as float64, by name
          (a variable cannot be called ``model`` while ``model`` is its dimension);
        * ``image(stimulus, y, x, channel)`` uint8 (if ``images``).

        Stimulus coords: ``category`` (one of 6 strings), ``animate``, ``human``, ``face``,
        ``animal``, ``natural`` (bool), and ``category_<label>`` (bool) for each of the 12
        columns of ``categoryVectors`` (``animate``, ``inanim``, ``human``, ``nonhumani``,
        ``body``, ``face``, ``natObj``, ``artiObj``, ``rand24``, ``rand48``, ``other48``,
        ``monkeyape``).

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        For a damaged or foreign file.
    """

    def find(name: str) -> Path:
        return dataset_file(FOLDER, name, path)

    supp_path = find("Kriegeskorte_Neuron2008_supplementalData.mat")
    brain_path = find("92_brainRDMs.mat")
    behav_path = find("92_behavRDMs.mat")
    model_path = find("92_modelRDMs.mat")

    supp = _loadmat(supp_path, ("stimuli_92objs", "categoryLabels", "categoryVectors",
                                "RDMs_mIT_hIT_fig1"))
    stim = _structs(supp, "stimuli_92objs", supp_path, N_STIMULI).ravel()
    fig1 = _structs(supp, "RDMs_mIT_hIT_fig1", supp_path, 2).ravel()
    fig1_rdms = {_text(s["name"]): s["RDM"] for s in fig1}
    for name in ("mIT_674neurons", "hITvisStim_316vx"):
        if name not in fig1_rdms:
            raise ValueError(f"{supp_path}: RDMs_mIT_hIT_fig1 has no {name!r} entry "
                             f"(found {sorted(fig1_rdms)})")
    labels = [_text(c) for c in np.asarray(supp["categoryLabels"]).ravel()]
    vectors = np.asarray(supp["categoryVectors"])
    if vectors.shape != (N_STIMULI, len(labels)):
        raise ValueError(f"{supp_path}: categoryVectors has shape {vectors.shape}; expected "
                         f"({N_STIMULI}, {len(labels)}) to match categoryLabels")

    brain = _structs(_loadmat(brain_path, ("RDMs",)), "RDMs", brain_path, 8)
    if brain.shape != (1, len(SUBJECTS), len(SESSIONS)):
        raise ValueError(f"{brain_path}: RDMs has shape {brain.shape}; expected (1, 4, 2)")
    human_it = np.stack([[_square(brain[0, s, r]["RDM"], brain_path, _text(brain[0, s, r]["name"]))
                          for r in range(len(SESSIONS))] for s in range(len(SUBJECTS))])
    for s, subj in enumerate(SUBJECTS):
        name = _text(brain[0, s, 0]["name"])
        if f"| {subj} |" not in name:
            raise ValueError(f"{brain_path}: entry [0, {s}, 0] is {name!r}; expected subject "
                             f"{subj}")

    behav = _structs(_loadmat(behav_path, ("rdms_behav_92",)), "rdms_behav_92", behav_path,
                     16).ravel()
    raters = [_text(b["name"]).split("|")[-1].strip() for b in behav]
    behaviour = np.stack([_square(b["RDM"], behav_path, _text(b["name"])) for b in behav])

    models = _structs(_loadmat(model_path, ("Models",)), "Models", model_path, 8).ravel()
    model_names = [_text(m["name"]) for m in models]
    model_rdms = np.stack([_square(m["RDM"], model_path, n)
                           for m, n in zip(models, model_names, strict=True)])

    ids = np.arange(1, N_STIMULI + 1)
    flags = {}
    for field in ("human", "face", "animal", "natural"):
        flags[field] = ("stimulus", np.array([bool(np.asarray(s[field]).ravel()[0])
                                              for s in stim]))
    category = np.array([_text(s["category"]) for s in stim])
    coords: dict[str, Any] = {
        "stimulus": ids, "stimulus_i": ids, "stimulus_j": ids,
        "subject": list(SUBJECTS), "session": list(SESSIONS),
        "rater": raters, "model": model_names,
        "category": ("stimulus", category),
        "animate": ("stimulus", vectors[:, labels.index("animate")].astype(bool)
                    if "animate" in labels else ids <= 48),
        **flags,
    }
    for k, label in enumerate(labels):
        coords[f"category_{label}"] = ("stimulus", vectors[:, k].astype(bool))

    data_vars: dict[str, Any] = {
        "human_it": (("subject", "session", *RDM_DIMS), human_it),
        "human_it_mean": (RDM_DIMS, _square(fig1_rdms["hITvisStim_316vx"], supp_path,
                                            "hITvisStim_316vx")),
        "monkey_it": (RDM_DIMS, _square(fig1_rdms["mIT_674neurons"], supp_path,
                                        "mIT_674neurons")),
        "behaviour": (("rater", *RDM_DIMS), behaviour),
        "model_rdm": (("model", *RDM_DIMS), model_rdms),
    }
    if images:
        imgs = [np.asarray(s["image"]) for s in stim]
        shapes = {im.shape for im in imgs}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3 or imgs[0].dtype != np.uint8:
            raise ValueError(f"{supp_path}: stimulus images have shapes {sorted(shapes)} / dtype "
                             f"{imgs[0].dtype}; expected one (y, x, 3) uint8 shape")
        data_vars["image"] = (("stimulus", "y", "x", "channel"), np.stack(imgs))
        coords["channel"] = ["R", "G", "B"]

    ds = xr.Dataset(data_vars, coords=coords)
    ds["human_it"].attrs.update(measure="1 - Pearson r", roi="human IT (fMRI)")
    ds["human_it_mean"].attrs.update(measure="1 - Pearson r",
                                     source="RDMs_mIT_hIT_fig1: hITvisStim_316vx")
    ds["monkey_it"].attrs.update(measure="1 - Pearson r",
                                 source="RDMs_mIT_hIT_fig1: mIT_674neurons")
    ds["behaviour"].attrs.update(source="Mur et al. 2013 similarity judgements")
    ds.attrs.update(
        dataset="rsa92_kriegeskorte2008",
        source="rsagroup/rsatoolbox demos/92imageData (see data/README.md section 1)",
        reference="Kriegeskorte et al. 2008, Neuron 60:1126-1141",
        licence="MIT (rsatoolbox); image copyright undocumented",
        path=str(supp_path.parent),
    )
    return ds
