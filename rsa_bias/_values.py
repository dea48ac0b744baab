"""Value validators shared by every analysis family: one for each kind of bad value.

Each refuses its kind at the boundary with an error that says what to do, so no measure
silently drops an imaginary part, returns NaN for an empty input, overflows to inf, or
reports an interval from a non-positive number of resamples:

* :func:`numeric_values` — complex, non-numeric (TypeError), empty and NaN/inf values of an array;
* :func:`check_count` — resample/permutation/split counts (positive integers);
* :func:`check_probabilities` — p-values and other numbers that must lie in [0, 1];
* :func:`safe_scale` / :func:`check_representable` — magnitudes whose squares or products
  leave the floating-point range: measures rescale the input by a power of two (exact) and
  refuse only a result that cannot be represented at all;
* :func:`check_positive_definite` — noise precisions (and other matrices used as metrics).
"""

from __future__ import annotations

import numbers

import numpy as np


def numeric_values(values, name: str, *, dtype=np.float64, finite: bool = True,
                   empty_ok: bool = False) -> np.ndarray:
    """``values`` as a real float array, refusing complex, non-numeric, empty and NaN/inf.

    Parameters
    ----------
    values : array-like
        The input values.
    name : str
        The argument's name in error messages.
    dtype : numpy dtype, default float64
        The float dtype of the result.
    finite : bool, default True
        Refuse NaN/inf (counted in the message).
    empty_ok : bool, default False
        Let empty arrays through (for callers whose own check names the empty dim).

    Returns
    -------
    numpy.ndarray
        The values as ``dtype``.
    """
    arr = np.asarray(values)
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} is {arr.dtype}; the measures are "
                         "defined for real values: pass its real part, modulus or stacked "
                         "(real, imag) parts")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} has non-numeric values ({arr.dtype}: {exc}); pass real "
                            "numbers") from None
    if arr.size == 0 and not empty_ok:
        raise ValueError(f"{name} is empty (shape {arr.shape}); it needs at least one "
                         "stimulus and one unit")
    out = np.asarray(arr, dtype=dtype)
    if finite and not np.all(np.isfinite(out)):
        bad = int(np.sum(~np.isfinite(out)))
        raise ValueError(f"{name} contains {bad} NaN/inf values; drop those stimuli/units or "
                         "impute them first")
    return out


