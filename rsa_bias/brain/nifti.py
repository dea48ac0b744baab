"""Per-run condition patterns from your own fMRI runs (4D NIfTI + BIDS events), via nilearn.

:func:`patterns_from_nifti` fits one nilearn ``FirstLevelModel`` per run (HRF-convolved
condition regressors, drift, optional confounds, AR(1) noise) and returns the effect sizes
(betas) of every condition in every run, plus the GLM residuals that a crossnobis RDM needs
for its noise precision::

    ds = patterns_from_nifti(bold_paths, events_paths, mask_img="mask.nii.gz", t_r=2.0)
    prec = noise_precision(ds.residual, dof=int(ds.residual_dof.sum()))
    d = rdm(ds.response, method="crossnobis", noise=prec)       # leave-one-run-out

(For runs of different lengths the residuals are NaN-padded: pass
``ds.residual.stack(sample=("run", "time")).dropna("sample").transpose("sample", "voxel")``.)

:func:`to_nifti` puts any per-voxel score (``DataArray`` with dim ``voxel``) back into the
mask's brain space as a nibabel image. nilearn and nibabel are imported
only when these functions run.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bias.brain._nifti_inputs import (
    EVENT_COLUMNS,  # noqa: F401 - re-exported
    UNITS,
    _as_list,
    _binary_mask,
    _bold,
    _check_tr,
    _conditions,
    _confounds,
    _events,
    _scaling,
)


def _glm_images(glm: Any, name: str) -> Any:
    """``glm.<name>_`` (nilearn >= 0.12) or ``glm.<name>`` (older) for the only run."""
    found = getattr(glm, f"{name}_", None)
    return (found if found is not None else getattr(glm, name))[0]


def _fit_run(bold: Any, events: pd.DataFrame, confounds: pd.DataFrame | None, masker: Any,
             mask: np.ndarray, conditions: list[str], settings: dict[str, Any],
             residuals: bool) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Betas ``(condition, voxel)``, residuals ``(time, voxel)`` and residual dof of one run."""
    from nilearn.glm.first_level import FirstLevelModel

    glm = FirstLevelModel(mask_img=masker, minimize_memory=not residuals, **settings)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Mm]atrix is singular.*")
        glm.fit(bold, events=events, confounds=confounds)
    columns = list(glm.design_matrices_[0].columns)
    design = glm.design_matrices_[0].to_numpy()
    # one-hot contrast vectors, not names (nilearn parses a name such as "a-b" as an
    # expression): theta (regressor, voxel) = the effect size of every design column
    # (every column is needed only for the residuals; otherwise just the conditions')
    eye = np.eye(len(columns))
    wanted = [columns.index(c) for c in conditions]
    theta = np.stack([glm.compute_contrast(eye[c], output_type="effect_size").get_fdata()[mask]
                      for c in (range(len(columns)) if residuals else wanted)])
    dof = design.shape[0] - int(np.linalg.matrix_rank(design))
    if not residuals:
        return theta, None, dof
    betas = theta[wanted]
    # nilearn's residuals_ subtract the *whitened* design's prediction from the unwhitened
    # data under AR noise models (nilearn issue #2964); their sum with predicted_ is the
    # (scaled) data exactly, so the residuals are recomputed with the design itself.
    y = (_glm_images(glm, "residuals").get_fdata()[mask]
         + _glm_images(glm, "predicted").get_fdata()[mask]).T
    return betas, y - design @ theta, dof


