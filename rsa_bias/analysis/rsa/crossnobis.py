"""What cross-validated (crossnobis) RDMs need: patterns per run and a noise precision.

The crossnobis distance of :func:`rsa_bias.analysis.rsa.rdms.rdm` (rsatoolbox's
``"crossnobis"``) needs more than one pattern per stimulus:

* patterns estimated separately in several runs (partitions) — :func:`stack_runs`
  turns long-format data (one row per stimulus and run) into
  ``(run, stimulus, channel)``;
* optionally a noise precision ``Λ`` — :func:`noise_precision` estimates it from
  residuals (``mahalanobis`` needs it too), with rsatoolbox's estimators;
* ``_crossnobis_gram`` gives the leave-one-run-out inner products that
  :func:`~rsa_bias.analysis.rsa.rdms.rdm` turns into distances.

Runs with repeats (``rdm(..., run_weights=...)``). Let ``X_rs`` be the mean of the
``n_rs`` rows of stimulus ``s`` in run ``r`` (``R`` runs, ``P`` channels). Fold ``r``
tests on ``X_r`` and trains on ``T_rs``, and ``d_ij = mean_r (T_ri - T_rj) Λ (X_ri -
X_rj)ᵀ / P``; the two options differ only in the training mean:

* ``"equal"`` (default): ``T_rs = Σ_{q≠r} X_qs / (R - 1)`` — repeats are averaged within
  each run first and every run counts once, so ``d`` is the mean over pairs of distinct
  runs ``q ≠ r`` of ``(X_qi - X_qj) Λ (X_ri - X_rj)ᵀ / P``;
* ``"rows"``: ``T_rs = Σ_{q≠r} n_qs X_qs / Σ_{q≠r} n_qs``, the mean of all training
  rows, as rsatoolbox's ``calc_rdm_crossnobis`` pools them (its held-out pattern is the
  run's mean too, and its folds count equally).

Both are unbiased (train and test never share a run); they are equal whenever each
stimulus has the same number of rows in every run. ``"rows"`` has the smaller variance
when all rows are exchangeable (equal, independent noise); ``"equal"`` keeps a run with
many repeats of a stimulus from dominating its training mean, which matters when runs
differ (drift, a run-specific baseline or noise level, the reason to cross-validate over
runs at all). The default stays ``"equal"``, the behaviour before the option existed.
Other methods average the runs likewise: ``mean_r X_rs`` or ``Σ_r n_rs X_rs / Σ_r n_rs``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._values import check_count, numeric_values
from rsa_bias.analysis._inputs import choose

#: Coord of :func:`stack_runs` output: how many rows each (run, stimulus) pattern averages.
N_ROWS = "n_rows"

# --------------------------------------------------------------------------- runs

@legacy_call(renamed={"stimuli": "stimulus_ids"})
def stack_runs(x: xr.DataArray | np.ndarray, *, runs: Sequence | np.ndarray,
               stimulus_ids: Sequence | np.ndarray | None = None) -> xr.DataArray:
    """Long-format patterns (one row per stimulus and run) to ``(run, stimulus, unit)``.

    Crossnobis RDMs (:func:`~rsa_bias.analysis.rsa.rdms.rdm` with
    ``method="crossnobis"``) need one pattern per stimulus and run; this reshapes data
    that has one row per (stimulus, run) into that form.

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", <channel dim>), or numpy.ndarray
        A DataArray whose ``stimulus`` coord repeats once per run, or a numpy array
        ``(n_rows, n_channels)``.
    runs : sequence or numpy.ndarray
        Run (partition) label of each row.
    stimulus_ids : sequence or numpy.ndarray, optional
        Stimulus id of each row; required for numpy input (for a DataArray the
        ``stimulus`` coord is used when omitted).

    Returns
    -------
    xarray.DataArray with dims ("run", "stimulus", <channel dim>)
        Rows of the same stimulus within one run are averaged. Stimuli keep the order of
        first appearance, runs are sorted; the channel dim is ``"unit"`` for numpy input
        (a DataArray keeps its channel dim and coord). Where some pattern averages several
        rows, a coord ``n_rows`` ("run", "stimulus") counts them, for
        ``rdm(..., run_weights="rows")``; absent when every pattern is one row.

    Raises
    ------
    ValueError
        If a stimulus is missing from a run (names them), or numpy input comes without
        ``stimulus_ids``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(6, 8))
    >>> s = stack_runs(x, runs=[0, 0, 0, 1, 1, 1], stimulus_ids=["a", "b", "c"] * 2)
    >>> s.dims, s.shape, s.stimulus.values.tolist()
    (('run', 'stimulus', 'unit'), (2, 3, 8), ['a', 'b', 'c'])
    """
    stimuli = stimulus_ids
    if isinstance(x, xr.DataArray):
        stimuli = x["stimulus"].values if stimuli is None else stimuli
        channel = _one_channel_dim(x, exclude=("stimulus",))
        values, chan_coords = x.transpose("stimulus", channel).values, x.coords.get(channel)
    else:
        if stimuli is None:
            raise ValueError("numpy input needs stimulus_ids=<stimulus id of each row>")
        values, channel, chan_coords = np.asarray(x), "unit", None
    values = numeric_values(values, "x")
    stimuli, runs = np.asarray(stimuli), np.asarray(runs)
    if runs.ndim != 1 or stimuli.ndim != 1:
        raise ValueError(f"runs must give the run label of each row (a sequence of length "
                         f"{values.shape[0]}); got {runs.tolist()!r:.60}")
    if values.ndim != 2 or not (len(stimuli) == len(runs) == values.shape[0]):
        raise ValueError(f"x has shape {values.shape}; expected (n_rows, n_channels) with one "
                         f"stimulus id and one run label per row (got {len(stimuli)}, "
                         f"{len(runs)})")
    uniq, first, inverse = np.unique(stimuli, return_index=True, return_inverse=True)
    order = np.argsort(first)                 # unique ids in order of first appearance
    ids, position = uniq[order], np.empty(len(order), dtype=np.intp)
    position[order] = np.arange(len(order))
    s_idx = position[inverse.ravel()]
    run_ids, r_idx = np.unique(runs, return_inverse=True)
    r_idx = r_idx.ravel()
    counts = np.zeros((len(run_ids), len(ids)))
    np.add.at(counts, (r_idx, s_idx), 1)
    if np.any(counts == 0):
        r, s = np.nonzero(counts == 0)
        pairs = [(ids[j].item(), run_ids[i].item()) for i, j in zip(r[:3], s[:3], strict=True)]
        raise ValueError(f"{r.size} (stimulus, run) combinations have no pattern, e.g. "
                         f"{pairs}; every stimulus must appear in every run")
    out = np.zeros((len(run_ids), len(ids), values.shape[1]))
    np.add.at(out, (r_idx, s_idx), values)
    out /= counts[:, :, None]
    coords: dict[str, Any] = {"run": run_ids, "stimulus": ids}
    if chan_coords is not None:
        coords[channel] = chan_coords.values
    if np.any(counts > 1):
        coords[N_ROWS] = (("run", "stimulus"), counts.astype(np.int64))
    return xr.DataArray(out, dims=("run", "stimulus", channel), coords=coords)


def _one_channel_dim(x: xr.DataArray, *, exclude: Sequence[str]) -> str:
    rest = [d for d in x.dims if d not in exclude]
    if len(rest) != 1:
        raise ValueError(f"x has dims {x.dims}; expected ('stimulus', <channel dim>) plus an "
                         f"optional run dim, but found channel dims {tuple(rest)} (name the run "
                         "dim with runs='<dim>', or stack/select the others first)")
    return str(rest[0])


def _crossnobis_gram(x: np.ndarray, precision: np.ndarray | None,
                     counts: np.ndarray | None = None) -> np.ndarray:
    """Leave-one-run-out inner products ``(n, n)`` of patterns ``x (run, stimulus, channel)``.

    Fold ``r`` uses ``test = run r`` and ``train = mean of the other runs`` (weighted by
    ``counts (run, stimulus)``, the rows behind each pattern, when given);
    ``Σ_r train_r Λ X_rᵀ`` is one product of the run-concatenated ``(n, R·P)`` matrices,
    averaged over the folds.
    """
    n_runs, n, p = x.shape
    if n_runs < 2:
        raise ValueError("crossnobis needs patterns from at least 2 runs (found 1); pass x "
                         "with a 'run' dim or runs=<run label of each row>")
    if counts is None:
        train, folds = x.sum(axis=0)[None] - x, n_runs * (n_runs - 1)
    else:  # the mean of the training rows: Σ_{q≠r} n_q X_q / Σ_{q≠r} n_q
        sums = x * counts[:, :, None]
        train = sums.sum(axis=0)[None] - sums
        train /= (counts.sum(axis=0)[None] - counts)[:, :, None]
        folds = n_runs
    if precision is not None:
        train = train * precision if precision.ndim == 1 else train @ precision
    a = train.transpose(1, 0, 2).reshape(n, n_runs * p)
    b = x.transpose(1, 0, 2).reshape(n, n_runs * p)
    return (a @ b.T) / folds


#: ``rdm(..., run_weights=...)``: does a run weigh by its rows of a stimulus (its ``n_rows``)?
RUN_WEIGHTS = {"equal": False, "rows": True}


def _weigh(kernel: Callable, patterns: xr.DataArray, *, method: str,
           run_weights: str) -> Callable:
    """The RDM kernel for ``run_weights`` (see the module docstring).

    ``"equal"`` keeps ``kernel``. ``"rows"`` weighs each run by the ``n_rows`` coord of
    ``patterns`` (one row per pattern without it): crossnobis gets them as ``counts`` for
    its training means, every other method one row-weighted mean pattern per stimulus.
    """
    if not choose(RUN_WEIGHTS, run_weights, "run_weights option") or N_ROWS not in patterns.coords:
        return kernel
    coord = patterns[N_ROWS]
    if set(coord.dims) != {"run", "stimulus"}:
        raise ValueError(f"the {N_ROWS!r} coord has dims {coord.dims}; expected ('run', "
                         "'stimulus'): the rows behind each pattern, as stack_runs counts them")
    counts = np.asarray(coord.transpose("run", "stimulus").values, dtype=np.float64)
    if not (np.all(np.isfinite(counts)) and np.all(counts > 0)):
        raise ValueError(f"the {N_ROWS!r} coord must be positive row counts")

    def weighted(x: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
        w = counts.astype(x.dtype)
        if method == "crossnobis":
            return kernel(x, precision, counts=w)
        mean = np.einsum("rs,rsp->sp", w, x) / w.sum(axis=0)[:, None]
        return kernel(mean[None], precision)

    return weighted


# --------------------------------------------------------------------------- noise

def _shrinkage_eye(r: np.ndarray, dof: int) -> np.ndarray:
    """Ledoit & Wolf (2004) shrinkage towards a multiple of the identity (rsatoolbox's)."""
    n, p = r.shape
    s = (r.T @ r) / n
    r2 = r * r
    b2 = np.sum((r2.T @ r2) / n - s * s) / n
    m = np.trace(s) / p
    d2 = np.sum((s - m * np.eye(p)) ** 2)
    b2 = min(d2, b2)
    return (b2 / d2 * m * np.eye(p) + (d2 - b2) / d2 * s) * n / dof


def _shrinkage_diag(r: np.ndarray, dof: int) -> np.ndarray:
    """Schäfer & Strimmer (2005) shrinkage towards the diagonal (rsatoolbox's)."""
    n, p = r.shape
    s_sum = r.T @ r
    r2 = r * r
    s2_sum = r2.T @ r2
    s = s_sum / dof
    var = np.diag(s)
    std = np.sqrt(var)
    s_mean = s_sum / np.outer(std, std) / (n - 1)
    s2_mean = s2_sum / np.outer(var, var) / (n - 1)
    var_hat = n / dof**2 * (s2_mean - s_mean**2)
    mask = ~np.eye(p, dtype=bool)
    lamb = float(np.clip(np.sum(var_hat[mask]) / np.sum(s_mean[mask] ** 2), 0, 1))
    return s * (np.eye(p) + (1 - lamb) * mask)


def _diag_cov(r: np.ndarray, dof: int) -> np.ndarray:
    return np.diag(np.einsum("ij,ij->j", r, r) / dof)


def _full_cov(r: np.ndarray, dof: int) -> np.ndarray:
    return (r.T @ r) / dof


_COVARIANCES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "shrinkage_diag": _shrinkage_diag,
    "shrinkage_eye": _shrinkage_eye,
    "diag": _diag_cov,
    "full": _full_cov,
}


