"""A searchlight RSA map of Haxby et al. (2001) subject 1: where faces and houses are told apart.

:func:`haxby_searchlight` runs :func:`~rsa_bias.analysis.rsa.searchlight.searchlight_rsa` over
the shipped one-slice mask (:func:`~rsa_bias.brain.haxby.load_haxby`: 12 runs, 8 categories,
530 voxels of 3.1 x 3.75 x 3.75 mm) with these category-model RDMs:

* ``face_vs_house`` — the categories in three groups, faces, houses and the other six: 1 between
  groups, 0 within the other six (so the model says that faces and houses each stand apart);
* the shipped ``face_vs_rest``, ``animate_vs_inanimate``, ``scrambled_vs_objects`` and
  ``superordinate`` models;

and adds ``face_house_crossnobis(centre)``, the cross-validated Mahalanobis (crossnobis)
distance between the face and house patterns in each sphere, with the sphere's noise precision
from the GLM residuals (unbiased: 0 on average where faces and houses do not differ).
:func:`run_haxby_searchlight` writes the results (netCDF), the two maps (NIfTI) and a figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias.analysis.rsa.searchlight import (
    searchlight_rdms,
    searchlight_rsa,
    searchlight_spheres,
    searchlight_to_nifti,
)
from rsa_bias.provenance import provenance_attrs
from rsa_bias.store.tables import write_nifti

#: Groups of the face_vs_house model.
FACE_HOUSE_GROUPS = {"face": 0, "house": 1}


def face_vs_house_model(ids: np.ndarray) -> xr.DataArray:
    """The ``face_vs_house`` model RDM over category ``ids`` (see the module docstring)."""
    group = np.array([FACE_HOUSE_GROUPS.get(str(c), 2) for c in ids])
    rdm = (group[:, None] != group[None, :]).astype(np.float64)
    return xr.DataArray(rdm, dims=("stimulus_i", "stimulus_j"),
                        coords={"stimulus_i": ids, "stimulus_j": ids})


def _mask(ds: xr.Dataset) -> np.ndarray:
    mask = np.zeros(tuple(int(s) for s in ds.attrs["mask_shape"]), dtype=bool)
    mask[ds["i"].values, ds["j"].values, ds["k"].values] = True
    return mask


def haxby_searchlight(*, radius_mm: float = 8.0, rdm_method: str = "correlation",
                      compare_method: str = "spearman", chunk_size: int = 1024,
                      progress: bool = False, client: Any = None,
                      path: str | Path | None = None) -> xr.Dataset:
    """Searchlight RSA of the Haxby slice with the category models (module docstring).

    Parameters
    ----------
    radius_mm : float, default 8.0
        Sphere radius (about 2 voxels in-plane; spheres hold up to 17 voxels in the slice).
    rdm_method : str, default "correlation"
        The sphere RDMs (any method of :func:`~rsa_bias.analysis.rsa.rdms.rdm`; the noisy
        ones use each sphere's precision from the residuals).
    compare_method : str, default "spearman"
        The comparison with the models (any of
        :func:`~rsa_bias.analysis.rsa.compare.compare_rdms`).
    chunk_size : int, default 1024
        Centres per chunk.
    progress : bool, default False
        Show progress bars.
    client : dask.distributed.Client or str, optional
        Run the chunks on a Dask cluster (default local threads).
    path : str or pathlib.Path, optional
        The ``haxby2001_pymvpa`` folder (default the shipped one).

    Returns
    -------
    xarray.Dataset
        ``score(model, centre)`` and ``face_house_crossnobis(centre)`` with centre coords
        ``voxel``, ``i``, ``j``, ``k``, ``n_voxels`` and the attrs of ``searchlight_rsa``
        (geometry included).
    """
    from rsa_bias.brain.haxby import load_haxby

    ds = load_haxby(path)
    affine = np.asarray(ds.attrs["affine"], dtype=float).reshape(4, 4)
    spheres = searchlight_spheres(_mask(ds), affine, radius_mm=radius_mm)
    ids = ds["stimulus"].values
    models = xr.concat([face_vs_house_model(ids).expand_dims(model=["face_vs_house"]),
                        ds["model_rdm"]], dim="model")
    noise = {"residuals": ds["residual"], "dof": int(ds["residual_dof"].sum())}
    opts = {"spheres": spheres, "chunk_size": chunk_size, "progress": progress,
            "client": client}
    result = searchlight_rsa(ds["response"], models, rdm_method=rdm_method,
                             compare_method=compare_method, **opts,
                             **(noise if rdm_method in ("mahalanobis", "crossnobis") else {}))
    d = searchlight_rdms(ds["response"], method="crossnobis", **noise, **opts)
    pair = int(np.flatnonzero((d["stimulus_i"].values == "face")
                              & (d["stimulus_j"].values == "house"))[0])
    result["face_house_crossnobis"] = d.isel(pair=pair).drop_vars(["stimulus_i", "stimulus_j"])
    result["face_house_crossnobis"].attrs = {"description": "crossnobis distance between the "
                                             "face and house patterns in each sphere "
                                             "(residual noise precision per sphere)"}
    return result


def run_haxby_searchlight(out_dir: str | Path, *, radius_mm: float = 8.0,
                          rdm_method: str = "correlation", compare_method: str = "spearman",
                          chunk_size: int = 1024, progress: bool = False, client: Any = None,
                          path: str | Path | None = None) -> dict[str, Path]:
    """Run :func:`haxby_searchlight` and write its results, maps and figure to ``out_dir``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for the files (created if missing).
    radius_mm, rdm_method, compare_method, chunk_size, progress, client, path
        As in :func:`haxby_searchlight`.

    Returns
    -------
    dict of str to pathlib.Path
        ``"results"`` (``haxby_searchlight.nc``), ``"nifti"`` (the ``face_vs_house`` score
        map, ``haxby_searchlight_face_vs_house.nii.gz``), ``"crossnobis_nifti"`` (the
        face-house crossnobis map) and ``"figure"`` (``haxby_searchlight.png``).
    """
    import matplotlib.pyplot as plt

    from rsa_bias.brain.haxby import load_haxby
    from rsa_bias.plotting import save_figure
    from rsa_bias.plotting.searchlight import plot_searchlight_map
    from rsa_bias.store import write_results

    out = Path(out_dir)
    result = haxby_searchlight(radius_mm=radius_mm, rdm_method=rdm_method,
                               compare_method=compare_method, chunk_size=chunk_size,
                               progress=progress, client=client, path=path)
    config = {"radius_mm": radius_mm, "rdm_method": rdm_method,
              "compare_method": compare_method, "dataset": "haxby2001_pymvpa"}
    result.attrs = {**provenance_attrs(config, method="haxby_searchlight"), **result.attrs,
                    "run_config_json": json.dumps(config)}
    paths = {"results": write_results(result, out / "haxby_searchlight.nc")}
    paths["nifti"] = write_nifti(searchlight_to_nifti(result, model="face_vs_house"),
                                  out / "haxby_searchlight_face_vs_house.nii.gz")
    cn = result["face_house_crossnobis"].expand_dims(model=["face_house_crossnobis"])
    cn.attrs = dict(result.attrs)
    paths["crossnobis_nifti"] = write_nifti(searchlight_to_nifti(cn),
                                             out / "haxby_searchlight_face_house_crossnobis"
                                                   ".nii.gz")
    ds = load_haxby(path)
    fig, axes = plt.subplots(2, 1, figsize=(7.0, 6.5))
    plot_searchlight_map(result, model="face_vs_house", dataset=ds, ax=axes[0],
                         title=f"face_vs_house model ({compare_method}, {rdm_method} RDMs, "
                               f"{radius_mm:g} mm)")
    plot_searchlight_map(cn.rename("score").to_dataset().assign_attrs(result.attrs),
                         dataset=ds, ax=axes[1], title="face-house crossnobis distance")
    paths["figure"] = save_figure(fig, out / "haxby_searchlight.png", bbox_inches="tight")
    return paths
