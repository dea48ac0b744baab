"""Feature subspaces of a labelled representation: decompose it into the part each feature
describes, report variance shares, remove features, or equalise their loudness.

Over ``n`` labelled stimuli the subspace of a feature is spanned by its centred one-hot
indicators; a conjunction ``"a:b"`` by the centred indicators of the joint cells with the main
effects of ``a`` and ``b`` projected out. A representation ``X`` (stimulus × unit, centred)
splits into orthogonal parts ``X = Σ_f P_f X + R``. For balanced, independent features the
``P_f`` are mutually orthogonal; otherwise ``orthogonalise="sequential"`` (default)
orthogonalises each subspace against the ones before it (Gram–Schmidt in the order given, with
a warning) and ``"strict"`` refuses. :mod:`rsa_bias.analysis.features.attribution` builds on
these parts.
"""

from __future__ import annotations

import itertools
import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._features import interaction_basis
from rsa_bias._values import check_names, check_number
from rsa_bias.analysis._inputs import ArrayLike, as_labelled, choose, stimulus_matrix
from rsa_bias.analysis.features._labels import attach_stimulus_coords, feature_names_of
from rsa_bias.provenance import result_attrs

ORTHOGONALISE = ("sequential", "strict")
MIN_F_RATIO = 4.0


_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _caller_stacklevel() -> int:
    """``stacklevel`` that makes a warning raised by the caller of this function point at the
    first frame outside the rsa_bias package (the user's call, however deep the chain)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level


# --- labelled inputs and feature subspaces -----------------------------------------------------


def _labelled(x: ArrayLike, stimuli: xr.Dataset | None, name: str) -> xr.DataArray:
    """(stimulus, unit) DataArray with the stimulus coords attached; repeats averaged.

    A numpy array is read as (stimulus, unit) or, with 3 dims, (stimulus, unit, repeat)."""
    dims = ("stimulus", "unit", "repeat") if not isinstance(x, xr.DataArray) and \
        np.ndim(x) == 3 else ("stimulus", "unit")
    x = as_labelled(x, name=name, dims=dims)
    if "repeat" in x.dims:
        x = x.mean("repeat", keep_attrs=True)
    other = [d for d in x.dims if d != "stimulus"]
    return attach_stimulus_coords(x.transpose("stimulus", *other), stimuli)


def _names(x: xr.DataArray, features: Sequence[str] | None) -> list[str]:
    if features is not None:
        features = [str(f) for f in check_names(features, "features")]
    mains = feature_names_of(x, None) if features is None else \
        feature_names_of(x, sorted({p for f in features for p in f.split(":")}))
    names = mains if features is None else features
    if len(set(names)) != len(names):
        raise ValueError(f"features repeat: {names}")
    return names


def _own_basis(x: xr.DataArray, name: str, before: Sequence[np.ndarray]) -> np.ndarray:
    columns = np.stack([np.asarray(x[f"feature_{p}"].values) for p in name.split(":")], axis=1)
    basis = interaction_basis(columns, before)
    if basis.shape[1] == 0:
        raise ValueError(f"feature {name!r} spans no variance on these stimuli (constant, or "
                         "determined by the features before it)")
    return basis


def _bases(x: xr.DataArray, names: list[str], orthogonalise: str,
           warn: bool = True) -> list[np.ndarray]:
    """Orthonormal (stimulus, dim) basis of each named subspace (see the module docstring)."""
    choose(dict.fromkeys(ORTHOGONALISE), orthogonalise, "orthogonalise option")
    own = [_own_basis(x, n, []) for n in names]
    overlap = {(a, b): float(np.linalg.norm(own[i].T @ own[j], 2))
               for (i, a), (j, b) in itertools.combinations(enumerate(names), 2)}
    worst = max(overlap, key=overlap.get, default=None)
    if worst is None or overlap[worst] < 1e-6:
        return own
    msg = (f"features {worst[0]!r} and {worst[1]!r} are not orthogonal over these stimuli "
           f"(largest canonical correlation {overlap[worst]:.3g}): unbalanced or dependent "
           "features")
    if orthogonalise == "strict":
        raise ValueError(msg + "; balance the stimuli or pass orthogonalise='sequential'")
    if warn:
        warnings.warn(msg + f"; orthogonalised sequentially in the order {names}, so earlier "
                      "features take the shared variance", UserWarning,
                      stacklevel=_caller_stacklevel())
    bases: list[np.ndarray] = []
    for n in names:
        bases.append(_own_basis(x, n, bases))
    return bases


def _parts(values: np.ndarray, bases: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Projections of the centred values onto each basis, and the residual."""
    centred = values - values.mean(axis=0)
    parts = [q @ (q.T @ centred) for q in bases]
    return parts, centred - sum(parts, np.zeros_like(centred))


