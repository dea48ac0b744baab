"""Simulated populations with known ground truth: how much variance each feature takes.

A real brain never tells us how loudly it represents each feature; a simulated one does. For a
labelled stimulus set (``feature_<name>`` coords, ``attrs["feature_names"]``) this module builds
a population ``response(stimulus, neuron[, repeat])`` whose noise-free part ``signal`` has
*exactly* the requested share of its variance in each feature's subspace.

Construction. Over the ``n`` stimuli, the *subspace* of feature ``f`` is spanned by its centred
one-hot indicators (``levels - 1`` dimensions); a *conjunction* ``"a:b"`` (or ``"a:b:c"``) is
spanned by the centred indicators of the joint cells with every lower-order effect projected
out (the interaction of an ANOVA; :func:`rsa_bias._features.interaction_basis`, the same
subspaces as :mod:`rsa_bias.analysis.features.subspaces` uses). The main effects are those
of every listed feature (``attrs["feature_names"]``), of every feature named in ``shares`` and
of both parts of every conjunction, listed or not; those not given a share get exactly 0. In a
balanced, independent design — a full factorial, or every split of
:func:`rsa_bias.tasks.make_binary_task` — these subspaces are mutually orthogonal; otherwise
each is orthogonalised against the ones before it (main effects in that order, then
conjunctions), so earlier components keep the variance they share with later ones.
Component ``c`` contributes ``Q_c G_c`` (``Q_c`` an orthonormal basis of its subspace, ``G_c``
Gaussian neuron weights), scaled so that ``||Q_c G_c||² = share_c · n · n_neurons``; the
*residual* ``1 - Σ share_c`` is random variance orthogonal to those main effects and to the
requested conjunctions. It is *not* kept out of conjunctions nobody asked for: in a design with
room for them, an unrequested interaction such as ``"a:c"`` (or ``"a:b"`` when only ``a`` and
``b`` are requested) holds whatever part of the residual falls in its subspace. Request such a
conjunction with share 0 to keep it empty. Altogether the signal has mean 0 and total variance 1
per neuron on average, and the realised shares equal the requested ones to floating-point
precision.

``nonlinearity`` mixes the components through a pointwise nonlinearity (with a random offset per
neuron), which creates mixed, conjunctive tuning; the requested shares are then re-imposed by
rescaling each component's projection, so they stay exact, while the interactions the
nonlinearity created stay in the residual (which then spans every free direction, so a
``residual_rank`` cannot be combined with a nonlinearity). Trial noise (independent Gaussian,
variance ``noise_ratio`` × the signal's) is added to ``response``, once or for each of
``n_repeats``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr

from rsa_bias._features import feature_names, interaction_basis
from rsa_bias._linalg import project_out

RESIDUAL = "residual"


def _relu(s: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.maximum(s + offset, 0.0)


def _tanh(s: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return np.tanh(2.0 * s + offset)


NONLINEARITIES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
    "none": None,
    "relu": _relu,
    "tanh": _tanh,
}


def factorial_stimuli(levels: Mapping[str, int], *, repeats: int = 1) -> xr.Dataset:
    """Build every combination of feature levels, each as ``repeats`` distinct stimuli.

    Parameters
    ----------
    levels : mapping of str to int
        Feature name (a Python identifier) -> number of levels (>= 2), e.g.
        ``{"shape": 4, "colour": 2}``.
    repeats : int, default 1
        Stimuli (exemplars) per combination. With ``repeats > 1`` the stimuli of a cell
        share their feature values but may differ in everything else, which is where a
        simulated population's residual variance lives.

    Returns
    -------
    xarray.Dataset with dims ("stimulus",)
        Integer stimulus ids in cell-major order (last feature fastest), no data
        variables, coords ``feature_<name>`` (levels ``0 .. L-1``) and ``exemplar``;
        ``attrs["feature_names"]`` lists the features in order.

    Raises
    ------
    ValueError
        For no features, a name that is not an identifier, fewer than 2 levels or
        ``repeats < 1``.

    Examples
    --------
    >>> ds = factorial_stimuli({"a": 2, "b": 3}, repeats=2)
    >>> ds.sizes["stimulus"], ds.attrs["feature_names"]
    (12, ['a', 'b'])
    """
    names = list(levels)
    if not names:
        raise ValueError("levels is empty; give at least one feature, e.g. {'a': 2}")
    for name, k in levels.items():
        if not str(name).isidentifier():
            raise ValueError(f"feature name {name!r} must be a Python identifier")
        if int(k) < 2:
            raise ValueError(f"feature {name!r} has {k} level(s); a feature needs at least 2")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    cells = np.array(list(itertools.product(*(range(int(levels[n])) for n in names))))
    values = np.repeat(cells, repeats, axis=0)
    coords = {"stimulus": np.arange(len(values)),
              "exemplar": ("stimulus", np.tile(np.arange(repeats), len(cells)))}
    coords.update({f"feature_{n}": ("stimulus", values[:, i]) for i, n in enumerate(names)})
    return xr.Dataset(coords=coords, attrs={"feature_names": names})


# --- subspaces ---------------------------------------------------------------------------------


def listed_features(stimuli: xr.Dataset) -> list[str]:
    """``attrs["feature_names"]`` as a list (netCDF reads a one-element list back as a str)."""
    return feature_names(stimuli.attrs)


def _feature_values(stimuli: xr.Dataset, name: str) -> np.ndarray:
    key = f"feature_{name}"
    if key not in stimuli.coords:
        have = [str(c)[8:] for c in stimuli.coords if str(c).startswith("feature_")]
        raise ValueError(f"no coord {key!r} on the stimuli (features: {have}); a conjunction "
                         "is written 'a:b'")
    return np.asarray(stimuli[key].values)


def _conjunction_parts(conj: str) -> list[str]:
    parts = conj.split(":")
    if len(set(parts)) != len(parts) or not all(parts):
        raise ValueError(f"conjunction {conj!r} must name distinct features, e.g. 'a:b' or "
                         "'a:b:c'")
    return parts


def _main_effects(stimuli: xr.Dataset, components: list[str]) -> list[str]:
    """Features whose main effects are built: the listed ones, then the other features named
    in ``components`` (alone or as a part of a conjunction), in order of appearance."""
    names = listed_features(stimuli)
    for comp in components:
        for part in _conjunction_parts(comp) if ":" in comp else [comp]:
            if part not in names:
                names.append(part)
    return names


def component_bases(stimuli: xr.Dataset, components: list[str]) -> dict[str, np.ndarray]:
    """Build orthonormal ``(n_stimulus, dim)`` bases of feature and conjunction subspaces.

    Main effects (every feature in ``attrs["feature_names"]`` and every
    feature in ``components``, including both parts of each conjunction) are built first, so
    conjunctions and the residual are orthogonal to them, each orthogonalised against the
    ones before it; then the conjunctions named in ``components``. A feature's subspace is
    spanned by its centred one-hot indicators (``levels - 1`` dimensions), a conjunction's
    by the centred indicators of its joint cells with every lower-order effect projected
    out (the interaction of an ANOVA); see the module docstring.

    Parameters
    ----------
    stimuli : xarray.Dataset with dims ("stimulus",)
        A stimulus set with ``feature_<name>`` coords and ``attrs["feature_names"]``.
    components : list of str
        Features and conjunctions (``"a:b"``, ``"a:b:c"``) to build bases for, besides the
        listed features.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{component: basis}``, each ``(n_stimulus, dim)`` with orthonormal columns: the
        main effects first (listed features, then the others in order of appearance),
        then the conjunctions of ``components``.

    Raises
    ------
    ValueError
        For a feature without a ``feature_<name>`` coord, a malformed conjunction, or a
        component that spans no variance beyond the ones before it.

    Examples
    --------
    >>> bases = component_bases(factorial_stimuli({"a": 2, "b": 3}, repeats=2), ["a:b"])
    >>> {k: v.shape for k, v in bases.items()}
    {'a': (12, 1), 'b': (12, 2), 'a:b': (12, 2)}
    """
    mains = _main_effects(stimuli, components)
    bases: dict[str, np.ndarray] = {}
    for name in mains:
        bases[name] = interaction_basis(_feature_values(stimuli, name), list(bases.values()))
        if bases[name].shape[1] == 0:
            raise ValueError(f"feature {name!r} spans no variance on these stimuli (constant, "
                             "or fully determined by the features before it)")
    for conj in (c for c in components if ":" in c):
        codes = np.stack([_feature_values(stimuli, p) for p in _conjunction_parts(conj)], axis=1)
        bases[conj] = interaction_basis(codes, list(bases.values()))
        if bases[conj].shape[1] == 0:
            raise ValueError(f"conjunction {conj!r} spans no variance beyond its lower-order "
                             "effects")
    return bases


# --- population --------------------------------------------------------------------------------


def _checked_shares(shares: Mapping[str, float], features: list[str]) -> dict[str, float]:
    out = {f: 0.0 for f in features}
    out.update({str(k): float(v) for k, v in shares.items() if str(k) != RESIDUAL})
    if any(not np.isfinite(v) or v < 0 for v in out.values()):
        raise ValueError(f"shares must be finite and >= 0, got {dict(shares)}")
    total = sum(out.values())
    if total > 1 + 1e-9:
        raise ValueError(f"shares add up to {total:.4g} > 1; they are fractions of the signal "
                         "variance (the rest is the residual)")
    out[RESIDUAL] = 1.0 - total if 1.0 - total > 1e-12 else 0.0
    if RESIDUAL in shares and abs(float(shares[RESIDUAL]) - out[RESIDUAL]) > 1e-9:
        raise ValueError(f"shares['residual'] = {shares[RESIDUAL]} but the feature shares leave "
                         f"{out[RESIDUAL]:.4g}; omit 'residual' (it is 1 - the rest)")
    return out


def _residual_basis(bases: list[np.ndarray], n: int, rank: int | None,
                    rng: np.random.Generator) -> np.ndarray:
    """Orthonormal basis of a random subspace orthogonal to the constant and all ``bases``."""
    free = n - 1 - sum(q.shape[1] for q in bases)
    if free < 1:
        raise ValueError("the stimuli leave no room for residual variance (every direction "
                         "belongs to a feature or conjunction); give more stimuli per cell "
                         "(factorial_stimuli(..., repeats=2)) or let the shares add up to 1")
    rank = free if rank is None else int(rank)
    if not 1 <= rank <= free:
        raise ValueError(f"residual_rank must be in [1, {free}] for these stimuli, got {rank}")
    z = rng.normal(size=(n, rank))
    z -= z.mean(axis=0)
    return np.linalg.qr(project_out(z, bases))[0]


def _components(bases: dict[str, np.ndarray], shares: dict[str, float], n_neurons: int,
                residual_rank: int | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = next(iter(bases.values())).shape[0]
    out = {}
    spaces = dict(bases)
    if shares[RESIDUAL] > 0:
        spaces[RESIDUAL] = _residual_basis(list(bases.values()), n, residual_rank, rng)
    for name, share in shares.items():
        if share == 0:
            continue
        part = spaces[name] @ rng.normal(size=(spaces[name].shape[1], n_neurons))
        out[name] = part * np.sqrt(share * n * n_neurons / np.sum(part**2))
    return out


def _impose_shares(signal: np.ndarray, bases: dict[str, np.ndarray],
                   shares: dict[str, float]) -> np.ndarray:
    """Rescale each component's projection of ``signal`` to its share (exactly)."""
    centred = signal - signal.mean(axis=0)
    total = centred.shape[0] * centred.shape[1]
    out = np.zeros_like(centred)
    rest = centred
    for name, q in bases.items():
        part = q @ (q.T @ centred)
        rest = rest - part
        share = shares.get(name, 0.0)
        if share > 0:
            out += part * np.sqrt(share * total / max(np.sum(part**2), 1e-300))
    if shares[RESIDUAL] > 0:
        out += rest * np.sqrt(shares[RESIDUAL] * total / max(np.sum(rest**2), 1e-300))
    return out


