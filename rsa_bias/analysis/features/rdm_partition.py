"""The RDM-level view of which feature drives an RSA score.

A target RDM (a brain region's, a layer's) is regressed on model RDMs — typically one per
feature, from :func:`feature_model_rdms` — by ordinary least squares with an intercept over
the condensed (upper-triangle) dissimilarities:

* :func:`rdm_variance_partition` splits the R² among the models, or among groups of models
  (e.g. all pair RDMs of one feature): exact Shapley values of ``R²(S)`` over all subsets (the
  Lindeman–Merenda–Gold decomposition, which adds up to the full R² whatever the correlations
  between models), each one's *unique* variance (the R² lost when it is dropped) and the
  *shared* rest;
* :func:`residualise_rdm` keeps what the models do not explain, so that two RDMs can be
  compared beyond, say, a loud feature (a partial correlation).

Unlike the representation-level attribution of :mod:`rsa_bias.analysis.features.attribution`, this
works for any RDM (correlation distance, crossnobis, a shipped brain RDM) and needs no
activations; it describes the RDM's geometry, which is exactly what rank or linear RSA sees.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._features import joint_cells
from rsa_bias._values import check_names
from rsa_bias.analysis._inputs import ArrayLike
from rsa_bias.analysis._rdm_vectors import RDM_DIMS, RdmStack, as_stack, common_ids, select_pairs
from rsa_bias.analysis.features._labels import feature_names_of
from rsa_bias.analysis.features._shapley import _result, _shapley
from rsa_bias.analysis.rsa import squareform
from rsa_bias.provenance import result_attrs

RdmInput = ArrayLike | Mapping[str, ArrayLike] | Sequence[ArrayLike]


@legacy_call(positional=("features",))
def feature_model_rdms(stimuli: xr.Dataset | xr.DataArray, *,
                       features: Sequence[str] | None = None,
                       geometry: str = "differs") -> xr.DataArray:
    """Model RDMs of features: 1 where two stimuli differ in a feature, 0 where they agree.

    Parameters
    ----------
    stimuli : xarray.Dataset or xarray.DataArray
        Anything with a ``stimulus`` dim and ``feature_<name>`` coords on it (a stimulus set,
        labelled activations); ``attrs["feature_names"]`` lists the default features.
    features : sequence of str, optional
        Names of the features; ``"a:b"`` gives the joint cell's RDM (1 where a or b
        differs). Default: every listed feature (``attrs["feature_names"]``, else every
        ``feature_<name>`` coord).
    geometry : {"differs", "pairs"}, default "differs"
        ``"differs"``: one RDM per feature. ``"pairs"``: one RDM per pair of values
        ``"a[k,l]"``, ``k <= l`` (1 where one stimulus has value k and the other l; for
        ``k == l`` this includes the diagonal entry of each stimulus with value k).
        Regressed together (with an intercept) the pair RDMs capture *any* dissimilarity
        pattern that depends on the feature alone — which values are close to which, and how
        spread each value's stimuli are — not only same vs different.

    Returns
    -------
    xarray.DataArray with dims ("model", "stimulus_i", "stimulus_j")
        One 0/1 RDM per model, labelled with the stimulus ids and the model names (the
        feature, or ``"a[k,l]"`` for ``"pairs"``).

    Examples
    --------
    >>> from rsa_bias.brain import factorial_stimuli
    >>> models = feature_model_rdms(factorial_stimuli({"a": 2, "b": 3}))
    >>> models.model.values.tolist(), models.sizes["stimulus_i"]
    (['a', 'b'], 6)
    >>> float(models.sel(model="a")[0, 1]), float(models.sel(model="b")[0, 1])
    (0.0, 1.0)
    >>> feature_model_rdms(factorial_stimuli({"a": 2}), geometry="pairs").model.values.tolist()
    ['a[0,0]', 'a[0,1]', 'a[1,1]']
    """
    if geometry not in ("differs", "pairs"):
        raise ValueError(f"unknown geometry {geometry!r}; valid: ['differs', 'pairs']")
    probe = xr.DataArray(np.zeros(stimuli.sizes["stimulus"]), dims="stimulus",
                         coords={k: c for k, c in stimuli.coords.items()
                                 if c.dims == ("stimulus",)}, attrs=dict(stimuli.attrs))
    if features is None:
        names = feature_names_of(probe, None)
    else:
        names = [str(f) for f in check_names(features, "features")]
        feature_names_of(probe, sorted({p for f in names for p in f.split(":")}))
    models, labels = [], []
    for name in names:
        codes = np.stack([np.asarray(probe[f"feature_{p}"].values) for p in name.split(":")],
                         axis=1)
        if geometry == "differs":
            models.append(np.any(codes[:, None, :] != codes[None, :, :], axis=2).astype(float))
            labels.append(name)
            continue
        cell, first = joint_cells(codes)
        values = codes[first]
        for k, m in itertools.combinations_with_replacement(range(len(values)), 2):
            hit = (cell[:, None] == k) & (cell[None, :] == m)
            models.append((hit | hit.T).astype(float))
            labels.append(f"{name}[{','.join(map(str, values[k]))},"
                          f"{','.join(map(str, values[m]))}]")
    ids = probe["stimulus"].values
    return xr.DataArray(np.stack(models), dims=("model", *RDM_DIMS), name="feature_rdm",
                        coords={"model": labels, "stimulus_i": ids, "stimulus_j": ids},
                        attrs=result_attrs("feature_model_rdms", method=geometry,
                                           features=names))


def _list_stacks(predictors: list | tuple) -> list[tuple[str, RdmStack]]:
    """A list of labelled RDMs, each keeping its own stimulus ids; named by their scalar
    ``model`` coords when all have distinct ones (``stack.sel(model=...)``), else
    ``model_0``, ``model_1``, ..."""
    stacks = [as_stack(p, f"predictors[{i}]") for i, p in enumerate(predictors)]
    for i, stack in enumerate(stacks):
        if stack.vectors.shape[0] != 1:
            raise ValueError(f"predictors[{i}] is a stack of {stack.vectors.shape[0]} RDMs; a "
                             "list takes one RDM per item (pass the stack itself, or a "
                             "mapping name -> RDM)")
    labels = [str(p["model"].values) if isinstance(p, xr.DataArray) and "model" in p.coords
              and p["model"].ndim == 0 else None for p in predictors]
    if None in labels or len(set(labels)) != len(labels):
        labels = [f"model_{i}" for i in range(len(stacks))]
    return list(zip(labels, stacks, strict=True))


def _predictor_stacks(predictors: RdmInput) -> list[tuple[str, RdmStack]]:
    if isinstance(predictors, list | tuple) and any(isinstance(p, xr.DataArray)
                                                    for p in predictors):
        return _list_stacks(predictors)
    if isinstance(predictors, Mapping):
        out = [(str(k), as_stack(v, f"predictors[{k!r}]")) for k, v in predictors.items()]
        for name, stack in out:
            if stack.vectors.shape[0] != 1:
                raise ValueError(f"predictors[{name!r}] is a stack of {stack.vectors.shape[0]} "
                                 "RDMs; a mapping takes one RDM per name (pass the stack itself, "
                                 "or group its RDMs with groups={...})")
        return out
    p = as_stack(predictors, "predictors")
    if len(p.dims) > 1:
        raise ValueError(f"predictors have leading dims {p.dims}; give one stack dim "
                         "(e.g. 'model') or a mapping name -> RDM")
    labels = p.coords[p.dims[0]].values if p.dims and p.dims[0] in p.coords else \
        [f"model_{i}" for i in range(p.vectors.shape[0])]
    return [(str(label), RdmStack(p.vectors[i:i + 1], p.ids)) for i, label in enumerate(labels)]


def _design(target: ArrayLike, predictors: RdmInput,
            ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Target vector, design (pairs × models), model names and stimulus ids (target order)."""
    t = as_stack(target, "target")
    if t.vectors.shape[0] != 1:
        raise ValueError("target must be one RDM, not a stack; loop over the stack")
    items = _predictor_stacks(predictors)
    if not items:
        raise ValueError("no predictor RDMs were given")
    for name, s in items:
        common_ids(t, s, ("target", name), "exact", "regressing RDMs")
    design = np.column_stack([select_pairs(s.vectors, s.ids, t.ids)[0] for _, s in items])
    if np.isnan(design).any() or np.isnan(t.vectors).any():
        raise ValueError("RDMs with NaN dissimilarities cannot be regressed; drop those stimuli")
    if not np.ptp(t.vectors[0]) > 0:
        raise ValueError("the target RDM is constant (all its dissimilarities are equal); it "
                         "has no variance to partition or residualise")
    return t.vectors[0], design, [name for name, _ in items], t.ids


