"""Small linear-algebra helpers shared by the analysis and the simulated brains."""

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
