"""Reading the features of a labelled stimulus set: shared by the store, the analyses and the
simulated brains."""

from __future__ import annotations

import numpy as np


def feature_names(attrs: dict) -> list[str]:
    """``attrs["feature_names"]`` as a list (netCDF returns a one-element list as a str)."""
    names = attrs.get("feature_names", [])
    return [names] if isinstance(names, str) else [str(n) for n in names]


def joint_cells(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell of each row over the joint values of feature ``columns`` ``(n, k)`` (any dtype,
    strings too), and the first row of each cell; cells are numbered in sorted order."""
    ints = np.stack([np.unique(c, return_inverse=True)[1].ravel() for c in columns.T], axis=1)
    _, first, cell = np.unique(ints, axis=0, return_index=True, return_inverse=True)
    return cell.ravel(), first


def centred_onehot(columns: np.ndarray) -> np.ndarray:
    """Centred indicators ``(n, n_cells)`` of the joint cells of ``columns`` (``(n,)`` or
    ``(n, k)``): the design whose column space is the feature's (or conjunction's) subspace."""
    cell, _ = joint_cells(columns.reshape(len(columns), -1))
    onehot = np.eye(int(cell.max()) + 1)[cell]
    return onehot - onehot.mean(axis=0)
