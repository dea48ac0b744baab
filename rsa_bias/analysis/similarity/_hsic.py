"""HSIC estimators and kernels behind :func:`~rsa_bias.analysis.similarity.cka`,
:mod:`~rsa_bias.analysis.similarity.cka_batches` and
:mod:`~rsa_bias.analysis.similarity.cka_inference`.

A representation is prepared once (:class:`_Rep`: centred features, or a centred /
zero-diagonal Gram matrix) and every HSIC between prepared representations is one
inner product; the formulas are in the docstring of :mod:`rsa_bias.analysis.similarity.cka`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from rsa_bias._linalg import squared_distances
from rsa_bias._values import restore_scale, safe_scale
from rsa_bias.analysis._inputs import (
    ArrayLike,
    align_to,
    canonical_order,
    choose,
    labelled_pair,
    stimulus_matrix,
)

# --- inputs ------------------------------------------------------------------------------------


def _values_in_id_order(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``(stimulus, unit)`` values of ``x`` and ``y``, aligned on stimulus ids and in
    ascending id order (numpy inputs, ids 0..n-1, keep theirs), so that seeded draws over
    stimuli do not depend on the row order of labelled input."""
    a, b = labelled_pair(x, y)
    a = canonical_order(a)
    return stimulus_matrix(a, "x"), stimulus_matrix(align_to(a, b, ("x", "y")), "y")


def _scaled_centred(values: np.ndarray, power: int = 8) -> tuple[np.ndarray, int]:
    """Centred ``values`` / 2**e with e chosen (by ``safe_scale``) so that degree-``power``
    products stay in the floating-point range; ``(centred, e)``.

    e = 0, and the values are centred exactly as before, unless they are so large or small
    that the products would over- or underflow; dividing by a power of two is exact. Inputs
    whose rows are all equal centre to exact zeros (the mean's rounding would leave a residue).

    HSIC multiplies two Gram matrices (degree 4) but sums ~n²·p·q such products, more than
    the n·p that ``safe_scale`` allows for; the default ``power=8`` (degree 4, squared)
    leaves room for any such sum (with power 4, ±1 data of magnitude 5e75 overflow).
    """
    exponent = 0
    scale = safe_scale(values, power)
    if scale != 1.0:
        values, exponent = values / scale, round(math.log2(scale))
    if np.all(values == values[:1]):
        return np.zeros_like(values), exponent
    xc = values - values.mean(axis=0)
    scale = safe_scale(xc, power)  # the spread itself may be extreme (a huge offset removed)
    if scale != 1.0:
        xc, exponent = xc / scale, exponent + round(math.log2(scale))
    return xc, exponent


# --- kernels -----------------------------------------------------------------------------------


def _linear_gram(xc: np.ndarray, bandwidth: float, name: str) -> np.ndarray:
    return xc @ xc.T


def _bandwidth_error(bandwidth: float, name: str, effect: str, cause: str,
                     result: str) -> ValueError:
    return ValueError(f"bandwidth {bandwidth:g} makes {effect} ({cause}, with σ² = bandwidth² × "
                      f"the median squared distance between the stimuli of {name}), so {result}; "
                      "use a bandwidth near 1 (σ a multiple of the median distance; the "
                      "default is 0.5)")


def _rbf_gram(xc: np.ndarray, bandwidth: float, name: str) -> np.ndarray:
    d = squared_distances(xc)
    if not np.any(d > 0):
        raise ValueError(f"{name} is constant over stimuli, so its RBF kernel is constant and "
                         "CKA is undefined")
    median = float(np.median(d))
    if median <= 0:
        raise ValueError("rbf kernel: the median squared distance between stimuli is 0 (at least "
                         "half of the stimulus pairs coincide), so the median bandwidth is "
                         "undefined; use kernel='linear' or remove duplicate stimuli")
    with np.errstate(over="ignore", under="ignore"):
        denominator = 2.0 * np.float64(bandwidth) ** 2 * median
        gram = np.exp(-d / denominator) if denominator > 0 else np.eye(d.shape[0])
    distinct = gram[d > 0]
    if not np.any(distinct > 0):
        raise _bandwidth_error(bandwidth, name, "every off-diagonal RBF kernel value 0",
                               "exp(-d²/(2σ²)) underflows", "the kernel is the identity")
    if np.all(distinct == 1.0):
        raise _bandwidth_error(bandwidth, name, "every RBF kernel value 1",
                               "d²/(2σ²) rounds to 0", "the kernel carries no information")
    return gram


KERNELS: dict[str, Callable[[np.ndarray, float, str], np.ndarray]] = {
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
    ``log2_scale`` e: the features are the input's / 2**e (linear kernel; see
    :func:`_scaled_centred`), so its Gram matrix is 2**(2e) times the one here.
    """

    n: int
    feats: np.ndarray | None = None
    gram: np.ndarray | None = None
    rows: np.ndarray | None = None
    total: float = 0.0
    log2_scale: int = 0


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
             form: str, name: str = "x") -> _Rep:
    est = HSIC_ESTIMATORS[hsic]
    xc, exponent = _scaled_centred(values)  # HSIC multiplies two Gram matrices: see there
    if form == "features":
        if kernel != "linear":
            raise ValueError(f"the feature-space form needs kernel='linear', not {kernel!r}")
        rep = est.features(xc)
    else:
        rep = est.gram(KERNELS[kernel](xc, bandwidth, name))
    # the RBF kernel is scale-free (its bandwidth follows the median distance)
    return rep if kernel == "rbf" or exponent == 0 else replace(rep, log2_scale=exponent)


def _validate(n: int, *, kernel: str, hsic: str, bandwidth: float) -> None:
    choose(KERNELS, kernel, "kernel")
    choose(HSIC_ESTIMATORS, hsic, "hsic estimator")
    need = HSIC_ESTIMATORS[hsic].min_stimuli
    if n < need:
        raise ValueError(f"hsic={hsic!r} needs at least {need} stimuli, got {n}"
                         + ("; use hsic='biased' for fewer" if hsic == "unbiased" else ""))
    real = isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool)
    if kernel == "rbf" and not (real and 0 < bandwidth < np.inf):
        raise ValueError(f"bandwidth must be a positive finite number (σ as a multiple of the "
                         f"median distance; values near 1 are typical), got {bandwidth!r}")


def _in_input_units(value: float, a: _Rep, b: _Rep) -> float:
    """HSIC(a, b) of the prepared (rescaled) representations, in the units of the inputs:
    × 2**(2 e_a + 2 e_b), refusing a result outside the floating-point range."""
    shift = 2 * (a.log2_scale + b.log2_scale)
    if shift == 0:
        return value
    return float(restore_scale(np.array(value), shift, "x and y", "kernel products (HSIC)"))


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
                   bandwidth: float, form: str | None = None,
                   names: tuple[str, str] = ("x", "y")) -> tuple[_Rep, _Rep]:
    _validate(xv.shape[0], kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    form = form or _choose_form(kernel, xv.shape[0], xv.shape[1], yv.shape[1])
    opts = {"kernel": kernel, "hsic": hsic, "bandwidth": bandwidth, "form": form}
    return _prepare(xv, **opts, name=names[0]), _prepare(yv, **opts, name=names[1])


def _cka_arrays(xv: np.ndarray, yv: np.ndarray, *, kernel: str = "linear", hsic: str = "biased",
                bandwidth: float = 0.5, form: str | None = None, strict: bool = True) -> float:
    """CKA of aligned float arrays; ``form`` forces "features" or "gram" (default: cheaper)."""
    a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth, form=form)
    return _normalise(*_three_hsic(a, b, hsic), strict=strict)
