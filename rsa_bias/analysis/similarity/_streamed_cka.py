"""Linear CKA and HSIC streamed over chunked (Dask-backed) representations.

For Dask-backed ``x`` (n × p) and ``y`` (n × q) — aligned on stimulus ids exactly as the
in-memory path aligns them — every term of both HSIC estimators of the linear kernel is a
feature-space reduction over the stimulus chunks (the formulas are in
:mod:`~rsa_bias.analysis.similarity.cka`). With Xc, Yc the centred inputs and
k_i = ||xc_i||², l_i = ||yc_i||² (the diagonals of K and L):

* tr(K H L H) = ||Xc'Yc||²_F, and likewise ||Xc'Xc||²_F, ||Yc'Yc||²_F;
* unbiased: tr(K̃L̃) = ||Xc'Yc||²_F − k·l, 1'K̃1 = −Σk and 1'K̃L̃1 = k·l (centred inputs),
  so HSIC_u = [||Xc'Yc||²_F − k·l + Σk Σl / ((n−1)(n−2)) − 2 k·l / (n−2)] / (n(n−3)).

Two passes over the data: the first for the column means, the largest magnitude (the same
power-of-two rescaling as the in-memory path) and a count of NaN/inf values; the second
for the sums above on chunks centred by those means, exactly as the in-memory path centres.
Chunks are cast to float64 inside the graph.

Memory: the second pass takes ``CHUNKS_AT_ONCE`` stimulus chunks at a time (rechunked to
span all units), computes their products Xc'Yc, Xc'Xc, Yc'Yc and row norms in one Dask
computation, and adds them to running sums: O(p q + p² + q²) floats per chunk in the round
(128 MB each for p = 4000 in float64) plus the chunks themselves, independent of n. Never an
n × n matrix. When y's stimuli are stored in another order than x's, each round reads the y
chunks that hold its rows (more reads, same memory).
With a ``dask.distributed`` Client active each round runs on its cluster. Only the linear
kernel streams: the others need the n × n Gram matrix.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from rsa_bias.analysis._inputs import (  # noqa: F401 - is_dask_backed re-used by cka.py
    ArrayLike,
    as_lazy_labelled,
    float64_rows,
    is_dask_backed,
    labelled_pair,
)
from rsa_bias.analysis.similarity._hsic import (
    _in_input_units,
    _normalise,
    _Rep,
    _validate,
)


def _chunks(x: xr.DataArray, name: str):
    """The float64 ``(stimulus, unit)`` Dask array of a labelled input (refusing complex,
    non-numeric, empty or more than 2-D values)."""
    import dask.array as da

    other = [d for d in x.dims if d != "stimulus"]
    if len(other) != 1:
        raise ValueError(f"{name} has dims {x.dims}; expected (stimulus, unit)"
                         + (f": select or stack the extra dims {other[1:]} first"
                            if other else ""))
    data = da.asarray(x.transpose("stimulus", *other).data)
    return float64_rows(data, name)


def _exponent(top: float, size: int, power: int = 8) -> int:
    """log2 of the power of two ``_values.safe_scale`` divides by (0: no rescaling), from the
    streamed largest magnitude; degree 8 as in ``_hsic._scaled_centred``."""
    info = np.finfo(np.float64)
    if top == 0.0:
        return 0
    limit_hi = (float(info.max) / (16 * size)) ** (1 / power)
    limit_lo = (float(info.tiny) * size) ** (1 / power) * 2**26
    return 0 if limit_lo <= top <= limit_hi else round(math.log2(top))


def _first_pass(data) -> tuple:
    """Per-unit sums, minima and maxima, the largest magnitude and the NaN/inf count."""
    import dask.array as da

    return (data.sum(axis=0), data.min(axis=0), data.max(axis=0), abs(data).max(),
            (~da.isfinite(data)).sum())


def _centred(data, first: tuple, name: str):
    """The chunks centred by the streamed mean (and rescaled), their exponent, and whether
    the input is constant over stimuli (it then centres to exact zeros, as in memory)."""
    total, low, high, top, bad = first
    if int(bad):
        raise ValueError(f"{name} contains {int(bad)} NaN/inf values; drop those "
                         "stimuli/units or impute them first")
    exponent = _exponent(float(top), data.size)
    scale = 2.0 ** exponent  # exact; 1 for all but extreme magnitudes
    mean = total / scale / data.shape[0]
    return data / scale - mean, exponent, bool(np.all(high == low))


def streamed_terms(a: xr.DataArray, b: xr.DataArray) -> dict:
    """Feature-space sums of Dask-backed ``a`` and ``b``, aligned on stimulus ids (two
    passes).

    Returns
    -------
    dict
        ``n``, the squared Frobenius norms ``xy``, ``xx``, ``yy`` of Xc'Yc, Xc'Xc, Yc'Yc,
        the row-norm sums ``kl``, ``kk``, ``ll``, ``k``, ``l`` (Σ k_i l_i, ..., Σ k_i) and the
        rescaling exponents ``ex``, ``ey``.
    """
    import dask

    xd, yd = _chunks(a, "x"), _chunks(b, "y")
    fx, fy = dask.compute(_first_pass(xd), _first_pass(yd))
    xc, ex, cx = _centred(xd, fx, "x")
    yc, ey, cy = _centred(yd, fy, "y")
    sums = _accumulated(xc, yc)
    out = {key: float(v) for key, v in sums.items()}
    owned = {"x": ("xy", "xx", "kl", "kk", "k"), "y": ("xy", "yy", "kl", "ll", "l")}
    for side, const in (("x", cx), ("y", cy)):  # a constant input centres to exact zeros
        if const:
            out.update(dict.fromkeys(owned[side], 0.0))
    return {**out, "n": xd.shape[0], "ex": ex, "ey": ey}


#: Chunks whose products are computed at once (in parallel, on the Dask scheduler in use):
#: memory holds this many per-chunk (p, p), (p, q), (q, q) products and the running sums,
#: whatever the number of chunks.
CHUNKS_AT_ONCE = 2


def _block_terms(u: np.ndarray, v: np.ndarray) -> dict:
    """One chunk's products and row-norm sums."""
    k, l = np.einsum("ij,ij->i", u, u), np.einsum("ij,ij->i", v, v)
    return {"xy": u.T @ v, "xx": u.T @ u, "yy": v.T @ v, "kl": k @ l, "kk": k @ k,
            "ll": l @ l, "k": k.sum(), "l": l.sum()}


