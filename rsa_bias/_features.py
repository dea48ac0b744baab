"""Reading the features of a labelled stimulus set and building their subspaces: shared by the
store, the analyses and the simulated brains."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from rsa_bias._linalg import orthonormal_columns, project_out


def feature_names(attrs: dict) -> list[str]:
    """``attrs["feature_names"]`` as a list (netCDF returns a one-element list as a str)."""
    names = attrs.get("feature_names", [])
    if isinstance(names, str):  # "" is how a file stores stimuli without feature labels
        return [names] if names else []
    return [str(n) for n in names]


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


def interaction_basis(columns: np.ndarray, before: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Orthonormal basis ``(n, dim)`` of the subspace of one feature or one conjunction.

    ``columns`` ``(n,)`` or ``(n, k)`` holds the values of the ``k`` features of a conjunction
    (``k = 1`` for a single feature). The subspace is the span of the centred indicators of
    their joint cells with every lower-order effect projected out — for ``"a:b:c"`` the span of
    the joint cells of ``{a, b}``, ``{a, c}`` and ``{b, c}`` (so all main effects and two-way
    interactions), as in an ANOVA — and then made orthogonal to the (mutually orthogonal)
    orthonormal bases in ``before``. An empty basis (``dim = 0``) means the feature spans
    nothing beyond them.
    """
    columns = columns.reshape(len(columns), -1)
    k = columns.shape[1]
    lower = [centred_onehot(columns[:, list(s)]) for s in itertools.combinations(range(k), k - 1)
             ] if k > 1 else []
    removed = [orthonormal_columns(np.hstack([*lower, *before]))] if lower or before else []
    return orthonormal_columns(project_out(centred_onehot(columns), removed))
