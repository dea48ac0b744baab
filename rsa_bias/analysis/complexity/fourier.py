"""Mean spatial frequency of a function sampled on a grid (Teney et al. 2024, Neural Redshift).

The magnitude ``|F(k)|`` of the discrete Fourier transform over the grid axes weights each
frequency; frequencies are integer cycles per grid (``numpy.fft.fftfreq(n) * n``), their
radius ``|k| = sqrt(k_x² + k_y²)`` is rounded to the nearest integer, and the measure is the
magnitude-weighted mean radius bin over every frequency but the DC component,

    f = Σ_{k≠0} |F(k)| round(|k|) / Σ_{k≠0} |F(k)| / max_k round(|k|),

in [0, 1]. A sinusoid of k cycles across the grid gives ``k / max radius``; white noise,
whose spectrum is flat, about 0.5 (0.54 on a 2-D grid); only a checkerboard at the Nyquist
frequency reaches 1. A constant function has no spectrum besides DC and gives 0.

The DFT treats the grid as periodic, so a function whose opposite edges differ (a ramp, any
smooth non-periodic function) has a step at the wrap-around, whose slowly decaying spectrum
puts every smooth function near 0.2 on a 64 x 64 grid. ``boundary="mirror"`` measures the
even extension instead (the function and its mirror images along each grid axis, ``2n`` points
per axis: no wrap-around step, the spectrum of a cosine transform), which separates simple
functions from each other; the default ``"periodic"`` is the definition above.
"""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from rsa_bias.analysis.complexity._grid import Grid, finish, grid_batch

#: How the grid's edges are treated (module docstring).
BOUNDARIES = ("periodic", "mirror")

#: Functions transformed at once (bounds the memory of the complex spectra).
CHUNK = 512


@functools.lru_cache(maxsize=32)
def _radius_weights(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, float]:
    """Over the half spectrum of ``numpy.fft.rfftn`` of a ``shape`` grid: the rounded radius
    times each frequency's multiplicity in the full spectrum (2 for the columns whose mirror
    image rfftn leaves out), the multiplicity itself (0 at DC), and the largest radius bin."""
    cycles = [np.fft.fftfreq(n) * n for n in shape[:-1]]
    cycles.append(np.fft.rfftfreq(shape[-1]) * shape[-1])
    mesh = np.meshgrid(*cycles, indexing="ij")
    radius = np.rint(np.sqrt(sum(k**2 for k in mesh)))
    last = np.full(len(cycles[-1]), 2.0)
    last[0] = 1.0
    if shape[-1] % 2 == 0:
        last[-1] = 1.0  # the Nyquist column is its own mirror image
    mult = np.broadcast_to(last, radius.shape).copy()
    mult[(0,) * len(shape)] = 0.0  # the DC component is removed
    full = [np.abs(np.fft.fftfreq(n) * n) for n in shape]
    top = float(np.rint(np.sqrt(sum(np.max(k) ** 2 for k in full))))
    weighted = radius * mult
    weighted.setflags(write=False)
    mult.setflags(write=False)
    return weighted, mult, top


def _mirror(chunk: np.ndarray) -> np.ndarray:
    """``(m, *grid)`` functions with their mirror image appended along each grid axis."""
    for axis in range(1, chunk.ndim):
        chunk = np.concatenate([chunk, np.flip(chunk, axis=axis)], axis=axis)
    return chunk


def _mean_frequency(grid: Grid, boundary: str) -> np.ndarray:
    """The normalised magnitude-weighted mean radius of each function of ``grid``."""
    shape = grid.flat.shape[1:]
    if boundary == "mirror":
        shape = tuple(2 * n for n in shape)
    weighted, mult, top = _radius_weights(shape)
    axes = tuple(range(1, len(shape) + 1))
    out = np.zeros(len(grid.flat))
    for start in range(0, len(grid.flat), CHUNK):
        chunk = grid.flat[start:start + CHUNK]
        if boundary == "mirror":
            chunk = _mirror(chunk)
        magnitude = np.abs(np.fft.rfftn(chunk, axes=axes))
        num = np.tensordot(magnitude, weighted, axes=len(shape))
        den = np.tensordot(magnitude, mult, axes=len(shape))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + CHUNK] = num / den / top
    out[grid.constant] = 0.0
    return out


def fourier_frequency(values: np.ndarray | xr.DataArray, *, ndim: int = 2,
                      boundary: str = "periodic") -> np.ndarray | float | xr.DataArray:
    """Mean spatial frequency of functions sampled on a grid, in [0, 1].

    The magnitude-weighted mean of the rounded frequency radius over the DFT of each
    function (DC removed), divided by the largest radius bin of the grid (the formula is in
    the module docstring). Equal to the definition over the full ``numpy.fft.fftn``
    spectrum; computed on the half spectrum of ``rfftn`` with each frequency counted as often
    as it occurs in the full one. Vectorised over the functions.

    Parameters
    ----------
    values : array-like or xarray.DataArray, shape (..., n_y, n_x) or (..., n)
        The functions: the last ``ndim`` axes are an evenly spaced grid (over [-1, 1]²),
        any leading axes index the functions (thousands of random networks at once).
    ndim : {2, 1}, default 2
        How many trailing axes form the grid.
    boundary : {"periodic", "mirror"}, default "periodic"
        The DFT of the grid as it is, or of its even extension (no wrap-around step at
        the edges; module docstring).

    Returns
    -------
    numpy.ndarray, float or xarray.DataArray
        float64 of shape ``values.shape[:-ndim]``: 0 for a constant function, ``k / max
        radius`` for a sinusoid of k cycles on a periodic grid, about 0.5 for white noise.
        A float when there are no leading axes; for a DataArray input, a DataArray over its
        leading dims (their coords kept), attrs recording the computation.

    Raises
    ------
    ValueError
        An unknown ``boundary``, an ``ndim`` other than 1 or 2, fewer than ``ndim`` axes,
        a grid axis with fewer than 2 points, or complex, non-numeric, empty or NaN/inf values.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 64, endpoint=False)
    >>> stripes = np.stack([np.sin(np.pi * k * x)[None, :].repeat(64, 0) for k in (1, 4)])
    >>> np.round(fourier_frequency(stripes) * 45, 6)  # 45: the largest radius bin of 64 x 64
    array([1., 4.])
    >>> fourier_frequency(np.ones((64, 64)))
    0.0
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary {boundary!r}; valid: {list(BOUNDARIES)}")
    grid = grid_batch(values, ndim)
    return finish(_mean_frequency(grid, boundary), grid, "fourier_frequency", ndim=ndim,
                  boundary=boundary)