def _ols(t: np.ndarray, design: np.ndarray) -> tuple[float, np.ndarray]:
    """R² and residuals of OLS of ``t`` on ``design`` with an intercept."""
    a = np.column_stack([np.ones(len(t)), design])
    resid = t - a @ np.linalg.lstsq(a, t, rcond=None)[0]
    return 1.0 - float(resid @ resid) / float(np.sum((t - t.mean()) ** 2)), resid


def _grouped(names: list[str], groups: Mapping[str, Sequence[str]] | None,
             ) -> dict[str, list[int]]:
    """Group name -> column indices. Default: by the name before ``"["`` (the pair RDMs
    ``"a[k,l]"`` of :func:`feature_model_rdms` form the group ``"a"``); other names alone."""
    if groups is None:
        out: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            out.setdefault(n.split("[")[0] if n.endswith("]") else n, []).append(i)
        return out
    out, seen = {}, {}
    for g, members in groups.items():
        members = [members] if isinstance(members, str) else list(members)
        unknown = [m for m in members if m not in names]
        if unknown or not members:
            raise ValueError(f"group {g!r} names {unknown or 'no'} predictors; the predictors "
                             f"are {names}")
        for m in members:
            if m in seen:
                raise ValueError(f"predictor {m!r} is in groups {seen[m]!r} and {g!r}; put "
                                 "each predictor in one group")
            seen[m] = str(g)
        out[str(g)] = [names.index(m) for m in members]
    for i, n in enumerate(names):  # ungrouped predictors enter alone
        if n not in seen:
            if n in out:
                raise ValueError(f"predictor {n!r} is not in any group but a group has its "
                                 "name; add it to a group or rename the group")
            out[n] = [i]
    return out


