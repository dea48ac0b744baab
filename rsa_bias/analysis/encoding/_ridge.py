"""Ridge kernels: one decomposition per fold, shared by every alpha and every target.

Notation. For a (centred) training design ``X`` (n, p) a *decomposition* is an
orthonormal basis ``B`` (n, k) of the row space, the eigenvalues ``ev`` (k,) of
``X X'`` on it, and ``W = X' B`` (p, k):

* primal (``n > p``): the thin SVD ``X = U S V'`` (or ``X'X = V S² V'``) gives ``B = U``,
  ``ev = s²``, ``W = V S``;
* dual (``p >= n``): the eigendecomposition ``X X' = Q Λ Q'`` gives ``B = Q``, ``ev = λ``,
  ``W = X' Q``.

Then, for every alpha and target, with ``Z = B' Y``:

* ridge coefficients ``β = W (Z / (ev + α))``;
* predictions on held-out rows ``X_te β = A (Z / (ev + α))`` with ``A = X_te W``;
* leave-one-out residuals ``(y − B (d ∘ Z))_i / (1 − h_ii)`` with ``d = ev / (ev + α)`` and
  ``h_ii = Σ_k B_ik² d_k (+ 1/n with an intercept)`` — the closed form used by
  scikit-learn's ``_RidgeGCV``.

Arrays are target-major (``Yt`` is (t, n)) so that per-target sums run along the
contiguous axis. The per-alpha products can run in float32; each one then also returns
an a-posteriori bound on the float32 error of the squared-error sum, which the caller
uses to re-check near-ties in float64 (so the chosen alphas are those of a float64
search).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

Array = Any  # numpy.ndarray or torch.Tensor


class NumpyBackend:
    """numpy / scipy (LAPACK via scipy, BLAS via numpy)."""

    name = "cpu"
    float32, float64 = np.float32, np.float64

    def asarray(self, a, dtype):
        return np.ascontiguousarray(a, dtype=dtype)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)

    def svd(self, a):
        u, s, vt = scipy.linalg.svd(a, full_matrices=False, check_finite=False)
        return u, s, vt

    def eigh(self, a):
        return scipy.linalg.eigh(a, check_finite=False)

    def clip_min(self, a, low: float):
        return np.maximum(a, low)

    def rows(self, a, idx: np.ndarray):
        return a[idx]

    def cols(self, a, idx: np.ndarray):
        return a[:, idx]

    def row_means(self, a):
        return a.mean(1, keepdims=True)


class TorchBackend:
    """torch on a given device; torch is imported here, only when this backend is built."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = self.device.type
        self.float32, self.float64 = torch.float32, torch.float64

    def asarray(self, a, dtype):
        if isinstance(a, self.torch.Tensor):
            return a.to(device=self.device, dtype=dtype).contiguous()
        return self.torch.as_tensor(np.ascontiguousarray(a), device=self.device).to(dtype)

    def to_numpy(self, a) -> np.ndarray:
        return a.detach().to("cpu", self.torch.float64).numpy()

    def svd(self, a):
        return self.torch.linalg.svd(a, full_matrices=False)

    def eigh(self, a):
        return self.torch.linalg.eigh(a)

    def clip_min(self, a, low: float):
        return self.torch.clamp(a, min=low)

    def rows(self, a, idx: np.ndarray):
        return a[self.torch.as_tensor(np.asarray(idx), device=self.device)]

    def cols(self, a, idx: np.ndarray):
        return a[:, self.torch.as_tensor(np.asarray(idx), device=self.device)]

    def row_means(self, a):
        return a.mean(1, keepdim=True)


@dataclass
class Decomposition:
    """``B`` (n, k) orthonormal, ``ev`` (k,) eigenvalues of ``X X'``, ``W = X' B`` (p, k)."""

    basis: Array
    eigvals: Array
    weights: Array


# The primal basis comes from the eigendecomposition of X'X (p x p, about twice as fast as
# an SVD of X) when X is well conditioned: U = X V / s is then orthonormal to
# ~eps * cond(X)² <= 1e-10. Otherwise (or for wide X) from the SVD of X.
GRAM_MIN_EIGVAL_RATIO = 1e-6


def decompose(xp, x: Array, solver: str) -> Decomposition:
    """Decomposition of a (centred) float64 design ``x`` (n, p) by ``solver``."""
    if solver == "primal":
        if x.shape[0] >= x.shape[1]:
            ev, v = xp.eigh(x.T @ x)
            if float(ev.min()) > GRAM_MIN_EIGVAL_RATIO * float(ev.max()):
                s = ev ** 0.5
                return Decomposition((x @ v) / s, ev, v * s)
        u, s, vt = xp.svd(x)
        return Decomposition(u, s * s, vt.T * s)
    if solver == "dual":
        lam, q = xp.eigh(x @ x.T)
        return Decomposition(q, xp.clip_min(lam, 0.0), x.T @ q)
    raise ValueError(f"unknown solver {solver!r}; valid: ['primal', 'dual']")