def patterns_from_nifti(bold_imgs: Any, events: Any, *, mask_img: Any, t_r: float,
                        confounds: Any = None, conditions: Sequence[str] | None = None,
                        hrf_model: str = "glover", drift_model: str | None = "cosine",
                        high_pass: float = 1 / 128, noise_model: str = "ar1",
                        signal_scaling: int | bool = 0, residuals: bool = True,
                        progress: bool = True) -> xr.Dataset:
    """Fit condition patterns (GLM effect sizes) of every run, ready for crossnobis RSA.

    One nilearn ``FirstLevelModel`` is fitted per run (HRF-convolved condition regressors,
    drift, optional confounds, AR(1) noise); the effect sizes (betas) of every condition in
    every run are returned, plus the GLM residuals that a crossnobis RDM needs for its noise
    precision (see the module docstring for an example). nilearn and nibabel are imported
    only when this function runs.

    Parameters
    ----------
    bold_imgs : str, os.PathLike, nibabel image, or a sequence of them
        One 4D image per run (file path or nibabel image); a single image is one run.
    events : pandas.DataFrame, str, os.PathLike, or a sequence of them
        One BIDS events table per run (``pandas.DataFrame`` or path to a
        ``.tsv``/``.csv``) with columns ``onset``, ``duration`` (s, from the run's first
        volume) and ``trial_type``.
    mask_img : str, os.PathLike or nibabel image
        3D mask on the BOLD grid; non-zero voxels are analysed.
    t_r : float
        Repetition time in seconds. A UserWarning is raised when it differs by more than
        1 % from the TR recorded in an image header.
    confounds : pandas.DataFrame, numpy.ndarray, path, or a sequence of them, optional
        ``None`` or one table per run (DataFrame, ``(n_volumes, k)`` array, or path:
        ``.tsv``/``.csv`` with a header, anything else read by ``numpy.loadtxt``), e.g.
        motion estimates; one row per volume.
    conditions : sequence of str, optional
        The trial types whose betas are returned, in this order; default: every trial
        type, sorted. All trial types are modelled either way.
    hrf_model : str, default "glover"
        Passed to ``nilearn.glm.first_level.FirstLevelModel``.
    drift_model : str, default "cosine"
        Passed to ``FirstLevelModel``; ``None`` models no drift.
    high_pass : float, default 1/128
        High-pass cut-off in Hz of the cosine drift (a 128 s period), passed to
        ``FirstLevelModel``.
    noise_model : str, default "ar1"
        Passed to ``FirstLevelModel``.
    signal_scaling : int, bool or tuple, default 0
        Passed to ``FirstLevelModel``; one of ``0`` (nilearn's default: each voxel is
        divided by its mean over the run, so betas are in percent signal change),
        ``(0, 1)`` (grand-mean scaling: every voxel is divided by one number, the mean
        over all mask voxels and volumes of the run, so betas are in percent of that grand
        mean) or ``False`` (the image's units); ``attrs["units"]`` says which.
    residuals : bool, default True
        Also return the GLM residuals (needed for a noise precision; run x time x voxel
        float64, which can be large for whole-brain data).
    progress : bool, default True
        Show a tqdm progress bar over runs.

    Returns
    -------
    xarray.Dataset with dims ("run", "stimulus", "voxel", ...)
        The variables, coords and attrs:

        * ``response(run, stimulus, voxel)`` — effect size of each condition (``stimulus`` ids
          are the condition names; also coord ``condition``), runs numbered ``1..n``;
        * ``residual(run, time, voxel)`` if ``residuals`` — data minus the fitted design
          (``Y - X θ``, not temporally whitened, in the units of ``response``); runs shorter
          than the longest are NaN-padded at the end; ``residual_dof(run)`` = volumes - rank
          of the design matrix;
        * ``mean_bold(grid_i, grid_j, grid_k)`` — the mean image over all volumes (a background
          for maps);
        * coords ``i``, ``j``, ``k`` (voxel indices in the mask grid, C order as nilearn's
          maskers), ``n_volumes(run)``, ``frame_time(time)`` (s, with residuals);
        * attrs ``t_r``, ``mask_shape``, ``affine`` (16 numbers, row-major), the GLM settings,
          ``units``, ``confounds`` (the confound names of all runs together; ``config_json``
          lists them per run) and provenance (``method``, ``config_json``, ``rsa_bias_version``,
          ...).

    Raises
    ------
    ValueError
        With what to do for: a different number of events tables (or confounds) than
        runs, missing event columns, events ending after the run, a condition missing from
        a run, a mask off the BOLD grid, a 3D image, confounds with a row count other than
        the number of volumes.
    """
    from nilearn.maskers import NiftiMasker
    from tqdm.auto import tqdm

    runs, tables = _as_list(bold_imgs), _as_list(events)
    confs = [None] * len(runs) if confounds is None else _as_list(confounds)
    for what, given in (("events tables", tables), ("confounds tables", confs)):
        if len(given) != len(runs):
            raise ValueError(f"{len(runs)} BOLD run(s) but {len(given)} {what}; pass one per "
                             "run, in the same order")
    bolds = [_bold(img, r) for r, img in enumerate(runs, start=1)]
    _check_same_grid(bolds)
    mask = _binary_mask(mask_img, bolds[0])
    n_vols = [int(b.shape[3]) for b in bolds]
    evs = [_events(ev, r, n, t_r) for r, (ev, n) in enumerate(zip(tables, n_vols, strict=True),
                                                               start=1)]
    cfs = [_confounds(c, r, n) for r, (c, n) in enumerate(zip(confs, n_vols, strict=True),
                                                          start=1)]
    names = _conditions(evs, conditions)
    _check_tr(bolds, float(t_r))
    settings = dict(t_r=float(t_r), hrf_model=hrf_model, drift_model=drift_model,
                    high_pass=high_pass, noise_model=noise_model,
                    signal_scaling=_scaling(signal_scaling))
    import nibabel as nib

    masker = NiftiMasker(mask_img=nib.Nifti1Image(mask.astype(np.uint8), bolds[0].affine),
                         t_r=float(t_r)).fit()
    betas, resids, dofs = [], [], []
    for r, bold in enumerate(tqdm(bolds, desc="GLM per run", unit="run", disable=not progress)):
        b, res, dof = _fit_run(bold, evs[r], cfs[r], masker, mask, names, settings, residuals)
        betas.append(b)
        resids.append(res)
        dofs.append(dof)
    ds = _assemble(np.stack(betas), resids if residuals else None, dofs, names, mask, bolds,
                   n_vols, float(t_r))
    ds.attrs.update(_attrs(settings, mask, bolds[0], cfs))
    return ds