def rdm_variance_partition(target: ArrayLike, predictors: RdmInput, *,
                           groups: Mapping[str, Sequence[str]] | None = None) -> xr.Dataset:
    """Partition the variance of an RDM among predictor RDMs (OLS with an intercept).

    The target's condensed dissimilarities are regressed on the predictors'. Each group's
    ``share`` is its exact Shapley value of ``R²(S)`` over all subsets (the
    Lindeman–Merenda–Gold decomposition, which adds up to the full R² whatever the
    correlations between models); ``unique`` is the R² lost when it is dropped and
    ``shared`` the rest. Unlike :func:`~rsa_bias.analysis.features.attribute_rsa`, this works
    for any RDM (correlation distance, crossnobis, a shipped brain RDM) and needs no
    activations.

    Parameters
    ----------
    target : xarray.DataArray or numpy.ndarray
        One RDM: square ``("stimulus_i", "stimulus_j")`` or condensed (``"pair"`` dim, or a
        vector), labelled or numpy.
    predictors : xarray.DataArray, numpy.ndarray, mapping of str to RDM, or list of RDMs
        A stack with one leading dim (e.g. :func:`feature_model_rdms`, named by its coord;
        numpy stacks are named ``model_0``, ``model_1``, ...), a mapping name -> RDM, or a
        list of RDMs (labelled items keep their own stimulus ids; named by their scalar
        ``model`` coords when all have distinct ones, as ``stack.sel(model=m)`` leaves,
        else ``model_0``, ...). Labelled RDMs are aligned on stimulus ids and must cover the
        same set as ``target``.
    groups : mapping of str to sequence of str, optional
        Group name -> predictor names; the variance is partitioned among the groups
        (a group enters or leaves the regression with all its predictors), and predictors in
        no group enter alone. Default: the pair RDMs ``"a[k,l]"`` of
        ``feature_model_rdms(..., geometry="pairs")`` are grouped by feature ``"a"``, every
        other predictor alone; ``{m: [m] for m in names}`` gives one entry per predictor. At
        most 10 groups (exact Shapley values over all subsets).

    Returns
    -------
    xarray.Dataset
        With dim ``model`` (one entry per group): ``share`` (Shapley values of R²; they add
        up to ``r2``), ``unique`` (R² lost when the group is dropped), ``shared``
        (``r2 − Σ unique``), ``r2``, ``unexplained`` (``1 − r2``), ``subset_score(subset)``
        (R² of every subset) and ``n_predictors(model)``; ``attrs["groups"]`` lists the
        members (JSON).

    Raises
    ------
    ValueError
        A stack as ``target``, no predictors, mismatched stimuli, NaN dissimilarities, a
        constant target, a predictor in two groups, or more than 10 groups.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random(45), rng.random(45)
    >>> part = rdm_variance_partition(2 * a + b, {"a": a, "b": b})
    >>> round(float(part.r2), 6), round(float(part.share.sum()), 6)
    (1.0, 1.0)
    """
    t, design, names, _ = _design(target, predictors)
    grouped = _grouped(names, groups)
    cols = list(grouped.values())
    phi, v = _shapley(lambda s: _ols(t, design[:, [c for i in s for c in cols[i]]])[0],
                      len(cols), what="predictor groups",
                      remedy="group the predictors, groups={{name: [predictor, ...]}}, into at "
                      "most {max} groups (ungrouped predictors count as one each), or pass "
                      "fewer predictors")
    full = float(v[-1])
    everyone = 2 ** len(cols) - 1
    unique = np.array([full - v[everyone & ~(1 << i)] for i in range(len(cols))])
    members = {g: [names[c] for c in cs] for g, cs in grouped.items()}
    ds = _result(list(grouped), phi, v, full, "rdm_regression",
                 {"regression": "ols_intercept", "groups": members},
                 function="rdm_variance_partition")
    ds = ds.rename(feature="model").drop_vars(["residual", "total", "features_score"])
    ds.attrs["groups"] = json.dumps(members)
    return ds.assign(unique=("model", unique), shared=full - unique.sum(), r2=full,
                     unexplained=1.0 - full, n_predictors=("model", [len(c) for c in cols]))


