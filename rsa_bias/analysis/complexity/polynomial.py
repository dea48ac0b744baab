"""Mean polynomial order of a function sampled on a grid (Teney et al. 2024, Neural Redshift).

Each function is fitted by least squares on the tensor-product Legendre basis
``P_i(x) P_j(y)``, ``0 <= i, j <= max_order`` (``P_i(x)`` in 1-D), the grid coordinates being
``numpy.linspace(-1, 1, n)`` along each axis; the measure is the magnitude-weighted mean total
order of the coefficients other than the constant ``c_00``,

    p = Σ_{(i,j)≠(0,0)} |c_ij| (i + j) / Σ_{(i,j)≠(0,0)} |c_ij| / (2 max_order)

(``/ max_order`` in 1-D), in [0, 1]. The fit is one shared pseudo-inverse — the Kronecker
product of the per-axis ones, which is the pseudo-inverse of the tensor basis — applied to
all functions as a single matrix product. A constant function gives 0; ``P_3(x) P_2(y)``
gives ``5 / (2 max_order)``; white noise, whose coefficients are spread over all orders (a
little more on the high ones), about 0.55.
"""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr
from numpy.polynomial import legendre

from rsa_bias.analysis.complexity._grid import check_max_order, finish, grid_batch


@functools.lru_cache(maxsize=32)
def _legendre_pinv(shape: tuple[int, ...], max_order: int) -> tuple[np.ndarray, np.ndarray]:
    """The pseudo-inverse ``(n_coef, n_points)`` of the tensor Legendre basis on a ``shape``
    grid (raster order of points, C order of the coefficient indices) and the total order of
    each coefficient."""
    pinv = np.ones((1, 1))
    for n in shape:
        basis = legendre.legvander(np.linspace(-1.0, 1.0, n), max_order)  # (n, max_order+1)
        pinv = np.kron(pinv, np.linalg.pinv(basis))
    orders = np.arange(max_order + 1)
    total = sum(np.meshgrid(*([orders] * len(shape)), indexing="ij")).ravel().astype(float)
    pinv.setflags(write=False)
    total.setflags(write=False)
    return pinv, total


def polynomial_order(values: np.ndarray | xr.DataArray, *, ndim: int = 2, max_order: int = 10
                     ) -> np.ndarray | float | xr.DataArray:
    """Mean Legendre polynomial order of functions sampled on a grid, in [0, 1].

    Least-squares coefficients on the tensor-product Legendre basis up to ``max_order`` per
    axis, and their magnitude-weighted mean total order without the constant term, divided by
    the largest total order (the formula is in the module docstring). One shared
    pseudo-inverse fits all functions at once.

    Parameters
    ----------
    values : array-like or xarray.DataArray, shape (..., n_y, n_x) or (..., n)
        The functions: the last ``ndim`` axes are a grid over ``numpy.linspace(-1, 1, n)``
        along each axis, any leading axes index the functions.
    ndim : {2, 1}, default 2
        How many trailing axes form the grid.
    max_order : int, default 10
        Highest Legendre order per axis; each grid axis needs at least ``max_order + 1``
        points for the fit to be determined.

    Returns
    -------
    numpy.ndarray, float or xarray.DataArray
        float64 of shape ``values.shape[:-ndim]``: 0 for a constant function, ``(i + j) /
        (2 max_order)`` for ``P_i(x) P_j(y)``, about 0.55 for white noise. A float when
        there are no leading axes; for a DataArray input, a DataArray over its leading dims
        (their coords kept), attrs recording the computation.

    Raises
    ------
    ValueError
        An ``ndim`` other than 1 or 2, a ``max_order`` that is not an integer >= 1, fewer
        than ``ndim`` axes, a grid axis with fewer than ``max_order + 1`` points, or complex,
        non-numeric, empty or NaN/inf values.

    Examples
    --------
    >>> import numpy as np
    >>> from numpy.polynomial.legendre import legval
    >>> x = np.linspace(-1, 1, 32)
    >>> field = legval(x, [0, 0, 1])[:, None] * legval(x, [0, 0, 0, 1])[None, :]
    >>> round(polynomial_order(field, max_order=10), 6)  # P_2(y) P_3(x): 5 / 20
    0.25
    >>> polynomial_order(np.full((32, 32), 2.0))
    0.0
    """
    max_order = check_max_order(max_order)
    grid = grid_batch(values, ndim, min_size=max_order + 1,
                      why=f"a Legendre fit up to max_order={max_order} needs at least "
                          f"{max_order + 1} points per axis: pass a smaller max_order or a "
                          "finer grid")
    pinv, total = _legendre_pinv(grid.flat.shape[1:], max_order)
    coef = np.abs(grid.flat.reshape(len(grid.flat), -1) @ pinv.T)
    coef[:, 0] = 0.0  # the constant c_00
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (coef @ total) / coef.sum(axis=1) / total[-1]
    out[grid.constant] = 0.0
    return finish(out, grid, "polynomial_order", ndim=ndim, max_order=max_order)
