"""Per-voxel scores drawn in brain space with nilearn. Each function returns the Figure.

Nothing is downloaded: the background is the dataset's mean BOLD image (``mean_bold``,
recorded by :func:`~rsa_bias.brain.nifti.patterns_from_nifti`) or none at all, never a
template atlas.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from rsa_bias.brain.nifti import to_nifti


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

    Parameters
    ----------
    values : xarray.DataArray with dim ("voxel",), aligned on the dataset's voxel ids (or a
        numpy vector in its voxel order), e.g. a face-minus-house t value per voxel.
    dataset : output of :func:`~rsa_bias.brain.nifti.patterns_from_nifti` or
        :func:`~rsa_bias.brain.haxby.load_haxby` (voxel coords ``i``/``j``/``k``,
        ``mask_shape``/``affine`` attrs, optional ``mean_bold``).
    title : figure title.
    background : ``"mean"`` (the mean BOLD image, default), ``None`` (no background) or a
        nibabel image on any grid.
    threshold : hide voxels with ``|value| <= threshold`` (default: show all non-zero).
    vmax : colour limit (symmetric); default ``max |value|``.
    cmap : matplotlib colour map.
    n_cuts : number of axial slices for a multi-slice mask (a one-slice mask shows that
        slice).
    colorbar : draw a colour bar.
    ax : matplotlib Axes to draw into; default a new Figure of ``figsize``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

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
