"""Searchlight RSA over a 3-D mask: an RDM in a sphere around every voxel, compared with models.

* :func:`searchlight_spheres` — from a boolean mask and its 4x4 affine, the mask voxels within
  ``radius_mm`` (world distance, so anisotropic voxels work) of every mask voxel, truncated at
  the mask's boundary, as compressed sparse rows (found with a KD-tree);
* :func:`searchlight_rdms` — the RDM of every sphere, with any method of
  :func:`~rsa_bias.analysis.rsa.rdms.rdm` (crossnobis with a noise precision estimated in
  each sphere from the GLM residuals, which rsatoolbox's searchlight cannot do);
* :func:`searchlight_rsa` — one or more model RDMs compared with every sphere's RDM, by any
  method of :func:`~rsa_bias.analysis.rsa.compare.compare_rdms`, without holding all
  sphere RDMs: the centres run in chunks (in parallel on Dask's threads or a
  ``dask.distributed`` cluster), each chunk's RDMs are compared and dropped;
* :func:`searchlight_to_nifti` — a score per centre back into the mask's space
  (:func:`~rsa_bias.brain.nifti.to_nifti`, NaN where no sphere was centred).

Voxels are numbered as ``np.argwhere(mask)`` (C order), as
:func:`~rsa_bias.brain.nifti.patterns_from_nifti` numbers them. Within a chunk the spheres of
equal voxel count are batched, so that their Gram matrices come from one batched matrix
product (``1 - corr`` from centred, normalised patterns for the correlation distance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias._values import check_count, check_flag, check_number, numeric_values, restore_scale
from rsa_bias.analysis._inputs import choose
from rsa_bias.analysis._rdm_vectors import PAIR_DIM
from rsa_bias.analysis.rsa import _sl_inputs as inputs
from rsa_bias.analysis.rsa._sl_dispatch import run_chunks
from rsa_bias.analysis.rsa._spheres import SearchlightSpheres, build_spheres
from rsa_bias.analysis.rsa.compare import _METHODS as _COMPARE
from rsa_bias.analysis.rsa.rdms import _SCALE_POWER
from rsa_bias.provenance import result_attrs

__all__ = ["SearchlightSpheres", "searchlight_spheres", "searchlight_rdms", "searchlight_rsa",
           "searchlight_to_nifti"]


def searchlight_spheres(mask: np.ndarray, affine: np.ndarray, *, radius_mm: float,
                        min_voxels: int = 2) -> SearchlightSpheres:
    """The searchlight sphere of every mask voxel: the mask voxels within ``radius_mm``.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (I, J, K)
        The 3-D brain mask (numbers are read as ``mask != 0``). Voxel ``v`` is row ``v`` of
        ``np.argwhere(mask)``, the voxel order of
        :func:`~rsa_bias.brain.nifti.patterns_from_nifti`.
    affine : numpy.ndarray, shape (4, 4)
        The mask's voxel-to-world affine (mm), e.g. ``img.affine`` of its NIfTI image;
        distances are world distances, so anisotropic or sheared grids work.
    radius_mm : float
        Sphere radius in mm (> 0): a sphere holds the mask voxels whose centres are at most
        ``radius_mm`` from its centre voxel's (truncated at the mask's boundary: voxels
        outside the mask never count).
    min_voxels : int, default 2
        Centres whose sphere has fewer mask voxels are dropped (a correlation RDM needs at
        least 2 voxels).

    Returns
    -------
    SearchlightSpheres
        CSR arrays ``indptr``, ``indices`` (mask-voxel numbers of each sphere, ascending),
        ``centres`` (mask-voxel number of each kept centre), ``ijk`` (grid coordinates of all
        mask voxels), and ``mask_shape``, ``affine``, ``radius_mm``, ``min_voxels``.

    Raises
    ------
    ValueError
        For a mask that is not 3-D or has no voxel, an affine that is not a finite 4x4
        matrix with an invertible 3x3 part, ``radius_mm <= 0``, ``min_voxels < 1``.

    Examples
    --------
    >>> mask = np.ones((3, 3, 1), dtype=bool)
    >>> sl = searchlight_spheres(mask, np.diag([2.0, 1.0, 1.0, 1.0]), radius_mm=1.5)
    >>> len(sl), sl.sphere(4).tolist()   # the middle voxel: its j neighbours only (i is 2 mm)
    (9, [3, 4, 5])
    """
    m = np.asarray(mask)
    if m.ndim != 3:
        raise ValueError(f"mask has shape {m.shape}; expected a 3-D array (I, J, K)")
    m = numeric_values(m, "mask") != 0
    if not m.any():
        raise ValueError("mask has no voxel (all False)")
    a = numeric_values(affine, "affine")
    if a.shape != (4, 4) or abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError(f"affine must be a 4x4 voxel-to-world matrix with an invertible 3x3 "
                         f"part (e.g. img.affine); got shape {a.shape}")
    radius = check_number(radius_mm, "radius_mm", low=0.0, low_open=True, high=np.inf,
                          high_open=True)
    return build_spheres(m, a, radius, check_count(min_voxels, "min_voxels"))


_NOISE_DOC = """    runs : str or sequence, optional
        The run dim's name (default ``"run"`` when present) or each row's run label, as
        :func:`~rsa_bias.analysis.rsa.rdms.rdm` reads it.
    noise : numpy.ndarray of shape (n_voxels,), optional
        A diagonal noise precision per voxel (``mahalanobis`` / ``crossnobis`` only).
    residuals : xarray.DataArray or numpy.ndarray, optional
        GLM residuals ``(..., voxel)`` (e.g. ``residual(run, time, voxel)`` of
        :func:`~rsa_bias.brain.nifti.patterns_from_nifti`; rows that are all NaN, the padding
        of shorter runs, are dropped): each sphere's noise precision is
        ``noise_precision(residuals[:, sphere], method=noise_method, dof=dof)``
        (``mahalanobis`` / ``crossnobis`` only).
    noise_method : str, default "shrinkage_diag"
        The estimator of :func:`~rsa_bias.analysis.rsa.crossnobis.noise_precision`.
    dof : int, optional
        Degrees of freedom of the residuals (default rows - 1), e.g.
        ``int(ds.residual_dof.sum())``.
    remove_mean : bool, default False
        Subtract each pattern's mean over the sphere's voxels first.
    run_weights : {"equal", "rows"}, default "equal"
        How runs weigh (see :func:`~rsa_bias.analysis.rsa.rdms.rdm`).
    chunk_size : int, default 1024
        Centres per chunk: the unit of parallel work, and of memory for the chunk's RDMs
        (``chunk_size x pairs``); within a chunk, spheres are gathered a few million values
        at a time.
    progress : bool, default False
        Show a tqdm progress bar over the centres.
    client : dask.distributed.Client or str, optional
        Run the chunks on this cluster (a Client, or a scheduler's address); default: Dask's
        local threads (one chunk runs in this thread).
    n_workers : int, optional
        Threads of the local scheduler (default Dask's: the number of cores)."""


def _docstring(fn):
    fn.__doc__ = fn.__doc__.replace("    {noise_doc}", _NOISE_DOC)
    return fn


@_docstring
def searchlight_rdms(x: xr.DataArray | np.ndarray, *, spheres: SearchlightSpheres,
                     method: str = "correlation", runs: str | Sequence | None = None,
                     noise: np.ndarray | None = None, residuals: Any = None,
                     noise_method: str = "shrinkage_diag", dof: int | None = None,
                     remove_mean: bool = False, run_weights: str = "equal",
                     chunk_size: int = 1024, progress: bool = False, client: Any = None,
                     n_workers: int | None = None) -> xr.DataArray:
    """The RDM of every searchlight sphere.

    Each sphere's RDM equals ``condensed(rdm(x[..., sphere], method=method, ...))`` (the
    formulas of :func:`~rsa_bias.analysis.rsa.rdms.rdm`), computed in batches of spheres.

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        Patterns ``(stimulus, voxel)`` or ``(run, stimulus, voxel)`` over the mask's voxels
        in ``np.argwhere(mask)`` order (the ``response`` of
        :func:`~rsa_bias.brain.nifti.patterns_from_nifti`); ``i``/``j``/``k`` voxel coords,
        when present, must match the mask's. At least 3 stimuli, no NaN/inf.
    spheres : SearchlightSpheres
        From :func:`searchlight_spheres`.
    method : str, default "correlation"
        Any method of :func:`~rsa_bias.analysis.rsa.rdms.rdm`: ``"correlation"``,
        ``"cosine"``, ``"euclidean"``, ``"sqeuclidean"``, ``"mahalanobis"`` (needs
        ``residuals`` or ``noise``) or ``"crossnobis"`` (needs runs).
    {noise_doc}

    Returns
    -------
    xarray.DataArray with dims ("centre", "pair")
        Condensed RDMs (``stimulus_i``/``stimulus_j`` on ``pair``, as ``condensed``); coords
        ``voxel`` (the centre's mask-voxel number), ``i``, ``j``, ``k`` and ``n_voxels`` on
        ``centre``. Flat attrs record the method, options and the geometry (``radius_mm``,
        ``mask_shape``, ``affine``).

    Raises
    ------
    ValueError
        Unknown method (listing the valid ones), data whose voxels are not the mask's, NaN/inf,
        noise options the method does not use, a constant pattern in a sphere under
        ``"correlation"``.

    Examples
    --------
    >>> from rsa_bias.analysis.rsa import condensed, rdm
    >>> rng = np.random.default_rng(0)
    >>> sl = searchlight_spheres(np.ones((4, 4, 2), bool), np.eye(4), radius_mm=1.5)
    >>> x = rng.normal(size=(6, 32))                     # 6 stimuli, 32 mask voxels
    >>> d = searchlight_rdms(x, spheres=sl)
    >>> d.dims, d.shape
    (('centre', 'pair'), (32, 15))
    >>> bool(np.allclose(d[5], condensed(rdm(x[:, sl.sphere(5)])).values))
    True
    """
    size, workers = inputs.check_chunks(chunk_size, n_workers)
    state, patterns, log2 = inputs.prepare(
        x, spheres, method=method, runs=runs, noise=noise, residuals=residuals,
        noise_method=noise_method, dof=dof, remove_mean=remove_mean, run_weights=run_weights)
    parts = run_chunks(state, chunk_size=size, progress=progress, client=client,
                       n_workers=workers, desc="searchlight RDMs")
    vectors = np.concatenate([p[2]["rdm"] for p in parts])
    vectors = restore_scale(vectors, _SCALE_POWER[method] * log2, "x", f"{method} distances")
    coords = {**inputs.centre_coords(state.spheres),
              **inputs.pair_coords(patterns["stimulus"].values)}
    attrs = result_attrs("searchlight_rdms", method=method, noise_method=noise_method,
                         noise=_noise_kind(noise, residuals), remove_mean=remove_mean,
                         run_weights=run_weights, chunk_size=size,
                         n_runs=int(patterns.sizes["run"]),
                         **inputs.geometry_attrs(state.spheres))
    return xr.DataArray(vectors, dims=("centre", PAIR_DIM), coords=coords, name="rdm",
                        attrs=attrs)


def _noise_kind(noise, residuals) -> str:
    return "residuals" if residuals is not None else ("diagonal" if noise is not None
                                                      else "identity")


@_docstring
def searchlight_rsa(x: xr.DataArray | np.ndarray, models: xr.DataArray | np.ndarray, *,
                    spheres: SearchlightSpheres, rdm_method: str = "correlation",
                    compare_method: str = "spearman", runs: str | Sequence | None = None,
                    noise: np.ndarray | None = None, residuals: Any = None,
                    noise_method: str = "shrinkage_diag", dof: int | None = None,
                    remove_mean: bool = False, run_weights: str = "equal",
                    chunk_size: int = 1024, progress: bool = False, client: Any = None,
                    n_workers: int | None = None, return_rdms: bool = False) -> xr.Dataset:
    """Compare model RDMs with the RDM of every searchlight sphere.

    ``score[model, c]`` equals ``compare_rdms(models[model], rdm(x[..., sphere c],
    method=rdm_method, ...), method=compare_method)``. Memory is bounded by the chunk: each
    chunk's sphere RDMs are compared with the models and dropped (unless ``return_rdms``).

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        Patterns ``(stimulus, voxel)`` or ``(run, stimulus, voxel)`` over the mask's voxels
        in ``np.argwhere(mask)`` order (see :func:`searchlight_rdms`).
    models : xarray.DataArray or numpy.ndarray
        One model RDM or a stack along one leading dim (e.g. ``model``), in any form
        :func:`~rsa_bias.analysis.rsa.compare.compare_rdms` reads, aligned with ``x`` on
        stimulus ids (NaN dissimilarities are dropped, as there).
    spheres : SearchlightSpheres
        From :func:`searchlight_spheres`.
    rdm_method : str, default "correlation"
        The sphere RDMs: any method of :func:`~rsa_bias.analysis.rsa.rdms.rdm`.
    compare_method : str, default "spearman"
        Any method of :func:`~rsa_bias.analysis.rsa.compare.compare_rdms`.
    {noise_doc}
    return_rdms : bool, default False
        Also return every sphere's RDM (``rdm(centre, pair)``; memory ``centres x pairs``).

    Returns
    -------
    xarray.Dataset
        ``score(model, centre)`` (model labels from the models' leading dim; ``"model"`` for
        a single RDM), optionally ``rdm(centre, pair)``; centre coords ``voxel``, ``i``,
        ``j``, ``k``, ``n_voxels``; flat attrs record the methods, options and geometry
        (``radius_mm``, ``mask_shape``, ``affine``: what :func:`searchlight_to_nifti` needs).

    Raises
    ------
    ValueError
        Unknown methods (listing the valid ones), models over other stimuli than ``x``, and
        everything :func:`searchlight_rdms` refuses.

    Examples
    --------
    >>> from rsa_bias.analysis.rsa import compare_rdms, rdm
    >>> rng = np.random.default_rng(0)
    >>> sl = searchlight_spheres(np.ones((4, 4, 2), bool), np.eye(4), radius_mm=1.5)
    >>> x = rng.normal(size=(6, 32))
    >>> model = rdm(rng.normal(size=(6, 3)))
    >>> res = searchlight_rsa(x, model, spheres=sl)
    >>> res.score.dims, res.score.shape
    (('model', 'centre'), (1, 32))
    >>> ref = compare_rdms(model, rdm(x[:, sl.sphere(7)]))
    >>> bool(abs(float(res.score[0, 7]) - ref) < 1e-12)
    True
    """
    size, workers = inputs.check_chunks(chunk_size, n_workers)
    kernel = choose(_COMPARE, compare_method, "comparison method")
    state, patterns, log2 = inputs.prepare(
        x, spheres, method=rdm_method, runs=runs, noise=noise, residuals=residuals,
        noise_method=noise_method, dof=dof, remove_mean=remove_mean, run_weights=run_weights)
    state.models, labels = inputs.aligned_models(models, patterns)
    state.compare_kernel, state.return_rdms = kernel, check_flag(return_rdms, "return_rdms")
    parts = run_chunks(state, chunk_size=size, progress=progress, client=client,
                       n_workers=workers, desc="searchlight RSA")
    coords = {**inputs.centre_coords(state.spheres), "model": labels}
    data = {"score": (("model", "centre"), np.concatenate([p[2]["score"] for p in parts], 1),
                      inputs.geometry_attrs(state.spheres))}
    if state.return_rdms:
        vectors = np.concatenate([p[2]["rdm"] for p in parts])
        vectors = restore_scale(vectors, _SCALE_POWER[rdm_method] * log2, "x",
                                f"{rdm_method} distances")
        data["rdm"] = (("centre", PAIR_DIM), vectors)
        coords.update(inputs.pair_coords(patterns["stimulus"].values))
    attrs = result_attrs("searchlight_rsa", method=compare_method, rdm_method=rdm_method,
                         noise_method=noise_method, noise=_noise_kind(noise, residuals),
                         remove_mean=remove_mean, run_weights=run_weights, chunk_size=size,
                         n_runs=int(patterns.sizes["run"]),
                         **inputs.geometry_attrs(state.spheres))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def centre_space(result: xr.Dataset | xr.DataArray) -> tuple[xr.DataArray, dict, xr.Dataset]:
    """The checked ``score`` of a searchlight result, its attrs, and its centres as the voxels
    of a dataset in the mask's space (``voxel`` with ``i``/``j``/``k`` coords, ``mask_shape``
    and ``affine`` attrs): what :func:`searchlight_to_nifti` and
    :func:`rsa_bias.plotting.plot_searchlight_map` place.

    Parameters
    ----------
    result : xarray.Dataset or xarray.DataArray
        As in :func:`searchlight_to_nifti`.

    Returns
    -------
    score : xarray.DataArray
        ``result["score"]`` (or ``result``), dims ``([model,] centre)``.
    attrs : dict
        The result's attrs with the score's over them.
    space : xarray.Dataset
        One ``voxel`` per centre, in the centres' order.

    Raises
    ------
    ValueError
        When ``result`` lacks the centre dim, the centre coords or the geometry attrs.
    """
    score = result["score"] if isinstance(result, xr.Dataset) else result
    attrs = {**getattr(result, "attrs", {}), **score.attrs}
    missing = [a for a in ("mask_shape", "affine") if a not in attrs]
    missing += [c for c in ("i", "j", "k") if c not in score.coords]
    if "centre" not in score.dims or missing:
        raise ValueError(f"result lacks {missing or ['the centre dim']}; pass the output of "
                         "searchlight_rsa (or its score)")
    space = xr.Dataset(coords={"voxel": np.arange(score.sizes["centre"]),
                               **{c: ("voxel", score[c].values) for c in ("i", "j", "k")}},
                       attrs={"mask_shape": list(np.ravel(attrs["mask_shape"])),
                              "affine": list(np.ravel(attrs["affine"]))})
    return score, attrs, space


def searchlight_to_nifti(result: xr.Dataset | xr.DataArray, *, model: Any = None) -> Any:
    """A score per searchlight centre as an image in the mask's space (NaN elsewhere).

    Parameters
    ----------
    result : xarray.Dataset or xarray.DataArray
        The output of :func:`searchlight_rsa` (its ``score``), or a DataArray with dim
        ``centre`` (optionally one more, e.g. ``model``), centre coords ``i``/``j``/``k`` and
        the attrs ``mask_shape`` and ``affine`` (as :func:`searchlight_rsa` records them).
    model : optional
        The label of the model to map; default all (a 4-D image when there are several).

    Returns
    -------
    nibabel.Nifti1Image
        float32, 3-D (one model) or 4-D (models along the 4th axis), NaN outside the centres;
        built by :func:`~rsa_bias.brain.nifti.to_nifti` (nibabel is imported now).

    Raises
    ------
    ValueError
        When ``result`` lacks the centre coords or geometry attrs, or ``model`` is not one of
        its models.
    """
    from rsa_bias.brain.nifti import to_nifti

    score, _, space = centre_space(result)
    if model is not None:
        labels = score["model"].values.tolist() if "model" in score.coords else []
        if model not in labels:
            raise ValueError(f"model {model!r} is not in the result; its models: {labels}")
        score = score.sel(model=model)
    elif "model" in score.dims and score.sizes["model"] == 1:
        score = score.isel(model=0)
    if score.ndim > 2:
        raise ValueError(f"score has dims {score.dims}; expected ('centre',) or (<model>, "
                         "'centre')")
    return to_nifti(score.transpose(..., "centre").values, space, fill=np.nan)
