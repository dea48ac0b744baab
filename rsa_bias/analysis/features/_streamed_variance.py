"""Feature variance explained streamed over chunked (Dask-backed) activations.

:func:`~rsa_bias.analysis.features.feature_variance_explained` needs only sufficient
statistics of the layer φ (see ``variance._from_statistics``): the fitting-split mean μ, the
cross-products A = X_fit'(Φ_fit − μ) and B = X_eval'(Φ_eval − μ) with the centred design X,
the total Σ_eval ||φ − μ||², and whether the layer is constant over the eval split. Here they
are computed as Dask reductions over the stimulus chunks, never loading the
``(stimulus, unit)`` array:

1. one pass for μ (column sums over the fit rows), the per-unit minimum and maximum over the
   eval rows (the dead-layer check) and a count of NaN/inf values;
2. one pass for A, B and the total, on chunks centred by μ exactly as the in-memory path
   centres, so the numbers agree with it to rounding (two reads of the data, for precision).

Each chunk is cast to float64 inside the graph and spans all units (rechunked if needed).
Memory: a few stimulus chunks per worker thread plus a few ``(n_columns, n_units)`` partial
sums, independent of n; the design (``n × n_columns``) stays in numpy.
With a ``dask.distributed`` Client active the reductions run on its cluster.

Dask is imported only inside the functions, so importing the package never loads it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rsa_bias.analysis._inputs import (  # noqa: F401 - re-used by variance.py
    as_lazy_labelled,
    float64_rows,
    is_dask_backed,
)


def float64_chunks(phi: xr.DataArray, name: str = "activation"):
    """The ``(stimulus, unit)`` Dask array of a 2-D slice, cast to float64 chunk by chunk.

    Raises
    ------
    ValueError
        Complex or empty values.
    TypeError
        Non-numeric values.
    """
    import dask.array as da

    data = da.asarray(phi.transpose("stimulus", "unit").data)
    return float64_rows(data, name)


def refuse_nonfinite(count, name: str = "activation") -> None:
    """The in-memory path's NaN/inf error, from a streamed count of such values."""
    if int(count):
        raise ValueError(f"{name} contains {int(count)} NaN/inf values; drop those "
                         "stimuli/units or impute them first")


def _rows_like(values: np.ndarray, block):
    """A numpy ``(rows, k)`` array as a Dask array chunked along rows like ``block``."""
    import dask.array as da

    return da.from_array(values, chunks=(block.chunks[0], values.shape[1]))


def streamed_statistics(phi: xr.DataArray, fit: np.ndarray, ev: np.ndarray,
                        design: np.ndarray) -> dict:
    """Sufficient statistics of one ``(stimulus, unit)`` Dask-backed slice (two passes).

    Parameters
    ----------
    phi : xarray.DataArray
        Dask-backed activations with dims ("stimulus", "unit").
    fit, ev : numpy.ndarray of bool, shape (n,)
        The fitting and evaluation stimuli.
    design : numpy.ndarray, shape (n, n_columns)
        Design columns of all stimuli.

    Returns
    -------
    dict
        ``a``, ``b`` ``(n_columns, n_units)``, ``g_fit``, ``g_eval``
        ``(n_columns, n_columns)``, ``total`` (float) and ``dead`` (bool): the arguments of
        ``variance._from_statistics`` other than the groups.

    Raises
    ------
    ValueError
        Complex, empty or NaN/inf activations.
    """
    import dask
    import dask.array as da

    data = float64_chunks(phi)
    fit_idx, ev_idx = np.flatnonzero(fit), np.flatnonzero(ev)
    phi_fit, phi_eval = data[fit_idx], data[ev_idx]
    bad = (~da.isfinite(data)).sum()
    fit_sum, low, high, bad = dask.compute(phi_fit.sum(axis=0), phi_eval.min(axis=0),
                                           phi_eval.max(axis=0), bad)
    refuse_nonfinite(bad)
    mu = fit_sum / fit_idx.size
    fbar = design[fit].mean(axis=0)
    x_fit, x_eval = design[fit] - fbar, design[ev] - fbar
    p_fit, p_eval = phi_fit - mu, phi_eval - mu
    a, b, total = dask.compute(_rows_like(x_fit, p_fit).T @ p_fit,
                               _rows_like(x_eval, p_eval).T @ p_eval,
                               (p_eval * p_eval).sum())
    return {"a": a, "b": b, "g_fit": x_fit.T @ x_fit, "g_eval": x_eval.T @ x_eval,
            "total": float(total), "dead": not np.any(high - low > 0)}
