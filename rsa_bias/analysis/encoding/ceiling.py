"""Noise ceilings of the responses an encoding model predicts (repeats of each stimulus).

:func:`response_noise_ceiling` gives the split-half reliability of every target (voxel,
neuron) and the ceilings it implies; :func:`spearman_brown` is its reliability step-up.
:func:`~rsa_bias.analysis.encoding.scores.cross_validated_scores` normalises by it.

Noise-ceiling convention
------------------------
For responses with ``R`` repeats, the repeats are split into two halves of
``m = R // 2`` (an odd one out is left out of that split), each half is averaged, and the
Pearson correlation across stimuli of the two half-means is averaged over ``n_splits``
random splits: ``r_half``. The Spearman–Brown formula with factor ``R / m`` steps it up
to the reliability ``ρ`` of the mean over all ``R`` repeats, which is
``var(signal) / (var(signal) + var(noise) / R)`` for additive noise. A model that
predicted the signal exactly would reach Pearson ``r = sqrt(ρ)`` and ``R² = ρ`` against
the repeat-averaged responses, so ``ceiling_r = sqrt(ρ)`` and ``ceiling_r2 = ρ``;
normalised scores are ``r / sqrt(ρ)`` and ``R² / ρ``. Targets with ``ρ <= 0`` have no
reliable signal: their ceilings and normalised scores are NaN.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._values import check_count, check_number, check_seed, numeric_values
from rsa_bias.analysis._inputs import as_labelled
from rsa_bias.analysis.encoding._checks import MIN_SAMPLES, _check_finite_at, _coord_or_range
from rsa_bias.provenance import result_attrs


@legacy_call(positional=("factor",))
def spearman_brown(r, *, factor: float = 2.0):
    """Spearman–Brown prophecy: reliability of a measure ``factor`` times as long.

    ``factor * r / (1 + (factor - 1) * r)``; ``factor=2`` steps a split-half correlation
    up to the reliability of the full (two-half) measure.

    Parameters
    ----------
    r : float or array_like
        Reliability (e.g. split-half correlation) of the shorter measure.
    factor : float, default 2.0
        How many times longer the stepped-up measure is.

    Returns
    -------
    numpy.float64 or numpy.ndarray
        The stepped-up reliability, of the shape of ``r``.

    Examples
    --------
    >>> import numpy as np
    >>> round(float(spearman_brown(0.5)), 3)
    0.667
    >>> spearman_brown(np.array([0.2, 0.5]), factor=3).round(3).tolist()
    [0.429, 0.75]
    """
    check_number(factor, "factor", low=0, low_open=True)
    r = numeric_values(r, "r", finite=False, empty_ok=True)  # stepped values may pass +-1
    with np.errstate(invalid="ignore", divide="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def _columnwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(0)
    b = b - b.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(a * b, 0) / np.sqrt(np.sum(a * a, 0) * np.sum(b * b, 0))


def _responses(responses, repeat_dim: str) -> xr.DataArray:
    """(stimulus, target, repeat) DataArray from a DataArray or a numpy array."""
    da = as_labelled(responses, name="responses", dims=("stimulus", "target", repeat_dim))
    if repeat_dim not in da.dims or da.ndim != 3:
        raise ValueError(f"responses have dims {da.dims}; expected (stimulus, <target dim>, "
                         f"{repeat_dim!r}) — pass repeat_dim= to name the repeat dim")
    target_dim = next(d for d in da.dims if d not in ("stimulus", repeat_dim))
    return da.transpose("stimulus", target_dim, repeat_dim)


def response_noise_ceiling(responses, *, repeat_dim: str = "repeat", n_splits: int = 20,
                  seed: int = 0) -> xr.Dataset:
    """Split-half reliability (Spearman–Brown corrected) and the ceilings it implies.

    See the module docstring for the convention.

    Parameters
    ----------
    responses : xarray.DataArray with dims ("stimulus", <target dim>, ``repeat_dim``)
        Or a numpy array (stimulus, target, repeat). At least 2 repeats and 3 stimuli,
        no NaN/inf.
    repeat_dim : str, default "repeat"
        Name of the repeat dim of ``responses``.
    n_splits : int, default 20
        Number of random half-splits of the repeats averaged (Pearson r averaged
        before the Spearman–Brown step).
    seed : int, default 0
        Seeds the random splits.

    Returns
    -------
    xarray.Dataset with dim (<target dim>,)
        ``split_half_r``, ``reliability`` (ρ of the mean over all repeats),
        ``ceiling_r = sqrt(ρ)`` and ``ceiling_r2 = ρ`` (NaN where ρ <= 0). See the module
        docstring for the convention.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.normal(size=(40, 3, 1))  # (stimulus, target, 1)
    >>> nc = response_noise_ceiling(signal + rng.normal(size=(40, 3, 4)))
    >>> nc.reliability.dims, nc.reliability.values.round(3).tolist()
    (('target',), [0.801, 0.647, 0.788])
    """
    da = _responses(responses, repeat_dim)
    target_dim = da.dims[1]
    values = numeric_values(da.values, "responses", finite=False)
    _check_finite_at(values, "responses",
                     [da["stimulus"].values, _coord_or_range(da, target_dim),
                      _coord_or_range(da, repeat_dim)], tuple(map(str, da.dims)))
    n_rep = values.shape[2]
    if n_rep < 2 or values.shape[0] < MIN_SAMPLES:
        raise ValueError(f"a noise ceiling needs >= 2 repeats and >= {MIN_SAMPLES} stimuli; "
                         f"got {n_rep} repeat(s) and {values.shape[0]} stimuli")
    check_count(n_splits, "n_splits")
    rng = np.random.default_rng(check_seed(seed))
    half = n_rep // 2
    r = np.mean([_columnwise_pearson(values[:, :, p[:half]].mean(2),
                                     values[:, :, p[half:2 * half]].mean(2))
                 for p in (rng.permutation(n_rep) for _ in range(n_splits))], axis=0)
    rel = spearman_brown(r, factor=n_rep / half)
    ok = rel > 0
    out = xr.Dataset(
        {"split_half_r": (target_dim, r), "reliability": (target_dim, rel),
         "ceiling_r": (target_dim, np.where(ok, np.sqrt(np.where(ok, rel, 0.0)), np.nan)),
         "ceiling_r2": (target_dim, np.where(ok, rel, np.nan))},
        coords={target_dim: _coord_or_range(da, target_dim)})
    out.attrs.update(result_attrs("response_noise_ceiling",
                                  method="split_half_spearman_brown", n_splits=n_splits,
                                  n_repeats=n_rep, seed=seed, repeat_dim=repeat_dim))
    return out
