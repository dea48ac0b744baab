"""Shape metrics beyond CKA: orthogonal Procrustes, CCA and SVCCA.

All take two representations of the same stimuli — xarray.DataArray
``("stimulus", "unit")`` (aligned on stimulus ids, mismatches refused) or
``(n, p)`` / ``(n, q)`` arrays; complex, empty and NaN/inf values are refused — and
centre each over stimuli first. All are scale-invariant: inputs so large or small
that their squares would over- or underflow are divided by a power of two (exact).

* :func:`procrustes_distance` — after centring and scaling to unit Frobenius
  norm, min over orthogonal Q of ||X − YQ||_F = sqrt(2 − 2 ||X'Y||_*), or the
  angle arccos ||X'Y||_* (Williams et al. 2021, a metric). Inputs with
  different numbers of units are compared as if the smaller one were padded
  with zero units.
* :func:`canonical_correlations`, :func:`cca_similarity` — canonical
  correlations from orthonormal bases of the two column spaces (singular
  values of Qx'Qy), and their mean square (R²_CCA in Kornblith et al. 2019).
* :func:`svcca` — Raghu et al. (2017): keep the top singular directions that
  explain ``keep`` of each input's variance, then the mean canonical correlation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from rsa_bias._api import legacy_call
from rsa_bias._values import check_count
from rsa_bias.analysis._inputs import ArrayLike, choose, paired_values
from rsa_bias.analysis.similarity._hsic import _scaled_centred


def _centred(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Centred x and y, each rescaled by a power of two if its squares would leave the
    floating-point range (every measure here is scale-invariant)."""
    xv, yv = paired_values(x, y)
    if xv.shape[0] < 2:
        raise ValueError(f"at least 2 stimuli are needed, got {xv.shape[0]}")
    return _scaled_centred(xv, power=2)[0], _scaled_centred(yv, power=2)[0]


def _unit_norm(xc: np.ndarray, name: str) -> np.ndarray:
    norm = np.linalg.norm(xc)
    if norm == 0:
        raise ValueError(f"{name} is constant over stimuli; its shape is undefined")
    return xc / norm


def _euclidean(nuclear: float) -> float:
    return float(np.sqrt(max(2.0 - 2.0 * nuclear, 0.0)))


def _angular(nuclear: float) -> float:
    return float(np.arccos(min(nuclear, 1.0)))


PROCRUSTES_METRICS: dict[str, Callable[[float], float]] = {
    "euclidean": _euclidean,
    "angular": _angular,
}


@legacy_call(renamed={"metric": "method"})
def procrustes_distance(x: ArrayLike, y: ArrayLike, *, method: str = "euclidean") -> float:
    """Orthogonal Procrustes distance between centred, unit-norm representations.

    After centring and scaling each input to unit Frobenius norm (X̂, Ŷ), the distance
    is min over orthogonal Q of ||X̂ − ŶQ||_F, or the angle arccos ||X̂'Ŷ||_* (Williams
    et al. 2021). Inputs with different numbers of units are compared as if the smaller
    one were padded with zero units.

    Parameters
    ----------
    x, y : xarray.DataArray with dims ("stimulus", "unit"), or numpy.ndarray
        Representations of the same stimuli, ``(n, p)`` and ``(n, q)`` arrays for numpy;
        labelled inputs are aligned on stimulus ids (mismatches refused). Each is centred
        over stimuli first; at least 2 stimuli.
    method : {"euclidean", "angular"}, default "euclidean"
        ``"euclidean"``: min_Q ||X̂ − ŶQ||_F = sqrt(2 − 2 ||X̂'Ŷ||_*), in [0, √2];
        ``"angular"``: arccos ||X̂'Ŷ||_*, in [0, π/2]. Both are metrics
        (symmetric, triangle inequality) on shapes modulo translation,
        isotropic scaling and rotation/reflection.

    Returns
    -------
    float
        The distance; 0 when y is x up to translation, isotropic scaling and
        rotation/reflection.

    Raises
    ------
    ValueError
        If an input is constant over stimuli (its shape is undefined), or has complex,
        NaN/inf or no values.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 4))
    >>> q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    >>> round(procrustes_distance(x, 2 * x @ q + 1), 6)
    0.0
    >>> round(procrustes_distance(x, rng.normal(size=(50, 4)), method="angular"), 3)
    1.405
    """
    distance = choose(PROCRUSTES_METRICS, method, "Procrustes method")
    xc, yc = _centred(x, y)
    xn, yn = _unit_norm(xc, "x"), _unit_norm(yc, "y")
    return distance(float(np.linalg.svd(yn.T @ xn, compute_uv=False).sum()))