def _check_same_grid(bolds: list[Any]) -> None:
    ref = bolds[0]
    for r, b in enumerate(bolds[1:], start=2):
        if b.shape[:3] != ref.shape[:3] or not np.allclose(b.affine, ref.affine, atol=1e-3):
            raise ValueError(f"run {r}'s BOLD grid {b.shape[:3]} differs from run 1's "
                             f"{ref.shape[:3]} (or its affine does); resample the runs to one "
                             "grid first")


def _assemble(betas: np.ndarray, resids: list[np.ndarray] | None, dofs: list[int],
              names: list[str], mask: np.ndarray, bolds: list[Any], n_vols: list[int],
              t_r: float) -> xr.Dataset:
    i, j, k = np.nonzero(mask)
    run_ids = np.arange(1, len(bolds) + 1)
    coords: dict[str, Any] = {
        "run": run_ids, "stimulus": names, "condition": ("stimulus", names),
        "voxel": np.arange(i.size), "i": ("voxel", i), "j": ("voxel", j), "k": ("voxel", k),
        "n_volumes": ("run", np.asarray(n_vols)),
    }
    data: dict[str, Any] = {"response": (("run", "stimulus", "voxel"), betas)}
    if resids is not None:
        t_max = max(n_vols)
        padded = np.full((len(resids), t_max, i.size), np.nan)
        for r, res in enumerate(resids):
            padded[r, : res.shape[0]] = res
        data["residual"] = (("run", "time", "voxel"), padded)
        data["residual_dof"] = ("run", np.asarray(dofs))
        coords["time"] = np.arange(t_max)
        coords["frame_time"] = ("time", t_r * np.arange(t_max))
    total = sum(np.asanyarray(b.dataobj).sum(axis=3, dtype=np.float64) for b in bolds)
    data["mean_bold"] = (("grid_i", "grid_j", "grid_k"),
                         (total / sum(n_vols)).astype(np.float32))
    return xr.Dataset(data, coords=coords)


def _attrs(settings: dict[str, Any], mask: np.ndarray, ref: Any,
           confounds: list[pd.DataFrame | None]) -> dict[str, Any]:
    from rsa_bias.provenance import provenance_attrs

    flat = {k: ("none" if v is None else v) for k, v in settings.items()}
    flat["signal_scaling"] = str(settings["signal_scaling"])
    per_run = [[] if c is None else [str(n) for n in c.columns] for c in confounds]
    union = list(dict.fromkeys(n for names in per_run for n in names))
    config = {**flat, "confounds": per_run, "estimator": "nilearn FirstLevelModel"}
    attrs: dict[str, Any] = dict(flat)
    attrs.update(
        mask_shape=list(mask.shape), affine=[float(a) for a in np.asarray(ref.affine).ravel()],
        n_voxels=int(mask.sum()), confounds=", ".join(union) or "none",
        units=UNITS[flat["signal_scaling"]],
        **provenance_attrs(config=config, method="first-level GLM effect sizes per run"),
    )
    return attrs


