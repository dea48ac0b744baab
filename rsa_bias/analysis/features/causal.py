"""Causal checks of what a layer's read-out can use: variance is not importance
(Lampinen, Chan & Hermann 2024; 2025).

A feature that carries little of a layer's variance can still be perfectly decodable, and a
linear read-out trained where two features predict the same target can follow either. Three
pure measures make that measurable on labelled activations (``feature_<name>`` and ``split``
coords on ``stimulus``, or a stimulus set passed as ``stimuli=``):

* :func:`class_mean_direction` — the difference between the mean activations of two values
  of a feature (the direction :func:`rsa_bias.training.steer` adds to a layer);
* :func:`pcs_needed` — how many of the layer's top principal components a linear read-out
  needs to decode each feature: a low-variance feature needs the PCs below the
  high-variance ones first;
* :func:`readout_reliance` — a read-out trained on stimuli where two binary features agree,
  tested where they conflict: the share of conflict stimuli it classifies as feature ``a``.

Stimuli are used in ascending id order, so results do not depend on the row order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rsa_bias._values import check_count, check_number
from rsa_bias.analysis._inputs import canonical_order
from rsa_bias.analysis.features._labels import (
    feature_names_of,
    labelled_activation,
    map_over_extra_dims,
    split_mask,
)
from rsa_bias.provenance import result_attrs


def _prepared(x, stimuli: xr.Dataset | None, features: Sequence[str] | None
              ) -> tuple[xr.DataArray, list[str]]:
    """``x`` labelled, with a ``unit`` dim, in ascending stimulus-id order; the names."""
    activation = labelled_activation(x, stimuli)
    if "unit" not in activation.dims:
        raise ValueError(f"x has dims {activation.dims}; a 'unit' dim is required")
    names = feature_names_of(activation, features)
    return canonical_order(activation), names


def _one_name(value, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be the name of one feature (a str); got {value!r}")
    return value


def _values(activation: xr.DataArray, name: str) -> np.ndarray:
    """The values of feature ``name`` on every stimulus, refusing NaN labels."""
    v = activation[f"feature_{name}"].values
    if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
        raise ValueError(f"feature {name!r} has {int(np.sum(~np.isfinite(v)))} NaN/inf "
                         "values; drop those stimuli first")
    return v


def _classifier(estimator):
    """A fresh copy of ``estimator``; default an L2 logistic regression (deterministic)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression

    if estimator is None:
        return LogisticRegression(C=1.0, max_iter=1000)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise ValueError(f"estimator must be a scikit-learn classifier (with fit and "
                         f"predict); got {type(estimator).__name__}")
    return clone(estimator)


def _fit_predict(estimator, x_fit, y_fit, x_eval) -> np.ndarray:
    from sklearn.base import clone

    return clone(estimator).fit(x_fit, y_fit).predict(x_eval)


def class_mean_direction(x: xr.DataArray, *, feature: str, stimuli: xr.Dataset | None = None,
                         split: str | None = "val") -> xr.DataArray:
    """Difference between the mean activations of the values of a feature.

    For a binary feature the direction from its lower value to its higher one,
    ``mean(x | value 1) - mean(x | value 0)`` over the ``split`` stimuli; moving a stimulus
    along it (or against it) moves it towards the other class's mean.

    Parameters
    ----------
    x : xarray.DataArray with dims ("stimulus", "unit", ...), or numpy.ndarray
        The layer's activations, labelled as for
        :func:`~rsa_bias.analysis.features.feature_variance_explained`; extra dims
        (``seed``, ``step``, ...) are looped over.
    feature : str
        Name of the feature (its ``feature_<name>`` coord).
    stimuli : xarray.Dataset, optional
        Stimulus set to take the feature and split coords from, aligned by stimulus id.
    split : str or None, default "val"
        The stimuli whose means are taken (``None``: all).

    Returns
    -------
    xarray.DataArray
        Binary feature: ``direction(..., unit)`` (the extra dims of ``x`` first), the higher
        value's mean minus the lower value's, with scalar coords ``value_from`` and
        ``value_to``. A feature with ``K > 2`` values: ``direction(..., value_from,
        value_to, unit)``, the mean of ``value_to`` minus the mean of ``value_from`` for
        every ordered pair (zero on the diagonal).

    Raises
    ------
    ValueError
        An unknown feature (the error lists the available ones), a feature with one value on
        the split, a missing ``split`` coord, stimuli that the stimulus set lacks, or
        NaN/inf, complex or empty activations.
    """
    activation, (name,) = _prepared(x, stimuli, [_one_name(feature, "feature")])
    mask = split_mask(activation, split)
    values = _values(activation, name)[mask]
    levels = np.unique(values)
    if levels.size < 2:
        raise ValueError(f"feature {name!r} takes one value ({levels[0]!r}) on split "
                         f"{split!r}; a direction needs two")

    def one(phi: np.ndarray) -> dict[str, np.ndarray]:
        p = phi[mask]
        means = np.stack([p[values == v].mean(axis=0) for v in levels])
        return {"direction": means[None, :, :] - means[:, None, :]}

    coords = {"value_from": levels, "value_to": levels}
    if "unit" in activation.coords:
        coords["unit"] = activation["unit"].values
    out = map_over_extra_dims(activation, one,
                              {"direction": ("value_from", "value_to", "unit")},
                              coords)["direction"]
    if levels.size == 2:
        out = out.isel(value_from=0, value_to=1)
    out.name = "direction"
    out.attrs = result_attrs("class_mean_direction", feature=name, split=split,
                             values=levels.tolist())
    return out


