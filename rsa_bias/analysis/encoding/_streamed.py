"""Kernels of the streamed ridge scores: per-fold sufficient statistics and their algebra.

Notation. For the rows of one fold ``f`` (``x`` (p,) a row of the design, ``y`` (t,) its
targets, both shifted by a common centre ``c`` — the mean of the first rows, or 0 without an
intercept) the statistics are ``n_f``, ``Σx``, ``Σy``, ``X'X`` (p, p), ``X'Y`` (p, t) and
``Σy²`` (t,), packed into one ``(p + 2, p + 1 + t)`` array

``[[n, Σx', Σy'], [Σx, X'X, X'Y], [0, 0, Σy²']]``

(the first ``p + 1`` rows are ``[1 x]' [1 x y]``). Statistics add over rows, so the training
statistics of fold ``f`` are the total minus fold ``f``'s, and those of the inner training
set of outer fold ``f`` and inner fold ``g`` the total minus both. Shifting by ``c`` changes no
centred quantity and keeps the analytic centring ``X'X − n μ μ'`` free of cancellation when
the data sit far from 0.

Dask is imported only inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rsa_bias.analysis._inputs import is_dask_backed  # noqa: F401 - used by streamed.py

SHIFT_ROWS = 64  # rows whose mean is the common centre of the statistics




def _block_sums(block: np.ndarray, shift: np.ndarray, *, k: int, p: int) -> np.ndarray:
    """Packed statistics ``(1, k, p + 2, p + 1 + t)`` of the folds' rows in one row block.

    ``block`` is ``(rows, p + t + 1)``: the design, the targets and the fold label (last);
    ``shift`` the centre of each column (0 for the label).
    """
    block = np.asarray(block, dtype=np.float64)
    labels = block[:, -1]
    values = block[:, :-1] - shift[:-1]
    t = values.shape[1] - p
    out = np.zeros((1, k, p + 2, p + 1 + t))
    for f in range(k):
        rows = values[labels == f]
        if rows.shape[0] == 0:
            continue
        aug = np.empty((rows.shape[0], p + 1 + t))
        aug[:, 0] = 1.0
        aug[:, 1:] = rows
        out[0, f, : p + 1] = aug[:, : p + 1].T @ aug
        out[0, f, p + 1, p + 1:] = np.einsum("ij,ij->j", rows[:, p:], rows[:, p:])
    return out


def fold_statistics(x, y, labels: np.ndarray, k: int, *, intercept: bool):
    """Lazy ``(k, p + 2, p + 1 + t)`` statistics of every fold (see the module docstring).

    Parameters
    ----------
    x : dask.array.Array (n, p)
        The design, chunked along rows (any dtype; cast to float64 block by block).
    y : dask.array.Array or numpy.ndarray (n, t)
        The targets, in the rows of ``x``.
    labels : numpy.ndarray (n,)
        The fold of each row, ``0..k-1``.
    k : int
        Number of folds.
    intercept : bool
        Shift by the mean of the first rows (else by 0, as the model has no intercept).

    Returns
    -------
    dask.array.Array
        The statistics, one Dask reduction (sum over row blocks) away.
    """
    import dask.array as da

    x = da.asarray(x).rechunk({1: -1})
    rows = x.chunks[0]
    y = da.asarray(y).rechunk((rows, -1))
    lab = da.from_array(labels.astype(np.float64)[:, None], chunks=(rows, 1))
    z = da.concatenate([x.astype(np.float64), y.astype(np.float64), lab], axis=1)
    z = z.rechunk({1: -1})
    p, n_cols = x.shape[1], z.shape[1] - 1
    if intercept:  # the label column (last) is not shifted
        shift = da.concatenate([z[:SHIFT_ROWS, :-1].mean(axis=0), da.zeros(1)])
    else:
        shift = da.zeros(n_cols + 1)
    shift = shift.rechunk(-1)
    t = n_cols - p
    sums = da.map_blocks(_block_sums, z, shift, k=k, p=p, dtype=np.float64,
                         chunks=((1,) * z.numblocks[0], (k,), (p + 2,), (p + 1 + t,)),
                         new_axis=[2, 3])
    return sums.sum(axis=0)


@dataclass
class Stats:
    """Unpacked statistics of a set of rows (shifted coordinates)."""

    n: float
    sx: np.ndarray
    sy: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray

    @classmethod
    def unpack(cls, s: np.ndarray, p: int) -> Stats:
        return cls(float(s[0, 0]), s[0, 1:p + 1], s[0, p + 1:], s[1:p + 1, 1:p + 1],
                   s[1:p + 1, p + 1:], s[p + 1, p + 1:])

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Means and centred ``X'X``, ``X'Y``, ``Σy²`` (about the rows' own means)."""
        mx, my = self.sx / self.n, self.sy / self.n
        return (mx, my, self.xx - self.n * np.outer(mx, mx),
                self.xy - self.n * np.outer(mx, my), self.yy - self.n * my * my)