def _basis(xc: np.ndarray, name: str) -> np.ndarray:
    """Orthonormal basis (n × rank) of the column space of a centred matrix."""
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        raise ValueError(f"{name} is constant over stimuli; canonical correlations are "
                         "undefined")
    rank = int(np.sum(s > s[0] * max(xc.shape) * np.finfo(float).eps))
    return u[:, :rank]


def _correlations(xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    qx, qy = _basis(xc, "x"), _basis(yc, "y")
    if qx.shape[1] + qy.shape[1] > xc.shape[0] - 1:
        warnings.warn(f"CCA is degenerate: ranks {qx.shape[1]} + {qy.shape[1]} exceed the "
                      f"{xc.shape[0] - 1} dimensions of centred stimulus space, so some "
                      "canonical correlations are 1 whatever the data; use more stimuli or "
                      "svcca to reduce the units", RuntimeWarning, stacklevel=3)
    return np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)


def _top(rho: np.ndarray, n_components: int | None) -> np.ndarray:
    if n_components is None:
        return rho
    if not 1 <= check_count(n_components, "n_components") <= rho.size:
        raise ValueError(f"n_components={n_components}; there are {rho.size} canonical "
                         "correlations (the smaller of the two ranks)")
    return rho[:n_components]


def canonical_correlations(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Canonical correlations between two representations, largest first.

    The singular values of Qx'Qy, for orthonormal bases Qx, Qy of the column spaces of
    the centred inputs.

    Parameters
    ----------
    x, y
        As in :func:`procrustes_distance`.

    Returns
    -------
    numpy.ndarray of shape (min(rank x, rank y),)
        The correlations, in [0, 1]. Warns (``RuntimeWarning``) when rank x + rank y >
        n − 1, where correlations of 1 are forced by the dimensions rather than the data.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 10))
    >>> y = x @ rng.normal(size=(10, 5)) + rng.normal(size=(100, 5))
    >>> canonical_correlations(x, y).round(3).tolist()
    [0.976, 0.953, 0.897, 0.884, 0.764]
    """
    return _correlations(*_centred(x, y))


def cca_similarity(x: ArrayLike, y: ArrayLike, *, n_components: int | None = None) -> float:
    """Mean squared canonical correlation (R²_CCA; Kornblith et al. 2019).

    Parameters
    ----------
    x, y
        As in :func:`procrustes_distance`.
    n_components : int, optional
        Average over the top ``n_components`` correlations (default all); between 1 and
        the number of correlations.

    Returns
    -------
    float
        In [0, 1]; 1 when y is an invertible linear transform of x.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, w = rng.normal(size=(100, 10)), rng.normal(size=(10, 5))
    >>> y = x @ w + rng.normal(size=(100, 5))
    >>> round(cca_similarity(x, y), 3), round(cca_similarity(x, y, n_components=2), 3)
    (0.806, 0.93)
    """
    return float(np.mean(_top(canonical_correlations(x, y), n_components) ** 2))


def _reduce(xc: np.ndarray, keep: float) -> np.ndarray:
    """Projection on the fewest singular directions that explain ``keep`` of the variance."""
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    k = min(int(np.searchsorted(share, keep)) + 1, s.size)
    return u[:, :k] * s[:k]


def svcca(x: ArrayLike, y: ArrayLike, *, keep: float = 0.99,
          n_components: int | None = None) -> float:
    """SVCCA (Raghu et al. 2017): SVD reduction, then mean canonical correlation.

    Each input keeps the top singular directions that explain ``keep`` of its variance;
    the result is the mean canonical correlation of the reduced inputs.

    Parameters
    ----------
    x, y
        As in :func:`procrustes_distance`.
    keep : float, default 0.99
        Each input keeps its fewest top singular directions explaining at least this
        share of its variance; in (0, 1].
    n_components : int, optional
        Average over the top ``n_components`` correlations (default all).

    Returns
    -------
    float
        In [0, 1]: the mean (not squared) canonical correlation of the reduced inputs.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 10))
    >>> y = x @ rng.normal(size=(10, 5))
    >>> y += rng.normal(size=y.shape)  # the same noisy linear map as in canonical_correlations
    >>> round(svcca(x, y), 3), round(svcca(x, y, keep=0.9), 3)
    (0.895, 0.907)
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    xc, yc = _centred(x, y)
    for values, name in ((xc, "x"), (yc, "y")):
        _unit_norm(values, name)
    rho = _correlations(_reduce(xc, keep), _reduce(yc, keep))
    return float(np.mean(_top(rho, n_components)))