def _accumulated(xc, yc) -> dict:
    """The streamed sums, :data:`CHUNKS_AT_ONCE` chunks at a time: each round is one Dask
    computation (on a cluster when a Client is active) of those chunks' products, added to
    the running sums here. Memory is bounded by the round, whatever the number of chunks
    (one graph over all chunks, Dask's ``a.T @ b`` included, was seen to load chunks ahead
    and hold many per-chunk products: ~2 GB for p = 4000)."""
    import dask

    yc = yc.rechunk({0: xc.chunks[0]})
    xs, ys = xc.to_delayed().ravel(), yc.to_delayed().ravel()
    step = dask.delayed(_block_terms, pure=True)
    total: dict | None = None
    for start in range(0, len(xs), CHUNKS_AT_ONCE):
        parts = dask.compute(*[step(xs[i], ys[i]) for i in
                               range(start, min(len(xs), start + CHUNKS_AT_ONCE))])
        for part in parts:
            if total is None:
                total = part
            else:
                for key, value in part.items():
                    total[key] += value
    for key in ("xy", "xx", "yy"):
        total[key] = float(np.einsum("ij,ij->", total[key], total[key]))
    return total


def _hsic_of(t: dict, pair: str, hsic: str) -> float:
    """HSIC of the (rescaled) inputs ``pair`` ("xy", "xx" or "yy") from the streamed sums."""
    n = t["n"]
    if hsic == "biased":
        return t[pair] / (n - 1) ** 2
    rows = t[{"xy": "kl", "xx": "kk", "yy": "ll"}[pair]]  # 1'K̃L̃1 = k·l
    norms = {"x": "k", "y": "l"}
    totals = t[norms[pair[0]]] * t[norms[pair[1]]]  # 1'K̃1 · 1'L̃1 = Σk Σl
    return (t[pair] - rows + totals / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / \
        (n * (n - 3))


def _checked(x, y, kernel: str, hsic: str, bandwidth: float) -> dict:
    a, b = labelled_pair(as_lazy_labelled(x, "x"), as_lazy_labelled(y, "y"))  # lazily
    _validate(a.sizes["stimulus"], kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    if kernel != "linear":
        raise ValueError(f"kernel={kernel!r} needs the n × n Gram matrix, which chunked (Dask) "
                         "input cannot stream; only kernel='linear' streams. Load the data "
                         "(x.compute()) or use kernel='linear'")
    return streamed_terms(a, b)


def streamed_cka(x: ArrayLike, y: ArrayLike, *, kernel: str, hsic: str,
                 bandwidth: float) -> float:
    """:func:`~rsa_bias.analysis.similarity.cka` of Dask-backed input, streamed."""
    t = _checked(x, y, kernel, hsic, bandwidth)
    return _normalise(_hsic_of(t, "xy", hsic), _hsic_of(t, "xx", hsic),
                      _hsic_of(t, "yy", hsic))


def streamed_hsic(x: ArrayLike, y: ArrayLike, *, kernel: str, hsic: str,
                  bandwidth: float) -> float:
    """:func:`~rsa_bias.analysis.similarity.hsic` of Dask-backed input, streamed."""
    t = _checked(x, y, kernel, hsic, bandwidth)
    return _in_input_units(_hsic_of(t, "xy", hsic), _Rep(t["n"], log2_scale=t["ex"]),
                           _Rep(t["n"], log2_scale=t["ey"]))
