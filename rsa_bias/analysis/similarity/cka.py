"""Centred kernel alignment (CKA) of two representations, with biased and unbiased HSIC.

For representations X (n × p) and Y (n × q) of the same n stimuli, with Gram
matrices K, L,

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L)).

Two HSIC estimators are offered (``hsic=...``), because "CKA" means different
numbers in different packages:

``"biased"``
    Gretton et al. (2005): HSIC = tr(K H L H) / (n − 1)², H = I − 11'/n. This is
    the CKA of Kornblith et al. (2019). For the linear kernel it is computed in
    feature space, tr(K H L H) = ||Yc'Xc||_F², never forming an n × n matrix.
``"unbiased"``
    Song et al. (2012): with K̃, L̃ the Gram matrices with their diagonal set to
    zero,

        HSIC_u = [tr(K̃L̃) + 1'K̃1 · 1'L̃1 / ((n−1)(n−2)) − 2/(n−2) · 1'K̃L̃1] / (n(n−3)).

    Needs n ≥ 4. Its expectation is 0 for independent inputs, so CKA with it is
    ~0 for unrelated representations (the biased one is not) and can be
    negative; negative values are returned as they are. For the linear kernel
    it is also computed exactly in feature space: with centred X (HSIC_u is
    invariant to translating either input), k_i = ||x_i||², 1'K̃1 = −Σk and
    K̃1 = −k, so only ||Yc'Xc||_F² and the row norms are needed.

If a self-HSIC in the denominator is not positive (a constant input, or an
unbiased estimate on too few stimuli), CKA is undefined: :func:`cka` raises a
``ValueError`` naming the input; the resampling functions record ``NaN`` for
such replicates and warn with their count.

Kernels (``kernel=...``): ``"linear"`` and ``"rbf"``, exp(−d²/(2σ²)) with
σ² = bandwidth² × median of the squared distances over the full n × n matrix
(diagonal zeros included), as in Kornblith et al.'s reference code. A bandwidth
so small that every kernel value between distinct stimuli underflows to 0 (the
kernel is the identity), or so large that every value rounds to 1, is refused
naming the bandwidth.

Inputs are refused if complex, empty or not finite. Inputs so large or small that
HSIC's sums of degree-4 products could leave the floating-point range (magnitudes
above about 1e38 or below about 1e-30) are divided by a power of two first (exact);
CKA, which is scale-invariant, is unchanged, and :func:`hsic` is multiplied back,
refused only if the HSIC itself cannot be represented.

Minibatch CKA and CKA between every pair of layers build on these estimators in
:mod:`rsa_bias.analysis.similarity.cka_batches`; bootstrap and permutation inference in
:mod:`rsa_bias.analysis.similarity.cka_inference`.
"""

from __future__ import annotations

from rsa_bias.analysis._inputs import ArrayLike, paired_values
from rsa_bias.analysis.similarity._hsic import (
    _cka_arrays,
    _hsic,
    _in_input_units,
    _prepared_pair,
)
from rsa_bias.analysis.similarity._streamed_cka import (
    is_dask_backed,
    streamed_cka,
    streamed_hsic,
)


