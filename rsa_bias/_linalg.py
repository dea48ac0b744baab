"""Small linear-algebra helpers shared by the analysis families and the simulated brains."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RANK_TOL = 1e-9  # singular values below RANK_TOL x max(largest, 1) count as zero


def orthonormal_columns(m: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the column space of ``m`` (``(n, rank)``; SVD, rank-revealing)."""
    if m.shape[1] == 0:
        return m
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    return u[:, s > RANK_TOL * max(float(s.max(initial=0.0)), 1.0)]


def project_out(m: np.ndarray, bases: Sequence[np.ndarray]) -> np.ndarray:
    """``m`` with the span of each orthonormal basis in ``bases`` removed, one after another."""
    for q in bases:
        m = m - q @ (q.T @ m)
    return m


def unit_rows(m: np.ndarray, what: str, *, in_place: bool) -> np.ndarray:
    """Rows of ``m`` scaled to unit length; a zero row raises, naming the ``what`` distance
    (``"correlation"`` for centred rows, whose zero means a constant pattern, or ``"cosine"``)."""
    norms = np.sqrt(np.einsum("ij,ij->i", m, m))
    if np.any(norms == 0):
        bad = np.flatnonzero(norms == 0)
        raise ValueError(f"{what} distance is undefined for {bad.size} stimuli whose pattern "
                         f"is {'constant' if what == 'correlation' else 'all zero'} (positions "
                         f"{bad[:5].tolist()}); drop them or use method='sqeuclidean'")
    if in_place:
        m /= norms[:, None]
        return m
    return m / norms[:, None]


def squared_distances(xc: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows, clipped at 0 with an exact zero diagonal."""
    gram = xc @ xc.T
    norms = np.diag(gram).copy()
    d = norms[:, None] + norms[None, :] - 2.0 * gram
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d
