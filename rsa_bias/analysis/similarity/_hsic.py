"""HSIC estimators and kernels behind :func:`~rsa_bias.analysis.similarity.cka`,
:mod:`~rsa_bias.analysis.similarity.cka_batches` and
:mod:`~rsa_bias.analysis.similarity.cka_inference`.

A representation is prepared once (:class:`_Rep`: centred features, or a centred /
zero-diagonal Gram matrix) and every HSIC between prepared representations is one
inner product; the formulas are in the docstring of :mod:`rsa_bias.analysis.similarity.cka`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rsa_bias._linalg import squared_distances
from rsa_bias.analysis._inputs import choose

# --- kernels -----------------------------------------------------------------------------------


def _linear_gram(xc: np.ndarray, bandwidth: float) -> np.ndarray:
    return xc @ xc.T


def _rbf_gram(xc: np.ndarray, bandwidth: float) -> np.ndarray:
    d = squared_distances(xc)
    median = float(np.median(d))
    if median <= 0:
        raise ValueError("rbf kernel: the median squared distance between stimuli is 0 (at least "
                         "half of the stimulus pairs coincide), so the median bandwidth is "
                         "undefined; use kernel='linear' or remove duplicate stimuli")
    return np.exp(-d / (2.0 * bandwidth**2 * median))


KERNELS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "linear": _linear_gram,
    "rbf": _rbf_gram,
}


# --- HSIC estimators on prepared representations -----------------------------------------------


@dataclass(frozen=True)
class _Rep:
    """One representation prepared for HSIC: centred features or a Gram matrix.

    ``gram`` is H K H for the biased estimator and K̃ (zero diagonal) for the
    unbiased one; ``rows`` = K̃1 and ``total`` = 1'K̃1 (unbiased only). In
    feature form (linear kernel, centred features) ``rows`` = −||x_i||².
    """

    n: int
    feats: np.ndarray | None = None
    gram: np.ndarray | None = None
    rows: np.ndarray | None = None
    total: float = 0.0


def _double_centre(gram: np.ndarray) -> np.ndarray:
    rows = gram.mean(axis=0)
    return gram - rows[:, None] - rows[None, :] + rows.mean()


def _biased_features(xc: np.ndarray) -> _Rep:
    return _Rep(xc.shape[0], feats=xc)


def _biased_gram(gram: np.ndarray) -> _Rep:
    return _Rep(gram.shape[0], gram=_double_centre(gram))


def _unbiased_features(xc: np.ndarray) -> _Rep:
    norms = np.einsum("ij,ij->i", xc, xc)
    return _Rep(xc.shape[0], feats=xc, rows=-norms, total=-float(norms.sum()))


def _unbiased_gram(gram: np.ndarray) -> _Rep:
    gram = gram.copy()
    np.fill_diagonal(gram, 0.0)
    rows = gram.sum(axis=1)
    return _Rep(gram.shape[0], gram=gram, rows=rows, total=float(rows.sum()))


def _biased_finish(a: _Rep, b: _Rep, inner: float) -> float:
    return inner / (a.n - 1) ** 2


def _unbiased_finish(a: _Rep, b: _Rep, inner: float) -> float:
    n = a.n
    rows = float(a.rows @ b.rows)
    return (inner + a.total * b.total / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / (n * (n - 3))


@dataclass(frozen=True)
class _Estimator:
    features: Callable[[np.ndarray], _Rep]
    gram: Callable[[np.ndarray], _Rep]
    finish: Callable[[_Rep, _Rep, float], float]
    min_stimuli: int


HSIC_ESTIMATORS: dict[str, _Estimator] = {
    "biased": _Estimator(_biased_features, _biased_gram, _biased_finish, 2),
    "unbiased": _Estimator(_unbiased_features, _unbiased_gram, _unbiased_finish, 4),
}


def _inner(a: _Rep, b: _Rep) -> float:
    """tr(K L) of the prepared (centred / zero-diagonal) Gram matrices."""
    if a.feats is not None and b.feats is not None:
        cross = a.feats.T @ a.feats if a is b else b.feats.T @ a.feats
        value = float(np.vdot(cross, cross))
        return value - float(a.rows @ b.rows) if a.rows is not None else value
    if a.gram is not None and b.gram is not None:
        return float(np.vdot(a.gram, b.gram))
    f, g = (a, b) if a.feats is not None else (b, a)
    # The zero diagonal of an unbiased K̃ makes the diag(k) correction vanish.
    return float(np.vdot(f.feats, g.gram @ f.feats))


def _hsic(a: _Rep, b: _Rep, hsic: str) -> float:
    return HSIC_ESTIMATORS[hsic].finish(a, b, _inner(a, b))


def _choose_form(kernel: str, n: int, p: int, q: int) -> str:
    """Feature space when it is cheaper (roughly: stimuli outnumber units), else Gram."""
    if kernel == "linear" and p * q + p * p + q * q <= n * (p + q):
        return "features"
    return "gram"


def _prepare(values: np.ndarray, *, kernel: str, hsic: str, bandwidth: float,
             form: str) -> _Rep:
    est = HSIC_ESTIMATORS[hsic]
    xc = values - values.mean(axis=0)
    if form == "features":
        if kernel != "linear":
            raise ValueError(f"the feature-space form needs kernel='linear', not {kernel!r}")
        return est.features(xc)
    return est.gram(KERNELS[kernel](xc, bandwidth))


def _validate(n: int, *, kernel: str, hsic: str, bandwidth: float) -> None:
    choose(KERNELS, kernel, "kernel")
    choose(HSIC_ESTIMATORS, hsic, "hsic estimator")
    need = HSIC_ESTIMATORS[hsic].min_stimuli
    if n < need:
        raise ValueError(f"hsic={hsic!r} needs at least {need} stimuli, got {n}"
                         + ("; use hsic='biased' for fewer" if hsic == "unbiased" else ""))
    if kernel == "rbf" and not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")


def _normalise(hxy: float, hxx: float, hyy: float, *, names: tuple[str, str] = ("x", "y"),
               strict: bool = True) -> float:
    """HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y)); each self-HSIC must be positive."""
    for value, name in ((hxx, names[0]), (hyy, names[1])):
        if not value > 0:
            if not strict:
                return float("nan")
            raise ValueError(
                f"HSIC({name}, {name}) = {value:.3g} is not positive, so CKA is undefined: "
                f"{name} is constant over stimuli, or (hsic='unbiased') there are too few "
                "stimuli to estimate its self-similarity; use more stimuli or hsic='biased'")
    return float(hxy / np.sqrt(hxx) / np.sqrt(hyy))


def _three_hsic(a: _Rep, b: _Rep, hsic: str) -> tuple[float, float, float]:
    return _hsic(a, b, hsic), _hsic(a, a, hsic), _hsic(b, b, hsic)


def _prepared_pair(xv: np.ndarray, yv: np.ndarray, *, kernel: str, hsic: str,
                   bandwidth: float, form: str | None = None) -> tuple[_Rep, _Rep]:
    _validate(xv.shape[0], kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    form = form or _choose_form(kernel, xv.shape[0], xv.shape[1], yv.shape[1])
    opts = {"kernel": kernel, "hsic": hsic, "bandwidth": bandwidth, "form": form}
    return _prepare(xv, **opts), _prepare(yv, **opts)


def _cka_arrays(xv: np.ndarray, yv: np.ndarray, *, kernel: str = "linear", hsic: str = "biased",
                bandwidth: float = 0.5, form: str | None = None, strict: bool = True) -> float:
    """CKA of aligned float arrays; ``form`` forces "features" or "gram" (default: cheaper)."""
    a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth, form=form)
    return _normalise(*_three_hsic(a, b, hsic), strict=strict)