def check_count(n, name: str, *, minimum: int = 1) -> int:
    """``n`` as an int, refusing non-integers (bools included) and values below ``minimum``.

    Parameters
    ----------
    n : int
        The count (bootstrap samples, permutations, splits, ...).
    name : str
        The argument's name in error messages.
    minimum : int, default 1
        The smallest valid count.

    Returns
    -------
    int
        ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {n!r}")
    if n < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {n}")
    return int(n)


def check_probabilities(p, name: str = "p", *, nan_ok: bool = False) -> np.ndarray:
    """``p`` as a float array of values in [0, 1] (NaN refused unless ``nan_ok``).

    Parameters
    ----------
    p : array-like
        p-values (or other probabilities); may be empty.
    name : str, default "p"
        The argument's name in error messages.
    nan_ok : bool, default False
        Let NaN through (a test that could not be computed).

    Returns
    -------
    numpy.ndarray
        ``p`` as float64.
    """
    arr = numeric_values(p, name, finite=False, empty_ok=True)
    bad = ~((arr >= 0) & (arr <= 1)) & ~(np.isnan(arr) if nan_ok else False)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} values outside [0, 1] (e.g. "
                         f"{arr[bad].ravel()[:3].tolist()}); p-values are probabilities")
    return arr


def safe_scale(values: np.ndarray, power: int = 2) -> float:
    """A power of two to divide ``values`` by so that degree-``power`` products stay in range.

    1.0 (no rescaling, so ordinary data are computed exactly as before) unless the largest
    magnitude is so large or so small that its ``power``-th power over- or underflows the
    dtype; then the power of two nearest to it. Dividing by a power of two is exact.

    Parameters
    ----------
    values : numpy.ndarray
        Finite float values.
    power : int, default 2
        Degree of the products the measure forms (2 for Gram matrices and squared distances;
        4 for HSIC, a product of two Gram matrices).

    Returns
    -------
    float
        The divisor.
    """
    info = np.finfo(values.dtype if values.dtype.kind == "f" else np.float64)
    top = float(np.max(np.abs(values), initial=0.0))
    if top == 0.0:
        return 1.0
    size = max(values.size, 1)
    limit_hi = (float(info.max) / (16 * size)) ** (1 / power)
    limit_lo = (float(info.tiny) * size) ** (1 / power) * 2**26
    if limit_lo <= top <= limit_hi:
        return 1.0
    return float(2.0 ** np.round(np.log2(top)))


def check_representable(result: np.ndarray, name: str, what: str) -> np.ndarray:
    """Refuse a result that over- or underflowed even after rescaling the input.

    Parameters
    ----------
    result : numpy.ndarray
        Values computed from finite inputs.
    name : str
        The input's name in error messages.
    what : str
        What was computed ("squared Euclidean distances", ...).

    Returns
    -------
    numpy.ndarray
        ``result``.
    """
    if not np.all(np.isfinite(result)):
        raise ValueError(f"the {what} of {name} overflow the floating-point range; divide "
                         f"{name} by a constant (e.g. its standard deviation) first")
    return result


def check_positive_definite(matrix: np.ndarray, name: str) -> np.ndarray:
    """Refuse a matrix (or diagonal vector) that is not symmetric positive (semi-)definite.

    Semi-definite matrices (a pseudo-inverse of a singular covariance) pass: they still
    define a (semi-)metric. Negative eigenvalues, or none above zero, are refused.

    Parameters
    ----------
    matrix : numpy.ndarray (p, p) or (p,)
        A precision or covariance matrix, or its diagonal.
    name : str
        The argument's name in error messages.

    Returns
    -------
    numpy.ndarray
        ``matrix``.
    """
    if matrix.ndim == 1:
        if np.any(matrix < 0) or not np.any(matrix > 0):
            raise ValueError(f"{name} (a diagonal precision) has {int(np.sum(matrix < 0))} "
                             "negative entries (or none above 0); a precision must be "
                             "positive definite — estimate it with noise_precision(residuals)")
        return matrix
    scale = float(np.max(np.abs(matrix), initial=0.0))
    if not np.allclose(matrix, matrix.T, rtol=1e-6, atol=1e-9 * scale):
        raise ValueError(f"{name} is not symmetric; a precision matrix must be (use "
                         f"({name} + {name}.T) / 2)")
    eig = np.linalg.eigvalsh(np.asarray(matrix, dtype=np.float64))
    if eig[0] < -1e-10 * scale or not eig[-1] > 0:  # semi-definite (a pseudo-inverse) is a metric
        raise ValueError(f"{name} is not positive definite (smallest eigenvalue {eig[0]:.3g}); "
                         "a precision must be — estimate it with noise_precision(residuals), "
                         "which shrinks it towards a diagonal")
    return matrix


def restore_scale(result: np.ndarray, log2_factor: int, name: str, what: str) -> np.ndarray:
    """Multiply a result computed on rescaled input back by ``2 ** log2_factor`` (exact).

    A result of degree ``k`` in its input (``d(c·x) = c^k · d(x)``) computed on
    ``values / scale`` comes back with ``log2_factor = k · log2(scale)``. Refuses (through
    :func:`check_representable`) a result that overflows, and one whose nonzero entries
    underflow to 0, which would silently read as "no difference".

    Parameters
    ----------
    result : numpy.ndarray
        The result on the rescaled input.
    log2_factor : int
        The power of two to multiply it by.
    name : str
        The input's name in error messages.
    what : str
        What was computed.

    Returns
    -------
    numpy.ndarray
        ``result`` in the units of the input.
    """
    if log2_factor == 0:
        return check_representable(result, name, what)
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(result, log2_factor)
    check_representable(out, name, what)
    if np.any((result != 0) & (out == 0)):
        raise ValueError(f"the {what} of {name} underflow to 0 in floating point; multiply "
                         f"{name} by a constant (e.g. 1 / its standard deviation) first")
    return out


def check_number(value, name: str, *, low: float = -np.inf, high: float = np.inf,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float, refusing non-numbers, NaN and values outside the range.

    Parameters
    ----------
    value : float
        The option's value.
    name : str
        The option's name in error messages.
    low, high : float, default -inf, inf
        The range.
    low_open, high_open : bool, default False
        Exclude the bound itself.

    Returns
    -------
    float
        ``value``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number; got {value!r}")
    v = float(value)
    below = v <= low if low_open else v < low
    above = v >= high if high_open else v > high
    if np.isnan(v) or below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}; got {value!r}")
    return v


def check_flag(value, name: str) -> bool:
    """``value`` as a bool, refusing strings and other non-bools (``"no"`` is truthy).

    Parameters
    ----------
    value : bool
        The option's value (``numpy.bool_`` and the ints 0/1 pass).
    name : str
        The option's name in error messages.

    Returns
    -------
    bool
        ``value``.
    """
    if isinstance(value, bool | np.bool_) or (isinstance(value, numbers.Integral)
                                               and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{name} must be True or False; got {value!r}")


def check_names(value, name: str, *, allow_empty: bool = False) -> list[str]:
    """A sequence of names as a list, refusing a bare string (which would be split into its
    characters) and, unless ``allow_empty``, an empty sequence.

    Parameters
    ----------
    value : sequence of str
        The names.
    name : str
        The option's name in error messages.
    allow_empty : bool, default False
        Accept an empty sequence.

    Returns
    -------
    list of str
        The names.
    """
    if isinstance(value, str | bytes):
        raise ValueError(f"{name} must be a list of names, not the string {value!r}; pass "
                         f"[{value!r}]")
    names = list(value)
    if not names and not allow_empty:
        raise ValueError(f"{name} is empty; pass at least one name (or omit it for all)")
    return names


def check_seed(seed, name: str = "seed") -> int | None:
    """A seed for ``numpy.random.default_rng``: None or an int in [0, 2**32).

    Parameters
    ----------
    seed : int or None
        The seed.
    name : str, default "seed"
        The option's name in error messages.

    Returns
    -------
    int or None
        ``seed``.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be None or an integer in [0, 2**32); got {seed!r}")
    return int(seed)
