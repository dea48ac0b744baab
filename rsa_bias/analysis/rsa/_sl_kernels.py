"""Batched per-sphere RDM kernels of the searchlight, one chunk of centres at a time.

The patterns are prepared once for the whole mask (:class:`SearchlightState`), voxel-major so
that a sphere's are a gather of contiguous rows: the mean over runs for the methods that
average runs, the test patterns and leave-one-run-out training means for crossnobis (both are
voxel-wise linear in the runs, so a sphere's are the rows of its voxels). Within a chunk, the
spheres of equal voxel count are gathered into one ``(spheres, voxels, stimuli)`` array and
their Gram matrices come from one batched matrix product; the formulas are those of
:func:`~rsa_bias.analysis.rsa.rdms.rdm` (see its module docstring), sphere by sphere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_bias.analysis.rsa._spheres import SearchlightSpheres, equal_size_groups
from rsa_bias.analysis.rsa.compare import _compare_vectors

ANGULAR = ("correlation", "cosine")
NOISY = ("mahalanobis", "crossnobis")


@dataclass(eq=False)
class SearchlightState:
    """Everything a chunk needs, picklable (shipped once to Dask workers)."""

    spheres: SearchlightSpheres
    method: str
    patterns: np.ndarray              # voxel-major: (V, n) mean patterns; crossnobis (V, R, n)
    train: np.ndarray | None = None   # crossnobis: (V, R, n) training means of each fold
    folds: float = 1.0
    remove_mean: bool = False
    noise_diag: np.ndarray | None = None   # (V,) diagonal precision
    residuals: np.ndarray | None = None    # (V, T) centred residuals, voxel-major
    noise_method: str = "shrinkage_diag"
    dof: int = 1
    models: np.ndarray | None = None       # (k, m) model RDM vectors (searchlight_rsa)
    compare_kernel: object = None
    return_rdms: bool = True


def _centre_name(state: SearchlightState, row: int) -> str:
    ijk = state.spheres.ijk[state.spheres.centres[row]]
    return f"centre {row} (voxel i, j, k = {tuple(int(v) for v in ijk)})"


#: Values gathered at a time (patterns or residuals of a batch of spheres; bounds memory).
GATHER_LIMIT = 4_000_000


def _covariances(r: np.ndarray, method: str, dof: int) -> np.ndarray:
    """The covariance estimates of :mod:`~rsa_bias.analysis.rsa.crossnobis` (rsatoolbox's)
    for a batch of spheres' centred residuals ``r (B, n, p)``, one batched product each."""
    n, p = r.shape[1:]
    s_sum = r.transpose(0, 2, 1) @ r
    if method == "full":
        return s_sum / dof
    r2 = r * r
    s2_sum = r2.transpose(0, 2, 1) @ r2
    eye = np.eye(p, dtype=bool)
    if method == "shrinkage_eye":  # Ledoit & Wolf (2004)
        s = s_sum / n
        b2 = np.sum(s2_sum / n - s * s, axis=(1, 2)) / n
        m = np.trace(s, axis1=1, axis2=2) / p
        d2 = np.sum((s - m[:, None, None] * eye) ** 2, axis=(1, 2))
        b2 = np.minimum(d2, b2)
        shrunk = (b2 / d2 * m)[:, None, None] * eye + ((d2 - b2) / d2)[:, None, None] * s
        return shrunk * n / dof
    s = s_sum / dof  # shrinkage_diag: Schäfer & Strimmer (2005)
    var = np.einsum("bii->bi", s)
    std = np.sqrt(var)
    s_mean = s_sum / (std[:, :, None] * std[:, None, :]) / (n - 1)
    s2_mean = s2_sum / (var[:, :, None] * var[:, None, :]) / (n - 1)
    var_hat = n / dof**2 * (s2_mean - s_mean**2)
    off = ~eye
    lamb = np.clip(np.sum(var_hat * off, axis=(1, 2)) / np.sum(s_mean**2 * off, axis=(1, 2)),
                   0, 1)
    return s * (eye + (1 - lamb)[:, None, None] * off)


def _precisions(state: SearchlightState, rows: np.ndarray, members: np.ndarray):
    """``None``, diagonal ``(B, p)`` or full ``(B, p, p)`` precisions of the spheres."""
    if state.noise_diag is not None:
        return state.noise_diag[members]
    if state.residuals is None:
        return None
    b, p = members.shape
    out = np.empty((b, p, p))
    step = max(1, GATHER_LIMIT // (state.residuals.shape[1] * p))
    for lo in range(0, b, step):
        r = state.residuals[members[lo:lo + step]].transpose(0, 2, 1)  # (b', n, p)
        cov = _covariances(r, state.noise_method, state.dof)
        with np.errstate(all="ignore"):
            try:
                out[lo:lo + step] = np.linalg.inv(cov)
            except np.linalg.LinAlgError:  # find the singular one(s)
                for q, c in enumerate(cov):
                    try:
                        out[lo + q] = np.linalg.inv(c)
                    except np.linalg.LinAlgError:
                        out[lo + q] = np.nan
    bad = ~np.isfinite(out).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"the {state.noise_method!r} noise covariance of "
                         f"{_centre_name(state, rows[np.flatnonzero(bad)[0]])} is singular "
                         f"({p} voxels); use noise_method='shrinkage_diag' or more residuals")
    return out


def _from_gram(g: np.ndarray, p: int, *, clip: bool) -> np.ndarray:
    d = np.einsum("bii->bi", g)
    out = (d[:, :, None] + d[:, None, :]) - (g + g.transpose(0, 2, 1))
    out /= p
    return np.maximum(out, 0.0, out=out) if clip else out


def _group_rdms(state: SearchlightState, rows: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Square RDMs ``(B, n, n)`` of the spheres ``rows`` (voxels ``members (B, p)``)."""
    method, (b, p) = state.method, members.shape
    if method == "crossnobis":
        x = state.patterns[members]                           # (B, p, R, n)
        t = state.train[members]
        if state.remove_mean:
            x = x - x.mean(axis=1, keepdims=True)
            t = t - t.mean(axis=1, keepdims=True)
        n = x.shape[3]
        t = t.reshape(b, p, -1)
        prec = _precisions(state, rows, members)
        if prec is not None:
            t = t * prec[:, :, None] if prec.ndim == 2 else prec @ t  # Λ is symmetric
        g = t.reshape(b, -1, n).transpose(0, 2, 1) @ x.reshape(b, -1, n)
        g /= state.folds
        return _from_gram(g, p, clip=False)
    y = state.patterns[members]                               # (B, p, n), voxel-major
    if state.remove_mean or method == "correlation":
        y -= y.mean(axis=1, keepdims=True)
    if method in ANGULAR:
        norms = np.sqrt(np.einsum("bpn,bpn->bn", y, y))
        if np.any(norms == 0):
            k, s = np.argwhere(norms == 0)[0]
            what = "constant" if method == "correlation" else "all zero"
            raise ValueError(f"{method} distance is undefined in the sphere of "
                             f"{_centre_name(state, rows[k])}: the pattern of stimulus "
                             f"position {s} is {what} over its {p} voxels; raise min_voxels, "
                             "drop that stimulus or use method='sqeuclidean'")
        y /= norms[:, None, :]
        out = y.transpose(0, 2, 1) @ y
        np.subtract(1.0, out, out=out)
        return np.clip(out, 0.0, 2.0, out=out)
    prec = _precisions(state, rows, members)
    if prec is None:
        weighted = y
    else:
        weighted = y * prec[:, :, None] if prec.ndim == 2 else prec @ y
    out = _from_gram(weighted.transpose(0, 2, 1) @ y, p, clip=True)
    return np.sqrt(out, out=out) if method == "euclidean" else out


def chunk(state: SearchlightState, start: int, stop: int) -> tuple[int, int, dict]:
    """RDM vectors ``(stop - start, m)`` and/or model scores ``(k, stop - start)`` of the
    centres ``start:stop``."""
    iu = np.triu_indices(state.patterns.shape[-1], 1)
    vectors = np.empty((stop - start, iu[0].size))
    per_sphere = state.patterns.size // state.patterns.shape[0] * (
        2 if state.method == "crossnobis" else 1)
    for rows, members in equal_size_groups(state.spheres, start, stop):
        step = max(1, GATHER_LIMIT // (per_sphere * members.shape[1]))
        for lo in range(0, rows.size, step):
            part = slice(lo, lo + step)
            d = _group_rdms(state, rows[part], members[part])
            vectors[rows[part] - start] = d[:, iu[0], iu[1]]
    out = {}
    if state.models is not None:
        out["score"] = _compare_vectors(state.models, vectors, state.compare_kernel, None)
    if state.return_rdms:
        out["rdm"] = vectors
    return start, stop, out