def noise_precision(residuals: xr.DataArray | np.ndarray, *, method: str = "shrinkage_diag",
                    dof: int | None = None) -> np.ndarray:
    """Noise precision (inverse covariance over channels) estimated from residuals.

    Same estimators as ``rsatoolbox.data.prec_from_residuals``. The residuals are
    centred over rows before the covariance is estimated.

    Parameters
    ----------
    residuals : xarray.DataArray with the channel dim last, or numpy.ndarray
        A DataArray with a channel dim last (e.g. ("time", "unit")) or numpy
        ``(n_residuals, n_channels)``; all leading dims are pooled. At least 2 residuals,
        no NaN/inf.
    method : str, default "shrinkage_diag"
        ``"shrinkage_diag"`` (Schäfer & Strimmer 2005 shrinkage towards the diagonal),
        ``"shrinkage_eye"`` (Ledoit & Wolf 2004 towards a scaled identity), ``"diag"``
        (univariate noise normalisation) or ``"full"`` (sample covariance; needs more
        residuals than channels).
    dof : int, optional
        Degrees of freedom; default ``n_residuals - 1``. Correct it for the number of
        regressors of a GLM.

    Returns
    -------
    numpy.ndarray of shape (n_channels, n_channels)
        The precision matrix, for ``rdm(..., noise=...)``.

    Raises
    ------
    ValueError
        If the covariance estimate is singular (e.g. ``"full"`` with fewer residuals
        than channels).

    Examples
    --------
    >>> import numpy as np
    >>> residuals = np.random.default_rng(0).normal(size=(100, 8))
    >>> prec = noise_precision(residuals)
    >>> prec.shape, bool(np.allclose(prec, prec.T))
    ((8, 8), True)
    """
    estimator = choose(_COVARIANCES, method, "noise method")
    r = numeric_values(residuals.values if isinstance(residuals, xr.DataArray) else residuals,
                       "residuals", finite=False, empty_ok=True)
    if r.ndim < 2 or r.shape[0] < 2:
        raise ValueError(f"residuals have shape {r.shape}; expected (n_residuals >= 2, "
                         "n_channels)")
    r = r.reshape(-1, r.shape[-1])
    if not np.all(np.isfinite(r)):
        raise ValueError("residuals contain NaN/inf")
    r = r - r.mean(axis=0, keepdims=True)
    if dof is not None:
        check_count(dof, "dof")
    constant = ~np.any(r != 0, axis=0)
    if constant.any():
        raise ValueError(f"{int(constant.sum())} of {r.shape[1]} channels of the residuals are "
                         "constant (no noise variance, so no precision); drop those channels")
    cov = estimator(r, r.shape[0] - 1 if dof is None else dof)
    try:
        prec = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        prec = None
    if prec is None or not np.all(np.isfinite(prec)):
        advice = ("use more residuals than channels, or method='shrinkage_diag'"
                  if method == "full" else "use more residuals")
        raise ValueError(f"the {method!r} noise covariance is singular ({r.shape[0]} residuals, "
                         f"{r.shape[1]} channels); {advice}")
    return prec
