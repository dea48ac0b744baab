"""Inference for CKA: bootstrap intervals over stimuli and a permutation null.

No existing package ships these for CKA. The unbiased estimator needs care under
the bootstrap: a stimulus drawn twice would create spurious identical pairs, so each
replicate is the U-statistic over resampled positions whose original stimuli are
distinct, computed exactly from the draw counts (see :func:`cka_bootstrap`).

Draws are made over the stimuli in ascending stimulus-id order (numpy inputs, ids
0..n-1, keep their order), so a seeded result does not depend on the row order of
labelled inputs.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import xarray as xr

from rsa_bias._values import check_count
from rsa_bias.analysis._inputs import ArrayLike
from rsa_bias.analysis.similarity._hsic import (
    _cka_arrays,
    _hsic,
    _normalise,
    _prepared_pair,
    _Rep,
    _three_hsic,
    _values_in_id_order,
)
from rsa_bias.provenance import result_attrs

#: Null values within this of the observed CKA count as reaching it (as in the RSA
#: permutation_test): permutations that only relabel equal stimuli give the observed value
#: in exact arithmetic but may round below it.
_TIE_TOLERANCE = 1e-12


def _permute(rep: _Rep, perm: np.ndarray) -> _Rep:
    return replace(
        rep,
        feats=None if rep.feats is None else rep.feats[perm],
        gram=None if rep.gram is None else rep.gram[np.ix_(perm, perm)],
        rows=None if rep.rows is None else rep.rows[perm],
    )


def cka_permutation(x: ArrayLike, y: ArrayLike, *, n_perm: int = 1000, seed: int | None = 0,
                    kernel: str = "linear", hsic: str = "biased",
                    bandwidth: float = 0.5) -> xr.Dataset:
    """Permutation test of CKA: permute the stimuli of ``y`` against those of ``x``.

    Permuting y's stimuli leaves both self-HSICs unchanged, so each null value
    costs one cross-HSIC (one GEMM in feature space).

    Parameters
    ----------
    x, y
        As in :func:`~rsa_bias.analysis.similarity.cka`.
    n_perm : int, default 1000
        Number of permutations; a positive integer.
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng``. The permutations are drawn over the stimuli
        in ascending id order, so the result does not depend on the row order of
        labelled inputs.
    kernel, hsic, bandwidth
        As in :func:`~rsa_bias.analysis.similarity.cka`.

    Returns
    -------
    xarray.Dataset
        ``estimate`` (observed CKA), ``p_value`` (one-sided, (1 + #null ≥
        observed − 1e-12) / (1 + n_perm)) and ``null(permutation)``; flat attrs record
        the estimator options, ``n_perm``, ``seed`` and ``alternative="greater"``.

    Notes
    -----
    Null values equal to the observed CKA within 1e-12 count as reaching it, as in
    :func:`rsa_bias.analysis.permutation_test`: a permutation that only exchanges
    stimuli with equal representations (e.g. within or between categories of a
    categorical ``y``) gives the observed value in exact arithmetic, but its rounding
    may differ from the observed value's by a few ulps in either direction.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 10))
    >>> res = cka_permutation(x, x @ rng.normal(size=(10, 5)) + rng.normal(size=(100, 5)),
    ...                       n_perm=200)
    >>> round(float(res.estimate), 3), round(float(res.p_value), 3), res.null.dims
    (0.488, 0.005, ('permutation',))
    """
    check_count(n_perm, "n_perm")
    xv, yv = _values_in_id_order(x, y)
    a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    hxy, hxx, hyy = _three_hsic(a, b, hsic)
    estimate = _normalise(hxy, hxx, hyy)
    rng = np.random.default_rng(seed)
    scale = np.sqrt(hxx) * np.sqrt(hyy)
    null = np.array([_hsic(a, _permute(b, rng.permutation(xv.shape[0])), hsic) / scale
                     for _ in range(n_perm)])
    p_value = (1 + int(np.sum(null >= estimate - _TIE_TOLERANCE))) / (1 + n_perm)
    return xr.Dataset(
        {"estimate": estimate, "p_value": p_value, "null": ("permutation", null)},
        attrs=result_attrs("cka_permutation", kernel=kernel, hsic=hsic, bandwidth=bandwidth,
                           n_perm=n_perm, seed=seed, alternative="greater"))


def _weighted_parts(a: _Rep, b: _Rep, w: np.ndarray,
                    ) -> tuple[list[float], np.ndarray, np.ndarray]:
    """P(u, v) = Σ_{i≠j} u_i v_j K̃_ij L̃_ij for the weight powers, and K̃[w, w²], L̃[w, w²]."""
    powers = np.stack([w, w**2, w**3], axis=1)
    if a.gram is not None:
        mw = (a.gram * b.gram) @ powers[:, :2]
        p = [w @ mw[:, 0], powers[:, 1] @ mw[:, 0], powers[:, 1] @ mw[:, 1],
             powers[:, 2] @ mw[:, 0]]
        return p, a.gram @ powers[:, :2], b.gram @ powers[:, :2]
    diag = a.rows * b.rows                      # ||x_i||² ||y_i||²
    g = [(a.feats * powers[:, [k]]).T @ b.feats for k in range(3)]
    p = [np.vdot(g[0], g[0]) - w**2 @ diag, np.vdot(g[1], g[0]) - w**3 @ diag,
         np.vdot(g[1], g[1]) - w**4 @ diag, np.vdot(g[2], g[0]) - w**4 @ diag]
    aw = a.feats @ (a.feats.T @ powers[:, :2]) + a.rows[:, None] * powers[:, :2]
    bw = b.feats @ (b.feats.T @ powers[:, :2]) + b.rows[:, None] * powers[:, :2]
    return p, aw, bw


def _weighted_unbiased_hsic(a: _Rep, b: _Rep, w: np.ndarray) -> float:
    """Unbiased HSIC of a resample given by multiplicities ``w`` of the original stimuli.

    The U-statistic over 4-tuples of resampled positions whose *original*
    stimuli are distinct, i.e. Σ w_i w_j w_q w_r h(i, j, q, r) over distinct
    originals divided by Σ w_i w_j w_q w_r; with w = 1 this is Song et al.'s
    estimator. Derived by inclusion–exclusion from the four sums below.
    """
    (p11, p21, p22, p31), aw, bw = _weighted_parts(a, b, w)
    s1, s2, s3, s4 = (float(np.sum(w**k)) for k in range(1, 5))
    u1 = float(np.sum(w * aw[:, 0] * bw[:, 0]))
    u2 = float(np.sum(w**2 * aw[:, 0] * bw[:, 0]))
    u_cross = float(np.sum(w * (aw[:, 1] * bw[:, 0] + aw[:, 0] * bw[:, 1])))
    t1 = (s1**2 - s2) * p11 - 4 * s1 * p21 + 2 * p22 + 4 * p31
    t2 = float(w @ aw[:, 0]) * float(w @ bw[:, 0]) - 4 * u2 + 2 * p22
    t3 = s1 * u1 - u2 - u_cross - s1 * p21 + p22 + 2 * p31
    tuples = s1**4 - 6 * s1**2 * s2 + 3 * s2**2 + 8 * s1 * s3 - 6 * s4
    return float((t1 + t2 - 2 * t3) / tuples) if tuples > 0 else float("nan")


def _bootstrap_replicate(xv: np.ndarray, yv: np.ndarray, reps: tuple[_Rep, _Rep],
                         idx: np.ndarray, opts: dict) -> float:
    if opts["hsic"] == "biased":
        return _cka_arrays(xv[idx], yv[idx], **opts, strict=False)
    w = np.bincount(idx, minlength=xv.shape[0]).astype(float)
    if np.count_nonzero(w) < 4:
        return float("nan")
    a, b = reps
    h = [_weighted_unbiased_hsic(*pair, w) for pair in ((a, b), (a, a), (b, b))]
    return _normalise(*h, strict=False)


def cka_bootstrap(x: ArrayLike, y: ArrayLike, *, n_boot: int = 1000, seed: int | None = 0,
                  ci: float = 0.95, kernel: str = "linear", hsic: str = "biased",
                  bandwidth: float = 0.5) -> xr.Dataset:
    """Bootstrap over stimuli: percentile interval and standard error of CKA.

    Each replicate draws n stimuli with replacement (the same draw for x and y).

    * ``hsic="biased"``: CKA is recomputed on the resampled stimuli (a
      V-statistic already includes self-pairs, so duplicates need no care; the
      RBF bandwidth is re-estimated on each resample).
    * ``hsic="unbiased"``: naively recomputing the U-statistic on a resample
      would treat two copies of one stimulus as two different stimuli, an
      identical pair with maximal similarity in both representations, which
      inflates HSIC. Instead each replicate is the U-statistic over tuples of
      drawn positions whose *original* stimuli are all distinct — the copies'
      pairs are excluded exactly like the diagonal — computed from the
      multiplicities of the original stimuli on the full-sample kernels (for
      RBF, the bandwidth of the full sample is kept). Replicates with fewer
      than 4 distinct stimuli are NaN.

    Parameters
    ----------
    x, y
        As in :func:`~rsa_bias.analysis.similarity.cka`.
    n_boot : int, default 1000
        Number of bootstrap replicates; a positive integer.
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng``. The stimuli are drawn in ascending id
        order, so the result does not depend on the row order of labelled inputs.
    ci : float, default 0.95
        Coverage of the percentile interval, in (0, 1).
    kernel, hsic, bandwidth
        As in :func:`~rsa_bias.analysis.similarity.cka`.

    Returns
    -------
    xarray.Dataset
        ``estimate`` (CKA on all stimuli), ``ci_low``, ``ci_high``,
        ``standard_error`` and ``bootstrap(replicate)``; attrs ``n_undefined``
        counts NaN replicates (non-positive self-HSIC), which are left out (with a
        ``RuntimeWarning``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((100, 10))
    >>> y = x @ rng.standard_normal((10, 5)) + rng.standard_normal((100, 5))
    >>> res = cka_bootstrap(x, y, n_boot=200)
    >>> round(float(res.estimate), 3), bool(res.ci_low < res.estimate < res.ci_high)
    (0.488, True)
    """
    check_count(n_boot, "n_boot")
    if not 0 < ci < 1:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    xv, yv = _values_in_id_order(x, y)
    opts = {"kernel": kernel, "hsic": hsic, "bandwidth": bandwidth}
    reps = _prepared_pair(xv, yv, **opts)
    estimate = _normalise(*_three_hsic(*reps, hsic))
    rng = np.random.default_rng(seed)
    n = xv.shape[0]
    boot = np.array([_bootstrap_replicate(xv, yv, reps, rng.integers(0, n, n), opts)
                     for _ in range(n_boot)])
    finite = boot[np.isfinite(boot)]
    if finite.size < boot.size:
        warnings.warn(f"{boot.size - finite.size} of {boot.size} bootstrap replicates have an "
                      "undefined CKA (non-positive self-HSIC) and are left out",
                      RuntimeWarning, stacklevel=2)
    low, high = np.quantile(finite, [(1 - ci) / 2, (1 + ci) / 2]) if finite.size else (np.nan,) * 2
    return xr.Dataset(
        {"estimate": estimate, "ci_low": float(low), "ci_high": float(high),
         "standard_error": float(np.std(finite, ddof=1)) if finite.size > 1 else np.nan,
         "bootstrap": ("replicate", boot)},
        attrs=result_attrs("cka_bootstrap", kernel=kernel, hsic=hsic, bandwidth=bandwidth,
                           n_boot=n_boot, seed=seed, ci=ci,
                           n_undefined=int(boot.size - finite.size)))