def simulate_population(stimuli: xr.Dataset, shares: Mapping[str, float], *,
                        n_neurons: int = 100, noise_ratio: float = 0.0,
                        n_repeats: int | None = None, nonlinearity: str = "none",
                        residual_rank: int | None = None, seed: int = 0) -> xr.Dataset:
    """Simulate a population whose signal variance is split among features as requested.

    Parameters
    ----------
    stimuli : xarray.Dataset with dims ("stimulus",)
        A stimulus set with ``feature_<name>`` coords and ``attrs["feature_names"]`` (e.g.
        :func:`factorial_stimuli` or :func:`rsa_bias.tasks.make_binary_task`).
    shares : mapping of str to float
        Component -> fraction of the signal variance, e.g. ``{"a": 0.6, "b": 0.1}``; a
        component is a feature or a conjunction ``"a:b"`` (``"a:b:c"``). Listed features
        left out, and the parts of a conjunction not given a share, get exactly 0; the
        remainder ``1 - Σ shares`` is residual variance (see the module docstring). Shares
        must be finite, >= 0 and add up to at most 1; a ``"residual"`` entry, if given,
        must equal that remainder.
    n_neurons : int, default 100
        Number of simulated neurons (``neuron`` dim).
    noise_ratio : float, default 0.0
        Variance of the trial noise / variance of the signal (0: noiseless).
    n_repeats : int, optional
        None for a single trial per stimulus; else a ``repeat`` dim of that size, each
        with independent noise.
    nonlinearity : str, default "none"
        ``"none"``, ``"relu"`` or ``"tanh"`` applied after mixing (shares are re-imposed
        afterwards, see the module docstring).
    residual_rank : int, optional
        Dimension of the residual subspace (default: all free directions). A low rank
        gives a few loud idiosyncratic directions, as trained networks have. Only with
        ``nonlinearity="none"`` (a nonlinearity fills every free direction).
    seed : int, default 0
        Seeds every random draw (``numpy.random.default_rng(seed)``).

    Returns
    -------
    xarray.Dataset
        ``response(stimulus, neuron[, repeat])`` (signal + noise), ``signal(stimulus,
        neuron)`` (noise-free, mean 0, variance 1 per neuron on average) and
        ``true_share(component)`` (the generating shares, residual included, summing to 1);
        the stimulus coords of ``stimuli``; provenance attrs and ``feature_names``.

    Examples
    --------
    >>> pop = simulate_population(factorial_stimuli({"a": 2, "b": 2}, repeats=8),
    ...                           {"a": 0.6, "b": 0.1}, n_neurons=20, noise_ratio=0.5)
    >>> pop.response.dims, [round(float(s), 2) for s in pop.true_share]
    (('stimulus', 'neuron'), [0.6, 0.1, 0.3])
    """
    from rsa_bias.provenance import provenance_attrs

    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid: {sorted(NONLINEARITIES)}")
    if n_neurons < 1 or noise_ratio < 0 or (n_repeats is not None and n_repeats < 1):
        raise ValueError("need n_neurons >= 1, noise_ratio >= 0 and n_repeats None or >= 1; "
                         f"got {n_neurons}, {noise_ratio}, {n_repeats}")
    if "stimulus" not in stimuli.dims:
        raise ValueError("stimuli need a 'stimulus' dim (see factorial_stimuli)")
    if residual_rank is not None and nonlinearity != "none":
        raise ValueError(f"residual_rank={residual_rank} cannot hold with nonlinearity="
                         f"{nonlinearity!r}: the nonlinearity spreads the residual over every "
                         "free direction; pass residual_rank=None or nonlinearity='none'")
    wanted = _checked_shares(shares, _main_effects(stimuli, [str(k) for k in shares
                                                             if str(k) != RESIDUAL]))
    bases = component_bases(stimuli, [c for c in wanted if c != RESIDUAL])
    rng = np.random.default_rng(seed)
    signal = sum(_components(bases, wanted, n_neurons, residual_rank, rng).values())
    mix = NONLINEARITIES[nonlinearity]
    if mix is not None:
        signal = _impose_shares(mix(signal, rng.normal(scale=0.5, size=n_neurons)), bases,
                                wanted)
    shape = signal.shape + (() if n_repeats is None else (n_repeats,))
    noise = rng.normal(scale=np.sqrt(noise_ratio), size=shape)
    response = (signal if n_repeats is None else signal[..., None]) + noise
    dims = ("stimulus", "neuron") + (() if n_repeats is None else ("repeat",))
    coords = {k: c for k, c in stimuli.coords.items() if c.dims == ("stimulus",)}
    coords.update(neuron=np.arange(n_neurons), component=list(wanted))
    config = {"shares": wanted, "n_neurons": n_neurons, "noise_ratio": noise_ratio,
              "n_repeats": n_repeats, "nonlinearity": nonlinearity,
              "residual_rank": residual_rank}
    attrs = provenance_attrs(config=config, seed=seed, method="simulate_population")
    attrs["feature_names"] = listed_features(stimuli)
    return xr.Dataset({"response": (dims, response), "signal": (dims[:2], signal),
                       "true_share": ("component", list(wanted.values()))},
                      coords=coords, attrs=attrs)
