"""Tables and brain maps written atomically: the CSV summaries of sweeps and comparisons, and
NIfTI images of voxel scores (through a temporary file renamed into place, as every store
writer)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from rsa_bias._atomic import atomic_path


def write_table(table: Any, path: str | Path) -> Path:
    """Atomically write a pandas DataFrame as CSV (no index column).

    Parameters
    ----------
    table : pandas.DataFrame
        The table.
    path : str or pathlib.Path
        The ``.csv`` file (missing folders are created, an existing file replaced).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return Path(path)


def write_nifti(img: Any, path: str | Path) -> Path:
    """Atomically write a nibabel image, gzip-compressed when ``path`` ends in ``.gz``.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        The image (e.g. :func:`rsa_bias.analysis.rsa.searchlight_to_nifti`).
    path : str or pathlib.Path
        The ``.nii`` or ``.nii.gz`` file (missing folders are created, an existing file
        replaced).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = img.to_bytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)
    return Path(path)
