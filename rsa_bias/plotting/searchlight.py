"""A searchlight map (:func:`~rsa_bias.analysis.rsa.searchlight.searchlight_rsa`'s score per
centre) drawn in brain space with nilearn, through :func:`~rsa_bias.plotting.brain_maps.
plot_voxel_map`. nilearn and nibabel are imported only when the function runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from rsa_bias.analysis.rsa.searchlight import centre_space
from rsa_bias.plotting.brain_maps import plot_voxel_map


def _with_background(space: xr.Dataset, dataset: xr.Dataset | None) -> xr.Dataset:
    """The centres' space, with the dataset's ``mean_bold`` as the background when given."""
    if dataset is not None and "mean_bold" in dataset:
        shape = tuple(int(s) for s in space.attrs["mask_shape"])
        if dataset["mean_bold"].shape != shape:
            raise ValueError(f"dataset's mean_bold has shape {dataset['mean_bold'].shape}; the "
                             f"searchlight's mask is {shape}: pass the dataset it ran on")
        space["mean_bold"] = dataset["mean_bold"]
    return space


def plot_searchlight_map(result: xr.Dataset | xr.DataArray, *, model: Any = None,
                         dataset: xr.Dataset | None = None, title: str | None = None,
                         threshold: float | None = None, vmax: float | None = None,
                         cmap: str = "RdBu_r", n_cuts: int = 5, colorbar: bool = True,
                         ax: Any = None, figsize: tuple[float, float] = (6.0, 4.0)):
    """Draw a searchlight score map on axial slices of the mask's grid.

    Parameters
    ----------
    result : xarray.Dataset or xarray.DataArray
        The output of :func:`~rsa_bias.analysis.rsa.searchlight.searchlight_rsa` (or its
        ``score``), with the centre coords ``i``/``j``/``k`` and the attrs ``mask_shape`` and
        ``affine``.
    model : optional
        The model whose score to draw; required when there are several.
    dataset : xarray.Dataset, optional
        The dataset the searchlight ran on (e.g. :func:`~rsa_bias.brain.haxby.load_haxby`);
        its ``mean_bold`` is the background. Default no background.
    title : str, optional
        Figure title; default the model and the comparison method.
    threshold : float, optional
        Hide centres with ``|score| <= threshold`` (default: show all but exact zeros).
    vmax : float, optional
        Colour limit (symmetric); default ``max |score|``.
    cmap : str, default "RdBu_r"
        Matplotlib colour map.
    n_cuts : int, default 5
        Axial slices for a multi-slice mask.
    colorbar : bool, default True
        Draw a colour bar.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new Figure of ``figsize``.
    figsize : tuple of float, default (6.0, 4.0)
        Size in inches of the new Figure.

    Returns
    -------
    matplotlib.figure.Figure
        nilearn's axial display of the score at every centre (voxels that were no centre
        are left blank) over the background.

    Raises
    ------
    ValueError
        When ``result`` lacks the centre coords or geometry attrs, ``model`` is missing or
        unknown with several models, or ``dataset`` is on another grid.
    """
    score, attrs, space = centre_space(result)
    labels = score["model"].values.tolist() if "model" in score.dims else []
    if model is None and len(labels) > 1:
        raise ValueError(f"result has {len(labels)} models; choose one with model= ({labels})")
    if model is not None and model not in labels:
        raise ValueError(f"model {model!r} is not in the result; its models: {labels}")
    if labels:
        model = labels[0] if model is None else model
        score = score.sel(model=model)
    values = np.nan_to_num(np.asarray(score.values, dtype=float), nan=0.0)
    if title is None:
        title = f"{model if model is not None else 'score'} ({attrs.get('method', '')})"
    return plot_voxel_map(values, _with_background(space, dataset), title=title,
                          background="mean" if dataset is not None else None,
                          threshold=threshold, vmax=vmax, cmap=cmap, n_cuts=n_cuts,
                          colorbar=colorbar, ax=ax, figsize=figsize)