@dataclass
class Fold:
    """One split: centred training decomposition, and the held-out projection ``A``.

    ``test`` is ``None`` for efficient leave-one-out on all rows.
    """

    train: np.ndarray
    test: np.ndarray | None
    dec: Decomposition
    test_proj: Array | None  # A = (X_te - mean_tr) W, (n_te, k)


# Probabilistic rounding-error analysis (Higham & Mary 2019, SIAM J. Sci. Comput. 41(5)):
# an inner product of length k in precision u errs by at most LAMBDA * sqrt(k) * u times
# Σ|a_i b_i|, except with probability < 2 exp(-LAMBDA² / 2) (~1e-8 for LAMBDA = 6); the
# worst case k * u is never approached in practice and would re-check most targets.
LAMBDA = 6.0


def _eps(dtype) -> float:
    return float(np.finfo(np.float32).eps) if "32" in str(dtype) else 0.0


def _gemm_err(k: int, eps: float) -> float:
    return LAMBDA * math.sqrt(k) * eps


def _stats(xp, neg_e, yg) -> list[np.ndarray]:
    """Per-target ``Σe²``, ``Σp``, ``Σp²``, ``Σp·yg`` of held-out predictions ``p = yg − e``.

    ``neg_e`` is ``−e`` (t, n), target-major; ``yg`` the targets minus their overall mean.
    Summing the predictions directly (not via Σe) keeps Pearson r accurate when they
    barely vary.
    """
    see = xp.to_numpy((neg_e * neg_e).sum(1))
    neg_e += yg
    out = [see] + [xp.to_numpy(v) for v in (neg_e.sum(1), (neg_e * yg).sum(1))]
    neg_e *= neg_e
    return [out[0], out[1], xp.to_numpy(neg_e.sum(1)), out[2]]


def _error_bound(see, err2, n: int, eps: float) -> np.ndarray:
    """Bound on |float32 Σe² − exact Σe²| from a bound ``err2`` on Σ δe_i²."""
    if eps == 0.0:
        return np.zeros_like(see)
    return 2.0 * (2 * np.sqrt(see * err2) + err2 + (math.log2(max(n, 2)) + 2) * eps * see)


