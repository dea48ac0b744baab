"""Representational dissimilarity matrices (RDMs) from labelled activity patterns.

Definitions follow ``rsatoolbox.rdm.calc_rdm`` (v0.3) so that results agree with
it to floating-point precision. For patterns ``x_i`` (one row per stimulus, ``P``
channels/units/voxels) and a noise precision ``Λ``:

============== ===================================================== =====================
method         dissimilarity d(i, j)                                 rsatoolbox name
============== ===================================================== =====================
sqeuclidean    ``||x_i - x_j||² / P``                                ``"euclidean"``
euclidean      ``sqrt(||x_i - x_j||² / P)``                          (none)
mahalanobis    ``(x_i - x_j)ᵀ Λ (x_i - x_j) / P``                    ``"mahalanobis"``
crossnobis     ``mean over folds (x_i - x_j)_trainᵀ Λ (x_i - x_j)_test / P`` ``"crossnobis"``
correlation    ``1 - pearson_r(x_i, x_j)``                           ``"correlation"``
cosine         ``1 - cos(x_i, x_j)``                                 (none; = scipy pdist)
============== ===================================================== =====================

Every distance except ``crossnobis`` is computed from the stimulus-by-stimulus
Gram matrix, i.e. one matrix product (GEMM), never a Python loop over pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias._linalg import unit_rows
from rsa_bias._values import (
    check_flag,
    check_positive_definite,
    numeric_values,
    restore_scale,
    safe_scale,
)
from rsa_bias.analysis._inputs import as_labelled, choose
from rsa_bias.analysis._rdm_vectors import (
    RDM_DIMS,
)
from rsa_bias.analysis.rsa.crossnobis import _crossnobis_gram, _one_channel_dim, _weigh, stack_runs
from rsa_bias.analysis.rsa.forms import condensed, squareform  # noqa: F401 - their earlier home
from rsa_bias.provenance import result_attrs

# --------------------------------------------------------------------------- kernels

def _gram(a: np.ndarray, b: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    """``a Λ bᵀ`` (``Λ`` = identity for ``None``, diagonal for a vector)."""
    if precision is None:
        return a @ b.T
    if precision.ndim == 1:
        return (a * precision) @ b.T
    return (a @ precision) @ b.T


def _from_gram(k: np.ndarray, n_channels: int, *, clip: bool) -> np.ndarray:
    """Squared distances ``(k_ii + k_jj - k_ij - k_ji) / P`` with an exact zero diagonal."""
    d = np.diag(k)
    out = (d[:, None] + d[None, :]) - (k + k.T)
    out /= n_channels
    np.fill_diagonal(out, 0.0)
    return np.maximum(out, 0.0, out=out) if clip else out


def _mean_pattern(x: np.ndarray) -> np.ndarray:
    return x[0] if x.shape[0] == 1 else x.mean(axis=0)


def _sqeuclidean(x: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    m = _mean_pattern(x)
    return _from_gram(_gram(m, m, None), m.shape[1], clip=True)


def _euclidean(x: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    return np.sqrt(_sqeuclidean(x, precision))


def _mahalanobis(x: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    if precision is None:
        raise ValueError("method='mahalanobis' needs noise=<precision matrix (unit x unit)>, "
                         "e.g. noise_precision(residuals); without noise use 'sqeuclidean'")
    m = _mean_pattern(x)
    return _from_gram(_gram(m, m, precision), m.shape[1], clip=True)


def _angular(u: np.ndarray) -> np.ndarray:
    """``1 - u uᵀ`` for unit rows; ``u @ u.T`` is one symmetric rank-k update (syrk)."""
    out = u @ u.T
    np.subtract(1.0, out, out=out)
    np.clip(out, 0.0, 2.0, out=out)  # round-off can leave |cos| a hair above 1
    np.fill_diagonal(out, 0.0)
    return out


def _correlation(x: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    m = _mean_pattern(x)
    centred = m - m.mean(axis=1, keepdims=True)
    return _angular(unit_rows(centred, "correlation", in_place=True))


def _cosine(x: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    return _angular(unit_rows(_mean_pattern(x), "cosine", in_place=False))


def _crossnobis(x: np.ndarray, precision: np.ndarray | None, counts=None) -> np.ndarray:
    """Leave-one-run-out crossnobis, all folds in one GEMM (see ``_crossnobis_gram``)."""
    return _from_gram(_crossnobis_gram(x, precision, counts), x.shape[2], clip=False)


_Kernel = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
_METHODS: dict[str, _Kernel] = {
    "euclidean": _euclidean,
    "sqeuclidean": _sqeuclidean,
    "mahalanobis": _mahalanobis,
    "crossnobis": _crossnobis,
    "correlation": _correlation,
    "cosine": _cosine,
}
_USES_NOISE = ("mahalanobis", "crossnobis")
#: How each method's distances scale with the patterns (d(c·x) = c^power · d(x)).
_SCALE_POWER = {"euclidean": 1, "sqeuclidean": 2, "mahalanobis": 2, "crossnobis": 2,
                "correlation": 0, "cosine": 0}
_DTYPES: dict[str, type] = {"float64": np.float64, "float32": np.float32}


# --------------------------------------------------------------------------- inputs

def _as_patterns(x: xr.DataArray | np.ndarray, runs: str | Sequence | np.ndarray | None,
                 ) -> xr.DataArray:
    """Any accepted input as a DataArray with dims ("run", "stimulus", <channel>)."""
    if runs is not None and not isinstance(runs, str):
        if not isinstance(x, xr.DataArray):
            raise ValueError("runs=<labels> needs a DataArray whose 'stimulus' coord labels each "
                             "row; for numpy use stack_runs(x, runs=..., stimulus_ids=...)")
        return stack_runs(as_labelled(x), runs=runs)
    if not isinstance(x, xr.DataArray):
        arr = np.asarray(x)
        if arr.ndim == 3:
            return xr.DataArray(arr, dims=("run", "stimulus", "unit"),
                                coords={"stimulus": np.arange(arr.shape[1])})
        return as_labelled(arr).expand_dims("run")
    x = as_labelled(x)
    run_dim = runs if runs is not None else ("run" if "run" in x.dims else None)
    if run_dim is not None and run_dim not in x.dims:
        raise ValueError(f"runs={run_dim!r} is not a dim of x (dims: {x.dims})")
    channel = _one_channel_dim(x, exclude=("stimulus", run_dim))
    if run_dim is None:
        return x.transpose("stimulus", channel).expand_dims("run")
    return x.transpose(run_dim, "stimulus", channel).rename({run_dim: "run"})


def _checked_values(x: xr.DataArray, dtype: type) -> np.ndarray:
    ids = x["stimulus"].values
    if len(np.unique(ids)) != len(ids):
        raise ValueError("stimulus ids repeat; for several runs per stimulus pass runs=<label "
                         "of each row> (or use stack_runs)")
    if len(ids) < 3:
        raise ValueError(f"an RDM needs at least 3 stimuli; x has {len(ids)}")
    values = numeric_values(x.values, "x", dtype=dtype, finite=False)
    if not np.all(np.isfinite(values.sum(axis=(0, 2)))):  # cheap test, exact check below
        bad = ~np.isfinite(values).all(axis=(0, 2))
        if bad.any():
            raise ValueError(f"x has NaN/inf in the patterns of {int(bad.sum())} stimuli "
                             f"(ids {ids[bad][:5].tolist()}); drop those stimuli "
                             "(x.drop_sel(stimulus=[...])) or impute them")
    if values.shape[2] < 1:
        raise ValueError("x has no channels (units); an RDM needs at least one")
    return values


def _checked_noise(noise: np.ndarray | xr.DataArray | None, n_channels: int, method: str,
                   dtype: type) -> np.ndarray | None:
    if noise is None:
        return None
    if method not in _USES_NOISE:
        raise ValueError(f"noise is used only by methods {list(_USES_NOISE)}, not {method!r}")
    prec = numeric_values(noise.values if isinstance(noise, xr.DataArray) else noise, "noise",
                          dtype=dtype, finite=False)
    if prec.shape not in ((n_channels,), (n_channels, n_channels)):
        raise ValueError(f"noise has shape {prec.shape}; expected a precision matrix "
                         f"({n_channels}, {n_channels}) or its diagonal ({n_channels},)")
    if not np.all(np.isfinite(prec)):
        raise ValueError("noise (precision) contains NaN/inf")
    return check_positive_definite(prec, "noise")


# --------------------------------------------------------------------------- public

def rdm(x: xr.DataArray | np.ndarray, *, method: str = "correlation",
        noise: np.ndarray | xr.DataArray | None = None,
        runs: str | Sequence | np.ndarray | None = None, remove_mean: bool = False,
        dtype: str = "float64", run_weights: str = "equal") -> xr.DataArray:
    """Representational dissimilarity matrix of a set of patterns.

    Definitions follow ``rsatoolbox.rdm.calc_rdm`` (v0.3); see the module docstring for
    the formula of each method.

    Parameters
    ----------
    x : xarray.DataArray or numpy.ndarray
        DataArray with dims ("stimulus", <channel>) or ("run", "stimulus", <channel>),
        where ``<channel>`` is any single dim (``unit``, ``voxel``, ``neuron``). numpy
        input is ``(stimulus, unit)`` or ``(run, stimulus, unit)`` with ids ``0..n-1``.
        At least 3 stimuli, no NaN/inf.
    method : str, default "correlation"
        ``"correlation"``, ``"cosine"``, ``"euclidean"``, ``"sqeuclidean"``,
        ``"mahalanobis"`` or ``"crossnobis"`` (see the module docstring for the formulas).
    noise : numpy.ndarray or xarray.DataArray, optional
        Precision matrix ``(P, P)`` (or its diagonal ``(P,)``) for ``mahalanobis``
        (required) and ``crossnobis`` (identity when omitted, i.e. the cross-validated
        squared Euclidean distance). Estimate it with
        :func:`~rsa_bias.analysis.rsa.crossnobis.noise_precision`. Refused by the other
        methods.
    runs : str or sequence, optional
        Name of the run dim (default ``"run"`` when present), or the run label of each
        row of a DataArray whose ``stimulus`` coord repeats (long format, see
        :func:`~rsa_bias.analysis.rsa.crossnobis.stack_runs`). Crossnobis
        cross-validates over runs (leave one run out, as rsatoolbox's
        ``cv_descriptor``); every other method averages the runs first.
    remove_mean : bool, default False
        Subtract each pattern's mean over channels first (as rsatoolbox's
        ``remove_mean``).
    dtype : {"float64", "float32"}, default "float64"
        Precision of the computation; ``"float32"`` is about twice as fast, with ~1e-6
        relative error.
    run_weights : {"equal", "rows"}, default "equal"
        How runs weigh where several are averaged (crossnobis: each fold's training mean):
        ``"equal"`` (default, unchanged: a run counts once whatever its repeats) or
        ``"rows"`` (by its rows, ``stack_runs``'s ``n_rows``, as rsatoolbox pools them).
        Formulas and why equal is the default: :mod:`rsa_bias.analysis.rsa.crossnobis`.

    Returns
    -------
    xarray.DataArray with dims ("stimulus_i", "stimulus_j")
        Symmetric with a zero diagonal; stimulus ids (and any other per-stimulus
        coords, suffixed ``_i``/``_j``) on both dims. Flat attrs record ``method``,
        ``remove_mean``, ``dtype``, ``noise``, ``run_weights``, ``n_runs``, ``n_channels``.

    See Also
    --------
    condensed : the upper-triangle vector form of the RDM.
    rsa_bias.analysis.rsa.compare.compare_rdms : compare RDMs.

    Notes
    -----
    Deliberate differences from ``rsatoolbox.rdm.calc_rdm``: stimuli keep their
    input order (rsatoolbox sorts them by descriptor); ``"euclidean"`` here is
    the square root of rsatoolbox's ``"euclidean"`` (which is squared; that one
    is ``"sqeuclidean"`` here); tiny negative round-off is clipped to 0 for the
    Euclidean/Mahalanobis distances; ``mahalanobis`` refuses ``noise=None``
    instead of silently using the identity; constant/zero patterns raise instead
    of giving NaN. Crossnobis averages leave-one-run-out folds like rsatoolbox (exactly,
    repeats within runs too, with ``run_weights="rows"``); "equal" is the mean over run pairs.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(5, 20))
    >>> d = rdm(x, method="euclidean")
    >>> d.dims, bool(np.allclose(d, d.T)), float(d[0, 0])
    (('stimulus_i', 'stimulus_j'), True, 0.0)

    Crossnobis needs patterns from at least two runs:

    >>> runs = np.random.default_rng(1).normal(size=(3, 5, 20))  # (run, stimulus, unit)
    >>> rdm(runs, method="crossnobis").shape
    (5, 5)
    """
    kernel = choose(_METHODS, method, "RDM method")
    check_flag(remove_mean, "remove_mean")
    np_dtype = choose(_DTYPES, dtype, "dtype")
    patterns = _as_patterns(x, runs)
    kernel = _weigh(kernel, patterns, method=method, run_weights=run_weights)
    values = _checked_values(patterns, np_dtype)
    precision = _checked_noise(noise, values.shape[2], method, np_dtype)
    if remove_mean:
        values = values - values.mean(axis=2, keepdims=True)
    scale = safe_scale(values)  # 1 unless squares would over- or underflow: then exact 2^k
    square = kernel(values / scale if scale != 1 else values, precision)
    square = restore_scale(square, _SCALE_POWER[method] * round(math.log2(scale)), "x",
                           f"{method} distances")
    config = {"method": method, "remove_mean": remove_mean, "dtype": dtype,
              "noise": "identity" if precision is None else "precision", "run_weights": run_weights,
              "n_runs": int(values.shape[0]), "n_channels": int(values.shape[2])}
    return _labelled_rdm(square, patterns, config)


def _labelled_rdm(square: np.ndarray, patterns: xr.DataArray,
                  config: dict[str, Any]) -> xr.DataArray:
    ids = patterns["stimulus"].values
    coords: dict[str, Any] = {"stimulus_i": ids, "stimulus_j": ids}
    for name, c in patterns.coords.items():
        if name != "stimulus" and c.dims == ("stimulus",):
            coords[f"{name}_i"] = ("stimulus_i", c.values)
            coords[f"{name}_j"] = ("stimulus_j", c.values)
    attrs = result_attrs("rdm", **config)
    return xr.DataArray(square, dims=RDM_DIMS, coords=coords, name="rdm", attrs=attrs)