@dataclass
class Fit:
    """A training set's ridge solutions for every alpha: ``W_α = V (Z / (ev + α))``."""

    basis: np.ndarray   # V (p, p)
    eigvals: np.ndarray  # ev (p,)
    proj: np.ndarray    # Z = V' Xc'Yc (p, t)
    mx: np.ndarray      # training means (0 without an intercept)
    my: np.ndarray


def fit(train: Stats, *, intercept: bool) -> Fit:
    """One eigendecomposition of the (centred) training ``X'X``, shared by every alpha."""
    if intercept:
        mx, my, cxx, cxy, _ = train.centred()
    else:
        mx, my = np.zeros_like(train.sx), np.zeros_like(train.sy)
        cxx, cxy = train.xx, train.xy
    ev, v = np.linalg.eigh(0.5 * (cxx + cxx.T))
    return Fit(v, np.maximum(ev, 0.0), v.T @ cxy, mx, my)


def held_out_sse(model: Fit, test: Stats, alphas: np.ndarray) -> np.ndarray:
    """``Σ (y − ŷ)²`` over the test rows, per alpha and target ``(a, t)``, from their statistics.

    With the test rows centred on their own means ``m``, ``m_y`` (``x̃``, ``ỹ``) and
    ``ŷ = (x − μx) W + μy``: ``y − ŷ = ỹ − x̃ W + δ`` with ``δ = m_y − μy − (m − μx) W``, so
    ``SSE = Σỹ² − 2 diag(W' X̃'Ỹ) + diag(W' X̃'X̃ W) + n δ²`` (the cross terms with δ vanish).
    """
    out = np.zeros((len(alphas), model.proj.shape[1]))
    if test.n == 0:
        return out
    m, m_y, cxx, cxy, cyy = test.centred()
    v = model.basis
    a_rot = v.T @ cxx @ v                      # X̃'X̃ in the eigenbasis
    b_rot = v.T @ cxy                          # X̃'Ỹ in the eigenbasis
    shift = (m - model.mx) @ v                 # (p,)
    for j, alpha in enumerate(alphas):
        g = model.proj / (model.eigvals + alpha)[:, None]   # V' W (p, t)
        delta = m_y - model.my - shift @ g
        out[j] = (cyy - 2.0 * np.einsum("ij,ij->j", g, b_rot)
                  + np.einsum("ij,ij->j", g, a_rot @ g) + test.n * delta * delta)
    return out


def cross_validated_sse(sums: np.ndarray, alphas: np.ndarray, *, intercept: bool
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Outer and inner held-out squared errors from the folds' statistics ``(k, ...)``.

    Returns
    -------
    outer : (k, a, t)
        ``outer[f]``: SSE on fold ``f`` of the model trained on all other folds.
    inner : (k, k, a, t)
        ``inner[f, g]`` (``g != f``): SSE on fold ``g`` of the model trained on the folds
        other than ``f`` and ``g``; zero on the diagonal.
    """
    k = sums.shape[0]
    p = sums.shape[1] - 2
    total = sums.sum(axis=0)
    folds = [Stats.unpack(s, p) for s in sums]
    t = folds[0].yy.shape[0]
    outer = np.stack([held_out_sse(fit(Stats.unpack(total - sums[f], p), intercept=intercept),
                                   folds[f], alphas) for f in range(k)])
    inner = np.zeros((k, k, len(alphas), t))
    for f in range(k):
        for g in range(f + 1, k):
            model = fit(Stats.unpack(total - sums[f] - sums[g], p), intercept=intercept)
            inner[f, g] = held_out_sse(model, folds[g], alphas)
            inner[g, f] = held_out_sse(model, folds[f], alphas)
    return outer, inner


def total_sum_of_squares(sums: np.ndarray) -> np.ndarray:
    """``Σ (y − ȳ)²`` over all rows, per target."""
    p = sums.shape[1] - 2
    return Stats.unpack(sums.sum(axis=0), p).centred()[4]


def best_index(see: np.ndarray, per_target: bool) -> np.ndarray:
    """Index of the alpha with the least squared error ``see`` (a, t), first on ties."""
    if per_target:
        return np.argmin(see, axis=0)
    return np.full(see.shape[1], int(np.argmin(see.sum(axis=1))))