def loo_search(xp, dec: Decomposition, yt: Array, yg: Array, alphas: np.ndarray, *,
               intercept: bool, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Efficient leave-one-out residual statistics for every alpha.

    Parameters
    ----------
    yt : (t, n) float64 targets, centred when ``intercept``.
    yg : (t, n) float64 targets minus their overall mean.

    Returns
    -------
    stats : (4, n_alphas, t) ``Σe²``, ``Σp``, ``Σp²``, ``Σp·yg`` of the LOO residuals ``e``
        and predictions ``p = yg − e``.
    bound : (n_alphas, t) bound on the rounding error of ``Σe²`` (0 in float64).
    """
    b, ev = dec.basis, dec.eigvals
    n, k = b.shape
    eps = _eps(dtype)
    zt = yt @ b                                     # (t, k), float64
    b2 = b * b
    row_norm2 = b2.sum(1)
    bs, ys, zs = xp.asarray(b.T, dtype), xp.asarray(yt, dtype), xp.asarray(zt, dtype)
    ygs = ys if yg is yt else xp.asarray(yg, dtype)
    y_norm2 = xp.to_numpy((yt * yt).sum(1))
    z2 = zt * zt
    stats = np.empty((4, len(alphas), yt.shape[0]))
    bound = np.zeros((len(alphas), yt.shape[0]))
    for j, alpha in enumerate(alphas):
        d = ev / (ev + alpha)
        h = b2 @ d + (1.0 / n if intercept else 0.0)
        w = 1.0 / (1.0 - h)
        neg_e = (zs * xp.asarray(d, dtype)) @ bs
        neg_e -= ys
        neg_e *= xp.asarray(w, dtype)
        stats[:, j] = _stats(xp, neg_e, ygs)
        if eps:
            w2 = xp.to_numpy(w * w)
            dz2 = xp.to_numpy(z2 @ (d * d))
            err2 = 2 * _gemm_err(k, eps) ** 2 * dz2 * float(w2 @ xp.to_numpy(row_norm2))
            err2 += 8 * eps**2 * float(w2.max()) * y_norm2
            bound[j] = _error_bound(stats[0, j], err2, n, eps)
    return stats, bound


def kfold_search(xp, fold: Fold, yt_train: Array, yt_test: Array, yg_test: Array,
                 alphas: np.ndarray, *, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Held-out residual statistics of one fold for every alpha (see :func:`loo_search`).

    ``yt_train`` and ``yt_test`` (t, n_tr / n_te) are centred by the training mean when
    an intercept is fitted; ``yg_test`` is ``yt_test`` minus the overall target mean.
    """
    ev, a = fold.dec.eigvals, fold.test_proj
    k = ev.shape[0]
    eps = _eps(dtype)
    zt = yt_train @ fold.dec.basis                     # (t, k), float64
    a_s, ys, ygs = (xp.asarray(v, dtype) for v in (a.T, yt_test, yg_test))
    a_norm2 = float(xp.to_numpy((a * a).sum()))
    y_norm2 = xp.to_numpy((yt_test * yt_test).sum(1))
    z2 = zt * zt
    stats = np.empty((4, len(alphas), yt_test.shape[0]))
    bound = np.zeros((len(alphas), yt_test.shape[0]))
    for j, alpha in enumerate(alphas):
        g = 1.0 / (ev + alpha)
        neg_e = xp.asarray(zt * g, dtype) @ a_s
        neg_e -= ys
        stats[:, j] = _stats(xp, neg_e, ygs)
        if eps:
            c2 = xp.to_numpy(z2 @ (g * g))
            err2 = 2 * _gemm_err(k, eps) ** 2 * a_norm2 * c2 + 8 * eps**2 * y_norm2
            bound[j] = _error_bound(stats[0, j], err2, yt_test.shape[1], eps)
    return stats, bound


def ridge_coef(xp, dec: Decomposition, yt: Array, alpha: np.ndarray) -> Array:
    """Coefficients (t, p) for per-target ``alpha`` (t,) from a float64 decomposition."""
    zt = yt @ dec.basis                                  # (t, k)
    g = 1.0 / (dec.eigvals[None, :] + xp.asarray(alpha, xp.float64)[:, None])
    return (zt * g) @ dec.weights.T


def resolve_solver(solver: str, n_samples: int, n_features: int) -> str:
    """``"auto"``: the dual (kernel) form when features outnumber samples, else primal."""
    if solver == "auto":
        return "dual" if n_features > n_samples else "primal"
    return solver


def make_folds(xp, x: Array, splits: list[tuple[np.ndarray, np.ndarray]] | None, *,
               intercept: bool, solver: str) -> list[Fold]:
    """One decomposition per training set (``splits=None``: one for leave-one-out)."""
    n, p = x.shape
    if splits is None:
        dec = decompose(xp, x, resolve_solver(solver, n, p))
        return [Fold(np.arange(n), None, dec, None)]
    folds = []
    for train, test in splits:
        x_tr = xp.rows(x, train)
        mean = x_tr.mean(0) if intercept else 0.0
        dec = decompose(xp, x_tr - mean, resolve_solver(solver, len(train), p))
        folds.append(Fold(train, test, dec, (xp.rows(x, test) - mean) @ dec.weights))
    return folds


def search(xp, folds: list[Fold], yt: Array, alphas: np.ndarray, *, intercept: bool,
           dtype, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out residual statistics of every alpha and target, summed over folds.

    ``yt`` (t, n) float64 is centred when ``intercept``. Returns ``stats`` (4, a, t):
    ``Σe²``, ``Σp``, ``Σp²`` and ``Σp·(y − ȳ)`` of the held-out residuals ``e`` and
    predictions ``p = y − ȳ − e`` over all rows, and the float32 error bound on ``Σe²``
    (a, t).
    """
    t, n = yt.shape
    stats = np.zeros((4, len(alphas), t))
    bound = np.zeros((len(alphas), t))
    for start in range(0, t, chunk):
        sl = slice(start, min(start + chunk, t))
        y = yt[sl]
        yg = y if intercept else y - xp.row_means(y)
        for fold in folds:
            if fold.test is None:
                s, b = loo_search(xp, fold.dec, y, yg, alphas, intercept=intercept,
                                  dtype=dtype)
            else:
                y_tr, y_te = xp.cols(y, fold.train), xp.cols(y, fold.test)
                m_tr = xp.row_means(y_tr) * (1.0 if intercept else 0.0)
                s, b = kfold_search(xp, fold, y_tr - m_tr, y_te - m_tr, xp.cols(yg, fold.test),
                                    alphas, dtype=dtype)
            stats[:, :, sl] += s
            bound[:, sl] += b
    return stats, bound


def select(see: np.ndarray, bound: np.ndarray, per_target: bool
           ) -> tuple[np.ndarray, np.ndarray]:
    """Index of the best alpha per target (first on ties) and the targets to re-check.

    A target is re-checked when another alpha's squared error could be lower than the
    chosen one's within the float32 error bounds.
    """
    n_targets = see.shape[1]
    if not per_target:
        see, bound = see.sum(1, keepdims=True), bound.sum(1, keepdims=True)
    best = np.argmin(see, axis=0)
    cols = np.arange(see.shape[1])
    upper = see[best, cols] + bound[best, cols]
    rivals = see - bound <= upper
    rivals[best, cols] = False
    unsure = rivals.any(axis=0) & (bound.max(axis=0) > 0)
    if not per_target:
        return np.full(n_targets, best[0]), np.full(n_targets, unsure[0])
    return best, unsure
