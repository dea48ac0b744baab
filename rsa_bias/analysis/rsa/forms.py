"""The two forms of an RDM: square ``(..., stimulus_i, stimulus_j)`` and condensed
``(..., pair)`` (the upper triangle, in scipy ``squareform`` order), and the conversions.

NaN dissimilarities pass through both conversions (they are missing values, which
:func:`~rsa_bias.analysis.rsa.compare.compare_rdms` drops); complex and inf values are
refused.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._values import numeric_values
from rsa_bias.analysis._rdm_vectors import PAIR_DIM, RDM_DIMS, triu_vectors, vectors_to_square


def _rdm_values(x, name: str) -> np.ndarray:
    """Real float values of RDM(s); NaN (missing) allowed, complex and inf refused."""
    values = numeric_values(x, name, finite=False, empty_ok=True)
    if np.isinf(values).any():
        raise ValueError(f"{name} contains inf dissimilarities; an RDM holds finite distances "
                         "(NaN marks a missing one)")
    return values


@legacy_call(renamed={"r": "x"})
def condensed(x: xr.DataArray | np.ndarray) -> xr.DataArray | np.ndarray:
    """Upper-triangle vector form of a square RDM (or stack), in scipy ``squareform`` order.

    Parameters
    ----------
    x : xarray.DataArray with dims (..., "stimulus_i", "stimulus_j"), or numpy.ndarray
        A square RDM or a stack of them (any leading dims, e.g. ``subject``); numpy
        input is ``(n, n)`` or ``(..., n, n)``.

    Returns
    -------
    xarray.DataArray with dims (..., "pair"), or numpy.ndarray
        For a DataArray: dims (..., "pair") with coords ``stimulus_i`` and
        ``stimulus_j`` on ``pair`` (pair ``(0, 1), (0, 2), ..., (n-2, n-1)``, as
        ``scipy.spatial.distance.squareform`` and rsatoolbox's ``get_vectors``); coords
        of the leading dims, the name and the attrs are kept. For numpy: the array
        ``(..., n(n-1)/2)``.

    See Also
    --------
    squareform : the inverse.

    Examples
    --------
    >>> import numpy as np
    >>> from rsa_bias.analysis import rdm
    >>> d = rdm(np.random.default_rng(0).normal(size=(4, 10)))
    >>> v = condensed(d)
    >>> v.dims, v.shape, v.stimulus_i.values.tolist(), v.stimulus_j.values.tolist()
    (('pair',), (6,), [0, 0, 0, 1, 1, 2], [1, 2, 3, 2, 3, 3])
    """
    r = x
    if not isinstance(r, xr.DataArray):
        arr = _rdm_values(r, "x")
        if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
            raise ValueError(f"expected square RDM(s) (..., n, n); got shape {arr.shape}")
        return triu_vectors(arr)
    if not set(RDM_DIMS) <= set(r.dims):
        raise ValueError(f"RDM has dims {r.dims}; expected (..., 'stimulus_i', 'stimulus_j')")
    lead = [d for d in r.dims if d not in RDM_DIMS]
    r = r.transpose(*lead, *RDM_DIMS)
    ids = r["stimulus_i"].values
    i, j = np.triu_indices(len(ids), 1)
    coords = {k: v for k, v in r.coords.items() if set(v.dims) <= set(lead)}
    coords.update(stimulus_i=(PAIR_DIM, ids[i]), stimulus_j=(PAIR_DIM, r["stimulus_j"].values[j]))
    return xr.DataArray(triu_vectors(_rdm_values(r.values, "x")), dims=(*lead, PAIR_DIM),
                        coords=coords, name=r.name, attrs=r.attrs)


@legacy_call(renamed={"v": "x"})
def squareform(x: xr.DataArray | np.ndarray) -> xr.DataArray | np.ndarray:
    """Inverse of :func:`condensed`: vector form (..., "pair") back to a square RDM.

    Parameters
    ----------
    x : xarray.DataArray with dims (..., "pair"), or numpy.ndarray
        Condensed RDM(s) in scipy ``squareform`` order. A DataArray needs a ``pair`` dim
        (the ``stimulus_i``/``stimulus_j`` coords on it, as :func:`condensed` writes them,
        give the stimulus ids; without them the ids are ``0..n-1``); numpy input is
        ``(..., n(n-1)/2)``.

    Returns
    -------
    xarray.DataArray with dims (..., "stimulus_i", "stimulus_j"), or numpy.ndarray
        numpy input gives ``(..., n, n)`` with a zero diagonal; a DataArray gives dims
        (..., "stimulus_i", "stimulus_j") labelled with the ids, keeping the coords of
        the leading dims, the name and the attrs.

    See Also
    --------
    condensed : the vector form.

    Examples
    --------
    >>> import numpy as np
    >>> from rsa_bias.analysis import rdm
    >>> d = rdm(np.random.default_rng(0).normal(size=(4, 10)))
    >>> back = squareform(condensed(d))
    >>> back.dims, bool(np.allclose(back, d))
    (('stimulus_i', 'stimulus_j'), True)
    >>> squareform(np.array([1.0, 2.0, 3.0])).tolist()
    [[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]]
    """
    v = x
    if not isinstance(v, xr.DataArray):
        arr = _rdm_values(v, "x")
        if arr.ndim < 1:
            raise ValueError(f"expected condensed RDM(s) (..., n(n-1)/2); got a scalar {arr!r}")
        return vectors_to_square(arr)
    if PAIR_DIM not in v.dims:
        raise ValueError(f"expected a '{PAIR_DIM}' dim (from condensed()); got dims {v.dims}")
    lead = [d for d in v.dims if d != PAIR_DIM]
    v = v.transpose(*lead, PAIR_DIM)
    square = vectors_to_square(_rdm_values(v.values, "x"))
    n = square.shape[-1]
    if "stimulus_i" in v.coords:
        ids = np.concatenate([v["stimulus_i"].values[:1], v["stimulus_j"].values[: n - 1]])
    else:
        ids = np.arange(n)
    coords = {k: c for k, c in v.coords.items() if set(c.dims) <= set(lead)}
    coords.update(stimulus_i=ids, stimulus_j=ids)
    return xr.DataArray(square, dims=(*lead, *RDM_DIMS), coords=coords, name=v.name,
                        attrs=v.attrs)