def _whitened_pcs(fit: np.ndarray, ev: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Top-``k`` PC scores of both splits, scaled to unit variance (ddof 1) on ``fit``, as
    ``sklearn.decomposition.PCA(whiten=True)``; the numerical rank; the cumulative variance
    fractions of the top ``k`` PCs (NaN beyond the rank)."""
    mu = fit.mean(axis=0)
    _, s, vt = np.linalg.svd(fit - mu, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(fit.shape) * np.finfo(float).eps)) if s[0] > 0 else 0
    r = min(rank, k)
    scale = s[:r] / np.sqrt(len(fit) - 1)
    frac = np.full(k, np.nan)
    if r:
        frac[:r] = np.cumsum(s[:r] ** 2) / np.sum(s**2)
    return (fit - mu) @ vt[:r].T / scale, (ev - mu) @ vt[:r].T / scale, r, frac


def pcs_needed(x: xr.DataArray, *, stimuli: xr.Dataset | None = None,
               features: Sequence[str] | None = None, max_pcs: int | None = None,
               fit_split: str = "val", eval_split: str = "test", target: float = 0.99,
               estimator=None) -> xr.Dataset:
    """How many top principal components a linear read-out needs to decode each feature.

    PCA is fitted on the ``fit_split`` stimuli (centred there). For ``k = 1 .. max_pcs``
    the scores of the top ``k`` PCs, each scaled to unit variance on the fit split (as
    ``sklearn.decomposition.PCA(whiten=True)``, so that the read-out's regularisation does
    not favour high-variance PCs), are read out linearly: the classifier is fitted on the
    fit split and its accuracy measured on the ``eval_split``. ``pcs_needed`` is the smallest
    ``k`` reaching ``target``. A feature with little variance but a clean code is decodable
    only once the PCs above it are included: it needs many PCs yet reaches full accuracy.

    Parameters
    ----------
    x, stimuli, features
        As in :func:`~rsa_bias.analysis.features.feature_variance_explained`. Features may be
        binary or take more values (read out as classes).
    max_pcs : int, optional
        Largest number of PCs tried; default (and at most) ``min(n_fit - 1, n_units)``, the
        largest rank the centred fit split can have.
    fit_split : str, default "val"
        Split where the PCA and the read-outs are fitted.
    eval_split : str, default "test"
        Split where the accuracy is measured.
    target : float, default 0.99
        Accuracy a read-out must reach, in (0, 1].
    estimator : scikit-learn classifier, optional
        The read-out, cloned for each fit; default
        ``LogisticRegression(C=1.0, max_iter=1000)`` (L2, lbfgs: deterministic).

    Returns
    -------
    xarray.Dataset
        ``accuracy(feature, n_pcs, ...)`` (eval-split accuracy of the read-out from the top
        ``n_pcs`` PCs; NaN beyond the numerical rank of the fit split),
        ``pcs_needed(feature, ...)`` (the smallest ``n_pcs`` with ``accuracy >= target``, a
        float: NaN when no ``n_pcs`` up to ``max_pcs`` reaches it) and
        ``variance_fraction(n_pcs, ...)`` (share of the fit split's variance in the top
        ``n_pcs`` PCs). The ``n_pcs`` coord counts from 1.

    Raises
    ------
    ValueError
        A feature constant on the fit split, ``target`` outside (0, 1], a ``max_pcs`` that is
        not a positive integer, an estimator without ``fit``/``predict``, or as
        :func:`class_mean_direction`.
    """
    target = check_number(target, "target", low=0, high=1, low_open=True)
    activation, names = _prepared(x, stimuli, features)
    fit, ev = split_mask(activation, fit_split), split_mask(activation, eval_split)
    k = min(int(fit.sum()) - 1, activation.sizes["unit"])
    if max_pcs is not None:
        k = min(check_count(max_pcs, "max_pcs"), k)
    labels = [_values(activation, n) for n in names]
    for n, v in zip(names, labels, strict=True):
        if np.unique(v[fit]).size < 2:
            raise ValueError(f"feature {n!r} is constant on the fit split {fit_split!r}; "
                             "there is nothing to read out")
    estimator = _classifier(estimator)

    def one(phi: np.ndarray) -> dict[str, np.ndarray]:
        s_fit, s_ev, r, frac = _whitened_pcs(phi[fit], phi[ev], k)
        acc = np.full((len(names), k), np.nan)
        for j, v in enumerate(labels):
            for m in range(1, r + 1):
                pred = _fit_predict(estimator, s_fit[:, :m], v[fit], s_ev[:, :m])
                acc[j, m - 1] = np.mean(pred == v[ev])
        reached = acc >= target
        needed = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1.0, np.nan)
        return {"accuracy": acc, "pcs_needed": needed, "variance_fraction": frac}

    ds = map_over_extra_dims(activation, one,
                             {"accuracy": ("feature", "n_pcs"), "pcs_needed": ("feature",),
                              "variance_fraction": ("n_pcs",)},
                             {"feature": names, "n_pcs": np.arange(1, k + 1)})
    ds.attrs.update(result_attrs("pcs_needed", features=names, max_pcs=max_pcs,
                                 fit_split=fit_split, eval_split=eval_split, target=target,
                                 estimator=type(estimator).__name__))
    return ds


def _binary_codes(activation: xr.DataArray, name: str) -> np.ndarray:
    """0/1 codes of a binary feature: its lower value is 0, its higher value 1."""
    v = _values(activation, name)
    levels = np.unique(v)
    if levels.size != 2:
        raise ValueError(f"readout_reliance needs binary features; {name!r} takes "
                         f"{levels.size} values ({levels[:5].tolist()})")
    return (v == levels[1]).astype(np.int64)


def readout_reliance(x: xr.DataArray, *, a: str, b: str, stimuli: xr.Dataset | None = None,
                     fit_split: str = "val", eval_split: str = "test",
                     estimator=None) -> xr.Dataset:
    """Which of two features a linear read-out follows when both predict its target.

    Each binary feature is coded 0 (its lower value) and 1 (its higher one). A read-out of
    the layer (all units, as they are: the geometry is the layer's own) is trained on the
    ``fit_split`` stimuli where ``a`` and ``b`` agree, with their shared value as the target;
    either feature alone predicts it perfectly there. It then classifies the ``eval_split``
    stimuli where they conflict: ``reliance_a`` is the share classified as their ``a`` value.
    A read-out trained on the agreeing stimuli follows the feature encoded with the larger
    margin, which need not be the one with more variance.

    Parameters
    ----------
    x, stimuli
        As in :func:`class_mean_direction`.
    a, b : str
        Names of the two binary features.
    fit_split : str, default "val"
        Split whose agreeing stimuli train the read-out.
    eval_split : str, default "test"
        Split whose conflict stimuli (and agreeing ones, for ``agree_accuracy``) test it.
    estimator : scikit-learn classifier, optional
        The read-out; default ``LogisticRegression(C=1.0, max_iter=1000)``, as in
        :func:`pcs_needed`.

    Returns
    -------
    xarray.Dataset
        ``reliance_a(...)``: share of conflict stimuli classified as their ``a`` value;
        ``reliance_b(...)`` (``1 - reliance_a``); ``agree_accuracy(...)``: accuracy on the
        agreeing eval stimuli (NaN when there are none); ``n_fit``, ``n_conflict`` and
        ``n_agree``: the numbers of training, conflict and agreeing eval stimuli.

    Raises
    ------
    ValueError
        ``a`` equal to ``b``, a feature that is not binary, no conflict stimuli in the eval
        split, agreeing fit stimuli of only one value (or none), or as
        :func:`class_mean_direction`.
    """
    a, b = _one_name(a, "a"), _one_name(b, "b")
    if a == b:
        raise ValueError(f"a and b are both {a!r}; pass two different features")
    activation, _ = _prepared(x, stimuli, [a, b])
    fit, ev = split_mask(activation, fit_split), split_mask(activation, eval_split)
    code_a, code_b = _binary_codes(activation, a), _binary_codes(activation, b)
    agree = code_a == code_b
    train, conflict, agree_ev = fit & agree, ev & ~agree, ev & agree
    if not conflict.any():
        raise ValueError(f"no conflict stimuli ({a} != {b}) in the eval split "
                         f"{eval_split!r}; the read-out's reliance cannot be measured")
    if np.unique(code_a[train]).size < 2:
        raise ValueError(f"the fit split {fit_split!r} has {int(train.sum())} stimuli where "
                         f"{a} == {b}, of {np.unique(code_a[train]).size} value(s); the "
                         "read-out needs agreeing stimuli of both values")
    estimator = _classifier(estimator)

    def one(phi: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.flatnonzero(conflict | agree_ev)
        pred = _fit_predict(estimator, phi[train], code_a[train], phi[rows])
        hit = pred == code_a[rows]
        on_conflict = conflict[rows]
        rel = float(np.mean(hit[on_conflict]))
        agree_acc = float(np.mean(hit[~on_conflict])) if agree_ev.any() else np.nan
        return {"reliance_a": rel, "reliance_b": 1.0 - rel, "agree_accuracy": agree_acc}

    ds = map_over_extra_dims(activation, one, {"reliance_a": (), "reliance_b": (),
                                               "agree_accuracy": ()}, {})
    for key, mask in (("n_fit", train), ("n_conflict", conflict), ("n_agree", agree_ev)):
        ds[key] = int(mask.sum())
    ds.attrs.update(result_attrs("readout_reliance", a=a, b=b, fit_split=fit_split,
                                 eval_split=eval_split, estimator=type(estimator).__name__))
    return ds