def hsic(x: ArrayLike, y: ArrayLike, *, kernel: str = "linear", hsic: str = "biased",
         bandwidth: float = 0.5) -> float:
    """Hilbert–Schmidt independence criterion between two representations.

    The numerator of :func:`cka`; the estimators and kernels are described in the module
    docstring.

    Parameters
    ----------
    x, y, kernel, hsic, bandwidth
        As in :func:`cka`; ``hsic="biased"`` is tr(KHLH)/(n−1)² (Gretton et al. 2005),
        ``"unbiased"`` Song et al.'s (2012) estimator.

    Returns
    -------
    float
        The estimate; the unbiased one can be negative. Linear HSIC scales as
        c²·d² when x is multiplied by c and y by d; extreme inputs are rescaled for the
        computation and the result multiplied back.

    Raises
    ------
    ValueError
        As in :func:`cka`; also when the HSIC itself over- or underflows (e.g. inputs
        of magnitude 1e100 each, whose HSIC is ~1e400), and for Dask-backed (chunked)
        input with a kernel other than ``"linear"``, the only one that streams.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, z = rng.normal(size=(100, 10)), rng.normal(size=(100, 5))
    >>> round(hsic(x, x), 3), round(hsic(x, z), 3)
    (10.434, 0.349)
    >>> round(hsic(x, z, hsic="unbiased"), 3)  # ~0 for independent inputs
    -0.115
    """
    if is_dask_backed(x) or is_dask_backed(y):  # chunked input: streamed (linear only)
        return streamed_hsic(x, y, kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    xv, yv = paired_values(x, y)
    a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    return _in_input_units(_hsic(a, b, hsic), a, b)


def cka(x: ArrayLike, y: ArrayLike, *, kernel: str = "linear", hsic: str = "biased",
        bandwidth: float = 0.5) -> float:
    """Centred kernel alignment between two representations of the same stimuli.

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L)) for the Gram matrices K, L of
    ``x`` and ``y``; the module docstring gives the estimators and kernels.

    Parameters
    ----------
    x, y : xarray.DataArray with dims ("stimulus", "unit"), or numpy.ndarray
        Representations of the same stimuli, ``(n, p)`` and ``(n, q)`` arrays for numpy.
        Any name works for the second dim (``unit``, ``voxel``, ``neuron``).
        Labelled inputs are aligned on stimulus ids; differing id sets are
        refused with an error naming the missing ids. Dask-backed (chunked) DataArrays
        are streamed, linear kernel only: two passes of feature-space reductions over
        the chunks, never loading the data (memory O(pq + p² + q²), never n × n).
    kernel : {"linear", "rbf"}, default "linear"
        The kernel of both Gram matrices.
    hsic : {"biased", "unbiased"}, default "biased"
        ``"biased"`` (Kornblith et al. 2019) or ``"unbiased"`` (Song et al.
        2012; needs ≥ 4 stimuli, ~0 for independent inputs, can be negative).
    bandwidth : float, default 0.5
        RBF σ as a fraction of the median pairwise distance
        (σ² = bandwidth² · median of the squared distances); used by ``"rbf"`` only.
        Must be positive and finite, and not so extreme that the kernel degenerates to
        the identity or to all ones.

    Returns
    -------
    float
        CKA; 1 for identical inputs. Linear CKA is computed in feature space
        (||Yc'Xc||²_F / (||Xc'Xc||_F ||Yc'Yc||_F) for the biased estimator) when
        that is cheaper — roughly when stimuli outnumber units — and from the
        n × n Gram matrices otherwise; both give the same number.

    Raises
    ------
    ValueError
        Unknown kernel/estimator (listing valid ones), complex, empty or NaN/inf values,
        mismatched stimuli or stimulus ids of different types, too few stimuli, a
        degenerate RBF bandwidth, or a non-positive self-HSIC (constant input; too few
        stimuli for the unbiased estimator); Dask-backed input with a kernel other than
        ``"linear"`` (the only one that streams; the others need the n × n Gram matrix).

    See Also
    --------
    rsa_bias.analysis.similarity.cka_bootstrap : bootstrap interval of CKA.
    rsa_bias.analysis.similarity.cka_permutation : permutation test of CKA.
    rsa_bias.analysis.similarity.minibatch_cka : CKA streamed over minibatches.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 10))
    >>> round(cka(x, 3 * x @ np.linalg.qr(rng.normal(size=(10, 10)))[0]), 6)
    1.0
    >>> abs(cka(x, rng.normal(size=(200, 10)), hsic="unbiased")) < 0.05
    True
    """
    if is_dask_backed(x) or is_dask_backed(y):  # chunked input: streamed (linear only)
        return streamed_cka(x, y, kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    xv, yv = paired_values(x, y)
    return _cka_arrays(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth)