def residualise_rdm(target: ArrayLike, predictors: RdmInput) -> xr.DataArray:
    """The part of an RDM that the predictor RDMs do not explain (OLS residuals, mean 0).

    Compare two residualised RDMs (``compare_rdms(..., method="pearson")``) to ask whether
    they agree beyond the predictors, e.g. beyond a loud feature's model RDM (a partial
    correlation).

    Parameters
    ----------
    target, predictors : as in :func:`rdm_variance_partition`

    Returns
    -------
    xarray.DataArray with dims ("stimulus_i", "stimulus_j")
        Over the target's stimulus ids; not a distance (it has mean 0 and negative
        entries), ``attrs["predictors"]`` names the predictors.

    Raises
    ------
    ValueError
        As :func:`rdm_variance_partition` (a constant target among them).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random(45), rng.random(45)
    >>> res = residualise_rdm(2 * a + b, {"a": a})
    >>> res.dims, bool(np.isclose(np.corrcoef(res.values[np.triu_indices(10, 1)], a)[0, 1], 0))
    (('stimulus_i', 'stimulus_j'), True)
    """
    t, design, names, ids = _design(target, predictors)
    return xr.DataArray(squareform(_ols(t, design)[1]), dims=RDM_DIMS, name="residual_rdm",
                        coords={"stimulus_i": ids, "stimulus_j": ids},
                        attrs=result_attrs("residualise_rdm", method="ols_intercept",
                                           predictors=names))