@legacy_call(positional=("stimuli",))
def feature_decomposition(x: ArrayLike, *, stimuli: xr.Dataset | None = None,
                          features: Sequence[str] | None = None,
                          orthogonalise: str = "sequential") -> xr.DataArray:
    """Split a representation into its feature parts and a residual.

    ``X = Σ_f P_f X + R`` over the centred representation, with ``P_f`` the projection onto
    feature ``f``'s subspace (its centred one-hot indicators; a conjunction's with the main
    effects projected out; see the module docstring).

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", unit dim[, "repeat"]), or array
        The representation; repeats are averaged. Needs ``feature_<name>`` coords on
        ``stimulus`` unless ``stimuli`` supplies them. A numpy array is read as (stimulus,
        unit) or, with 3 dims, (stimulus, unit, repeat), with stimulus ids ``0..n-1``.
    stimuli : xarray.Dataset, optional
        Stimulus set (``feature_<name>`` coords on its ``stimulus`` dim) to take the feature
        coords from, aligned to ``x`` by stimulus id. Default: the coords already on ``x``.
    features : sequence of str, optional
        Features and conjunctions (``"a:b"``) to analyse; default all listed features
        (``attrs["feature_names"]``, else every ``feature_<name>`` coord).
    orthogonalise : {"sequential", "strict"}, default "sequential"
        What to do when the feature subspaces overlap (unbalanced or dependent features):
        ``"sequential"`` orthogonalises each subspace against the ones listed before it, with
        a warning, so earlier features take the variance they share with later ones;
        ``"strict"`` refuses (see :mod:`~rsa_bias.analysis.features.subspaces`).

    Returns
    -------
    xarray.DataArray with dims ("component", "stimulus", unit dim)
        One centred part per feature and ``"residual"``; ``parts.sum("component") + mean``
        is ``x`` (with repeats averaged).

    Raises
    ------
    ValueError
        A feature spans no variance on these stimuli, ``features`` is empty, a string or
        repeats, or (with ``orthogonalise="strict"``) two subspaces are not orthogonal.

    Examples
    --------
    >>> import numpy as np
    >>> from rsa_bias.brain import factorial_stimuli, simulate_population
    >>> pop = simulate_population(factorial_stimuli({"a": 2, "b": 2}, repeats=8),
    ...                           {"a": 0.6, "b": 0.1}, n_neurons=20)
    >>> parts = feature_decomposition(pop.response)
    >>> parts.component.values.tolist()
    ['a', 'b', 'residual']
    >>> bool(np.allclose(parts.sum("component") + pop.response.mean("stimulus"), pop.response))
    True
    """
    xl = _labelled(x, stimuli, "x")
    names = _names(xl, features)
    parts, rest = _parts(stimulus_matrix(xl, "x"), _bases(xl, names, orthogonalise))
    out = xr.concat([xl.copy(data=p) for p in [*parts, rest]], dim="component")
    out = out.assign_coords(component=[*names, "residual"]).rename("feature_part")
    return out.assign_attrs(result_attrs("feature_decomposition", features=names,
                                         orthogonalise=orthogonalise))


@legacy_call(positional=("stimuli",))
def variance_shares(x: ArrayLike, *, stimuli: xr.Dataset | None = None,
                    features: Sequence[str] | None = None,
                    orthogonalise: str = "sequential") -> xr.Dataset:
    """Share of a representation's variance in each feature subspace (in-sample).

    The sums of squares of the parts of :func:`feature_decomposition`, divided by the total.
    For balanced binary features ``share`` equals the in-sample R² of
    :func:`~rsa_bias.analysis.features.variance.feature_variance_explained` (Lampinen et al.'s
    metric); multi-level features use all their levels (one-hot), not a linear code.

    Parameters
    ----------
    x, stimuli, features, orthogonalise
        As in :func:`feature_decomposition`.

    Returns
    -------
    xarray.Dataset
        ``share(feature)``, ``residual`` (1 − Σ share), ``total`` (1) and ``total_variance``
        (sum over units of the variance, ddof=0).

    Raises
    ------
    ValueError
        ``x`` is constant over the stimuli (no variance to attribute).

    Examples
    --------
    >>> from rsa_bias.brain import factorial_stimuli, simulate_population
    >>> pop = simulate_population(factorial_stimuli({"a": 2, "b": 2}, repeats=8),
    ...                           {"a": 0.6, "b": 0.1}, n_neurons=20)
    >>> shares = variance_shares(pop.signal)
    >>> [round(float(s), 2) for s in shares.share], round(float(shares.residual), 2)
    ([0.6, 0.1], 0.3)
    """
    parts = feature_decomposition(x, stimuli=stimuli, features=features,
                                  orthogonalise=orthogonalise)
    energy = (parts**2).sum(dim=[d for d in parts.dims if d != "component"])
    total = float(energy.sum())
    if not total > 0:
        raise ValueError("x is constant over stimuli; it has no variance to attribute")
    share = (energy / total).rename(component="feature")
    return xr.Dataset({"share": share.drop_sel(feature="residual"),
                       "residual": share.sel(feature="residual", drop=True), "total": 1.0,
                       "total_variance": total / parts.sizes["stimulus"]},
                      attrs=result_attrs("variance_shares", method="feature_variance_shares",
                                         measure="variance", features=list(share.feature.values),
                                         orthogonalise=orthogonalise))


