"""Compressibility of a function as its Lempel-Ziv (1976) complexity (Teney et al. 2024).

A function is quantised into ``levels`` equal-width bins between its own minimum and maximum
(``levels = 2``: thresholded at its mid-range), read out as one symbol sequence in raster
order (row after row on a 2-D grid), and parsed into LZ76 phrases: each phrase is the
longest prefix of the rest of the sequence that already occurs starting earlier (overlap
allowed), plus one new symbol (Lempel & Ziv 1976; the counting of Kaspar & Schuster 1987,
in which ``0001101001000101`` has the 6 phrases ``0 · 001 · 10 · 100 · 1000 · 101``). The
measure is the phrase count divided by the mean phrase count of uniformly random sequences
of the same length and alphabet (32 sequences from a fixed seed, computed once per length
and alphabet): about 1 for noise, near 0 for a constant or a single step.

Quantising between a function's own extremes makes the measure invariant to adding a
constant and to multiplying by a positive number, like the Fourier and polynomial ones; for
integer tokens with ``levels`` at least their alphabet, distinct tokens stay distinct
symbols, so the phrase count is that of the token sequence itself.

How many levels: with ``levels = 2`` only one level set of a function reaches the sequence
(where it crosses its mid-range), so functions that cross it along the same curve get the
same complexity however they vary on either side, and smooth functions are ranked by the
shape of that one curve. More levels let the phrases follow how the function varies between
its extremes. The Neural Redshift config uses 8: over its random MLPs, the cell means of the
binary measure rank the cells reproducibly only in part (Spearman 0.61 between two halves of
the networks, 0.95 with 8 levels). The reference sequences are uniform over the alphabet, so
noise whose values are not uniform between its extremes lies below 1 when ``levels > 2``
(Gaussian noise about 0.75 with 8 levels: its outer bins are rare). The raster order breaks
neighbourhoods at every row end, but with 8 levels a boustrophedon scan changes the measure's
Spearman agreement with the Fourier and polynomial ones over that sweep by less than 0.01 and
a Hilbert-curve scan lowers it by 0.04-0.05 (a Hilbert scan helps only the binary measure),
so the raster order of the definition is kept.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias._values import numeric_values
from rsa_bias.analysis.complexity._grid import Grid, check_levels, finish, grid_batch

#: Random sequences averaged for the normalisation, and their seed.
N_REFERENCE, REFERENCE_SEED = 32, 0


def _phrases(seq: bytes) -> int:
    """The LZ76 phrase count of a byte string (see the module docstring)."""
    n = len(seq)
    if n == 0:
        return 0
    count, i = 1, 1
    while i < n:
        length, pos = 1, 0
        # grow the copied prefix while it occurs starting before i; an occurrence of a
        # longer prefix is one of the shorter, so each search resumes at the last hit
        while i + length <= n:
            pos = seq.find(seq[i:i + length], pos, i + length - 1)
            if pos < 0:
                break
            length += 1
        count += 1
        i += length
    return count


def lz76(sequence: Any) -> int:
    """Lempel-Ziv (1976) complexity: the number of phrases of a symbol sequence.

    Parameters
    ----------
    sequence : str, bytes or 1-D array-like of int
        The symbols; integers must lie in [0, 255] (quantise first, or use
        :func:`lz_complexity`).

    Returns
    -------
    int
        The phrase count (0 for an empty sequence, 1 for one symbol).

    Raises
    ------
    ValueError
        A multi-dimensional array or integers outside [0, 255].

    Examples
    --------
    >>> lz76("0001101001000101")
    6
    >>> lz76([0] * 100)
    2
    """
    if isinstance(sequence, bytes):
        return _phrases(sequence)
    if isinstance(sequence, str):
        return _phrases(sequence.encode("utf-8"))
    arr = numeric_values(sequence, "sequence", empty_ok=True)
    if arr.ndim != 1:
        raise ValueError(f"sequence must be 1-D; got shape {arr.shape} (use lz_complexity for "
                         "functions on a grid)")
    if arr.size and (np.any(arr != np.rint(arr)) or arr.min() < 0 or arr.max() > 255):
        raise ValueError("sequence must hold integers in [0, 255]; quantise it first (or "
                         "call lz_complexity, which quantises into `levels` bins)")
    return _phrases(arr.astype(np.uint8).tobytes())


@functools.lru_cache(maxsize=64)
def random_reference(length: int, levels: int) -> float:
    """Mean LZ76 phrase count of uniformly random sequences of ``length`` symbols.

    Parameters
    ----------
    length : int
        Sequence length.
    levels : int
        Alphabet size (each symbol drawn uniformly from ``0 .. levels - 1``).

    Returns
    -------
    float
        The mean over 32 sequences drawn from ``numpy.random.default_rng(0)``.
    """
    rng = np.random.default_rng(REFERENCE_SEED)
    draws = rng.integers(0, levels, size=(N_REFERENCE, length), dtype=np.uint8)
    return float(np.mean([_phrases(row.tobytes()) for row in draws]))


def quantise(grid: Grid, levels: int) -> np.ndarray:
    """Each function of ``grid`` as ``uint8`` symbols ``(n_functions, n_points)``: equal-width
    bins between its own minimum and maximum (a constant function is all 0)."""
    flat = grid.flat.reshape(len(grid.flat), -1)
    low = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - low
    span[span == 0] = 1.0
    return np.clip(np.floor((flat - low) / span * levels), 0, levels - 1).astype(np.uint8)


def lz_complexity(values: np.ndarray | xr.DataArray, *, ndim: int = 2, levels: int = 2
                  ) -> np.ndarray | float | xr.DataArray:
    """LZ76 compressibility of functions sampled on a grid, relative to random sequences.

    Each function is quantised into ``levels`` bins between its extremes, read in raster
    order, and its LZ76 phrase count (:func:`lz76`) divided by that of random sequences of
    the same length and alphabet (:func:`random_reference`).

    Parameters
    ----------
    values : array-like or xarray.DataArray, shape (..., n_y, n_x) or (..., n)
        The functions: the last ``ndim`` axes are the grid (or a token sequence, with
        ``ndim=1``), any leading axes index the functions.
    ndim : {2, 1}, default 2
        How many trailing axes form the grid.
    levels : int, default 2
        Quantisation bins (2 to 255): 2 thresholds at mid-range, which sees one level set
        of the function only (module docstring; the Neural Redshift config uses 8); for
        integer tokens, the vocabulary size.

    Returns
    -------
    numpy.ndarray, float or xarray.DataArray
        float64 of shape ``values.shape[:-ndim]``: about 1 for noise, near 0 for a constant
        or a single step. A float when there are no leading axes; for a DataArray input, a
        DataArray over its leading dims (their coords kept), attrs recording the computation.

    Raises
    ------
    ValueError
        An ``ndim`` other than 1 or 2, ``levels`` outside 2..255, fewer than ``ndim`` axes,
        a grid axis with fewer than 2 points, or complex, non-numeric, empty or NaN/inf
        values.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 64)
    >>> step = np.where(x[None, :] > 0, 1.0, 0.0).repeat(64, 0)
    >>> noise = np.random.default_rng(0).standard_normal((64, 64))
    >>> bool(lz_complexity(step) < 0.2), bool(0.9 < lz_complexity(noise) < 1.1)
    (True, True)
    """
    levels = check_levels(levels)
    if levels > 255:
        raise ValueError(f"levels must be at most 255 (one byte per symbol); got {levels}")
    grid = grid_batch(values, ndim)
    symbols = quantise(grid, levels)
    reference = random_reference(symbols.shape[1], levels)
    counts = np.array([_phrases(row.tobytes()) for row in symbols], dtype=np.float64)
    return finish(counts / reference, grid, "lz_complexity", ndim=ndim, levels=levels)