# --------------------------------------------------------------------------- back to space

def _check_same_voxels(values: xr.DataArray, dataset: xr.Dataset) -> None:
    """Raise if ``values`` carry ``i``/``j``/``k`` coords other than the dataset's."""
    carried = [c for c in ("i", "j", "k") if c in values.coords
               and values[c].dims == ("voxel",) and c in dataset.coords]
    if not carried:
        return
    theirs = np.stack([values[c].values for c in carried], axis=1)
    ours = np.stack([dataset[c].values for c in carried], axis=1)
    off = np.flatnonzero((theirs != ours).any(axis=1))
    if off.size:
        v = off[0]
        raise ValueError(f"values carry voxel coords {'/'.join(carried)} that differ from the "
                         f"dataset's at {off.size} of {ours.shape[0]} voxels (e.g. voxel "
                         f"{dataset['voxel'].values[v].item()!r}: {tuple(theirs[v].tolist())} in "
                         f"values, {tuple(ours[v].tolist())} in the dataset); they were computed "
                         "on another mask — pass the dataset they come from")


def to_nifti(values: xr.DataArray | np.ndarray, dataset: xr.Dataset, *,
             fill: float = 0.0) -> Any:
    """Put per-voxel values back into the mask's brain space.

    nibabel is imported only when this function runs.

    Parameters
    ----------
    values : xarray.DataArray with dims ("voxel",) or (<other>, "voxel"), or numpy.ndarray
        A DataArray is aligned on the ``voxel`` ids of ``dataset``; ``i``/``j``/``k``
        coords it carries must equal the dataset's (else ValueError: another mask). A
        numpy vector is taken in the dataset's voxel order.
    dataset : xarray.Dataset with dims ("voxel", ...)
        The output of :func:`patterns_from_nifti` (or a loader built on it, such as
        :func:`~rsa_bias.brain.load_haxby`), which records ``i``/``j``/``k``,
        ``mask_shape`` and ``affine``.
    fill : float, default 0.0
        Value outside the mask (``numpy.nan`` hides it in most viewers).

    Returns
    -------
    nibabel.Nifti1Image
        float32, 3D, or 4D with <other> as the 4th axis.

    Raises
    ------
    ValueError
        When ``dataset`` lacks the mask attrs, or ``values`` lack some of its voxels,
        have another shape, or come from another mask.
    """
    import nibabel as nib

    for need in ("mask_shape", "affine"):
        if need not in dataset.attrs:
            raise ValueError(f"dataset lacks attrs[{need!r}]; pass the Dataset returned by "
                             "patterns_from_nifti")
    ids = dataset["voxel"].values
    if isinstance(values, xr.DataArray):
        if "voxel" not in values.dims or values.ndim > 2:
            raise ValueError(f"values have dims {values.dims}; expected ('voxel',) or "
                             "(<other>, 'voxel')")
        if "voxel" in values.coords:
            missing = np.setdiff1d(ids, values["voxel"].values)
            if missing.size:
                raise ValueError(f"values lack {missing.size} of the dataset's voxels (e.g. "
                                 f"{missing[:3].tolist()})")
            values = values.sel(voxel=ids)
        other = [d for d in values.dims if d != "voxel"]
        arr = values.transpose(*other, "voxel").values
    else:
        arr = np.asarray(values)
    if arr.shape[-1] != ids.size or arr.ndim > 2:
        raise ValueError(f"values have shape {arr.shape}; expected ({ids.size},) voxels")
    if isinstance(values, xr.DataArray):
        _check_same_voxels(values, dataset)
    shape = tuple(int(s) for s in dataset.attrs["mask_shape"])
    lead = arr.shape[:-1]
    out = np.full(shape + lead, fill, dtype=np.float32)
    out[dataset["i"].values, dataset["j"].values, dataset["k"].values] = arr.T
    affine = np.asarray(dataset.attrs["affine"], dtype=float).reshape(4, 4)
    return nib.Nifti1Image(out, affine)
