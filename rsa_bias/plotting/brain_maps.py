"""Per-voxel scores drawn in brain space with nilearn. Each function returns the Figure.

nilearn and nibabel (and :mod:`rsa_bias.brain`) are imported only when a function runs, so
``import rsa_bias.plotting`` does not load them. Nothing is downloaded: the background is the
dataset's mean BOLD image (``mean_bold``, recorded by
:func:`~rsa_bias.brain.nifti.patterns_from_nifti`) or none at all, never a template atlas.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr


def _background(dataset: xr.Dataset, background: Any, affine: np.ndarray) -> Any:
    import nibabel as nib

    if background is None:
        return None
    if isinstance(background, str):
        if background != "mean":
            raise ValueError(f"background={background!r}; use 'mean' (the dataset's mean BOLD "
                             "image), None, or a nibabel image")
        if "mean_bold" not in dataset:
            return None
        return nib.Nifti1Image(np.asarray(dataset["mean_bold"].values, dtype=np.float32), affine)
    return background


def _axial_cuts(dataset: xr.Dataset, affine: np.ndarray, n_cuts: int) -> list[float]:
    """World z (mm) of up to ``n_cuts`` axial slices spread over the mask's slices.

    Each cut is the mean world z of the mask voxels in one voxel slice ``k``, mapped through
    the full affine, so a rotated (oblique) grid gets the height of the slice's voxels rather
    than that of one corner.
    """
    from nibabel.affines import apply_affine

    ijk = np.stack([dataset[c].values for c in ("i", "j", "k")], axis=1)
    z = apply_affine(affine, ijk)[:, 2]
    ks = np.unique(ijk[:, 2])
    picks = ks[np.unique(np.linspace(0, ks.size - 1, min(n_cuts, ks.size)).round().astype(int))]
    return [float(z[ijk[:, 2] == k].mean()) for k in picks]


def plot_voxel_map(values: xr.DataArray | np.ndarray, dataset: xr.Dataset, *,
                   title: str | None = None, background: Any = "mean",
                   threshold: float | None = None, vmax: float | None = None,
                   cmap: str = "RdBu_r", n_cuts: int = 5, colorbar: bool = True,
                   ax: Any = None, figsize: tuple[float, float] = (6.0, 4.0)):
    """Draw a per-voxel score on axial slices of the dataset's brain grid.

    The values are put back into the mask's brain space with
    :func:`~rsa_bias.brain.nifti.to_nifti` (voxels outside the mask are 0) and drawn with
    nilearn's ``plot_stat_map`` (axial cuts, no cross-hair), imported only now.

    Parameters
    ----------
    values : xarray.DataArray with dims ("voxel",), or numpy.ndarray
        A score per voxel aligned on the dataset's voxel ids (or a numpy vector in its
        voxel order), e.g. a face-minus-house t value per voxel. It must be finite: NaN or
        inf is refused (fill such voxels with 0 to hide them).
    dataset : xarray.Dataset
        Output of :func:`~rsa_bias.brain.nifti.patterns_from_nifti` or
        :func:`~rsa_bias.brain.haxby.load_haxby` (voxel coords ``i``/``j``/``k``,
        ``mask_shape``/``affine`` attrs, optional ``mean_bold``).
    title : str, optional
        Figure title.
    background : str, nibabel image or None, default "mean"
        ``"mean"`` (the mean BOLD image; none when the dataset has no ``mean_bold``),
        ``None`` (no background) or a nibabel image on any grid.
    threshold : float, optional
        Hide voxels with ``|value| <= threshold`` (default: show all non-zero).
    vmax : float, optional
        Colour limit (symmetric); default ``max |value|``.
    cmap : str, default "RdBu_r"
        Matplotlib colour map.
    n_cuts : int, default 5
        Number of axial slices for a multi-slice mask, spread over the mask's slices (a
        one-slice mask shows that slice).
    colorbar : bool, default True
        Draw a colour bar.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new Figure of ``figsize``.
    figsize : tuple of float, default (6.0, 4.0)
        Size in inches of the new Figure when no ``ax`` is given.

    Returns
    -------
    matplotlib.figure.Figure
        The Figure of ``ax`` (or a new one) holding nilearn's axial display: the cuts side
        by side, each the thresholded score over the background and labelled with its z
        coordinate, and optionally the colour bar.
    """
    from nilearn import plotting

    from rsa_bias.brain.nifti import to_nifti

    img = to_nifti(values, dataset, fill=0.0)
    data = img.get_fdata()
    if not np.all(np.isfinite(data)):
        raise ValueError("values contain NaN/inf; a voxel map needs finite values (fill them "
                         "with 0 to hide those voxels)")
    affine = img.affine
    fig = ax.figure if ax is not None else plt.figure(figsize=figsize)
    limit = float(np.max(np.abs(data))) if vmax is None else float(vmax)
    plotting.plot_stat_map(
        img, bg_img=_background(dataset, background, affine), display_mode="z",
        cut_coords=_axial_cuts(dataset, affine, n_cuts), figure=fig, axes=ax,
        title=title, colorbar=colorbar, cmap=cmap, draw_cross=False,
        threshold=1e-6 if threshold is None else threshold, vmax=limit if limit > 0 else None,
        annotate=True, black_bg=False)
    return fig