@legacy_call(positional=("features", "stimuli"))
def remove_features(x: ArrayLike, *, stimuli: xr.Dataset | None = None,
                    features: Sequence[str]) -> xr.DataArray:
    """``x`` with the named feature subspaces projected out.

    For one feature this subtracts each stimulus's class mean and adds back the grand mean;
    for several, it projects out their joint span (whatever the order or balance, so no
    ``orthogonalise`` option is needed and no warning is raised).

    Parameters
    ----------
    x, stimuli
        As in :func:`feature_decomposition`.
    features : sequence of str
        Features and conjunctions (``"a:b"``) to remove; required.

    Returns
    -------
    xarray.DataArray with dims ("stimulus", unit dim)
        ``x`` (repeats averaged) minus its parts in the named subspaces; the grand mean and
        everything else are unchanged.
    """
    xl = _labelled(x, stimuli, "x")
    values = stimulus_matrix(xl, "x")
    names = _names(xl, features)
    parts, _ = _parts(values, _bases(xl, names, "sequential", warn=False))
    return xl.copy(data=values - sum(parts)).assign_attrs(
        result_attrs("remove_features", features=names))


@legacy_call(positional=("stimuli",))
def equalise_feature_variance(x: ArrayLike, *, stimuli: xr.Dataset | None = None,
                              features: Sequence[str] | None = None,
                              min_f_ratio: float = MIN_F_RATIO, min_share: float = 1e-6,
                              orthogonalise: str = "sequential") -> xr.DataArray:
    """Rescale each coded feature's part so that all of them take the same variance share.

    A feature is *coded* when its variance per dimension of its subspace (``L − 1`` for ``L``
    values) is more than ``min_f_ratio`` times the residual variance per residual dimension
    (``n − 1 − Σ dims``; the residual is everything the listed features do not describe), and
    its share exceeds ``min_share`` (so that round-off is never amplified). This is an F
    ratio: a feature the representation does not code still takes, by chance, about its
    dimension's worth of the noise, a ratio near 1. Coded features are rescaled to their mean
    share; the others are left alone rather than amplified from noise, and the residual and
    total variance are unchanged. The result represents what ``x`` computes, not how loudly.
    On noisy data a quiet coded feature's part includes its share of the noise, which is
    amplified with it. Without residual dimensions only ``min_share`` applies.

    Parameters
    ----------
    x, stimuli, features
        As in :func:`feature_decomposition`.
    min_f_ratio : float, default 4.0
        The F ratio (variance per subspace dimension / residual variance per residual
        dimension) a feature must exceed to count as coded; must be >= 0 (1 is chance
        level). The default 4 is above the 95th percentile of the null F distribution for one
        unit and a one-dimensional subspace (F(1, ∞): 3.84), and more so for more units or
        dimensions.
    min_share : float, default 1e-6
        The variance share a feature must exceed to count as coded, so that round-off is
        never amplified; in [0, 1).
    orthogonalise
        As in :func:`feature_decomposition`.

    Returns
    -------
    xarray.DataArray with dims ("stimulus", unit dim)
        ``x`` (repeats averaged) rescaled, with ``attrs`` ``equalised_features`` (the coded
        features), ``equalised_gain`` and ``equalised_f_ratio`` (per listed feature; ``inf``
        without residual variance).

    Raises
    ------
    ValueError
        ``min_f_ratio`` is not a number >= 0, ``min_share`` not one in [0, 1), or as
        :func:`feature_decomposition`.
    """
    try:
        min_f_ratio = check_number(min_f_ratio, "min_f_ratio", low=0)
    except ValueError as err:
        raise ValueError(f"min_f_ratio must be >= 0 (1 is chance level): {err}") from None
    min_share = check_number(min_share, "min_share", low=0, high=1, high_open=True)
    xl = _labelled(x, stimuli, "x")
    values = stimulus_matrix(xl, "x")
    names = _names(xl, features)
    bases = _bases(xl, names, orthogonalise)
    parts, rest = _parts(values, bases)
    energy = np.array([np.sum(p**2) for p in parts])
    shares = energy / max(np.sum((values - values.mean(axis=0)) ** 2), 1e-300)
    dims = np.array([q.shape[1] for q in bases])
    rest_dims = values.shape[0] - 1 - int(dims.sum())
    per_dim_rest = np.sum(rest**2) / rest_dims if rest_dims > 0 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(energy > 0, energy / dims / per_dim_rest, 0.0)
    coded = (shares > min_share) & (ratio > min_f_ratio)
    target = shares[coded].mean() if coded.any() else 0.0
    gains = np.where(coded, np.sqrt(target / np.where(coded, shares, 1.0)), 1.0)
    out = values.mean(axis=0) + rest + sum(g * p for g, p in zip(gains, parts, strict=True))
    attrs = {**xl.attrs, **result_attrs("equalise_feature_variance", features=names,
                                         min_f_ratio=min_f_ratio, min_share=min_share,
                                         orthogonalise=orthogonalise),
             "equalised_features": [n for n, c in zip(names, coded, strict=True) if c],
             "equalised_gain": gains.tolist(), "equalised_f_ratio": ratio.tolist()}
    return xl.copy(data=out).assign_attrs(attrs)
