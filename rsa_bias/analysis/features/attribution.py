"""Which feature carries a similarity score, and comparisons with the loudness taken out.

Decomposition. Over ``n`` labelled stimuli the subspace of a feature is spanned by its centred
one-hot indicators; a conjunction ``"a:b"`` by the centred indicators of the joint cells with
the main effects of ``a`` and ``b`` projected out. A representation ``X`` (stimulus × unit,
centred) splits into orthogonal parts ``X = Σ_f P_f X + R``: ``P_f X`` is ``X`` with every
stimulus replaced by its feature-``f`` class mean (for one feature) and ``R`` is what no
feature describes. For balanced, independent features (full factorials, the splits of
:func:`rsa_bias.tasks.make_binary_task`) the ``P_f`` are mutually orthogonal. Otherwise
``orthogonalise="sequential"`` (default) orthogonalises each subspace against the ones before
it (Gram–Schmidt in the order given, with a warning), so earlier features take the variance
they share with later ones; ``"strict"`` refuses.

Attribution. For a score ``s(X, Y)`` and a subset ``S`` of features, ``v(S)`` is the score of
the representations restricted to ``S`` (``X_S = Σ_{f∈S} P_f X``, likewise ``Y_S``) **with the
normalisation of the full score kept**, so that a loud feature counts as loud:

* CKA: ``v(S) = HSIC(X_S, Y_S) / sqrt(HSIC(X, X) HSIC(Y, Y))`` (``hsic`` as in
  :func:`~rsa_bias.analysis.similarity.cka`);
* RSA: ``v(S) = <d(X_S), d(Y_S)> / (||d(X)|| ||d(Y)||)`` for the RDM vectors ``d``
  (centred for ``compare_method="pearson"``); correlation/cosine RDMs are squared Euclidean
  RDMs of the row-normalised patterns, which are decomposed instead.

``v(all features ∪ R)`` is the full score. Each feature gets its exact Shapley value over the
``2^k`` subsets (``k <= MAX_EXACT_FEATURES``); the shares add up to ``v(all features)``
(efficiency), equal roles get equal shares (symmetry), a feature absent from either
representation gets 0 when the features are balanced (with unbalanced ones, sequential
orthogonalisation hands a feature listed earlier the variance it shares with later ones, so an
uncoded feature can get a share), and ``residual = full score − v(all features)``. Both HSIC
and RDM correlations are quadratic in the variance, so a feature holding a share ``s`` of both
representations carries about ``s² / Σ s²`` of their similarity — louder than its variance.

Encoding (``x`` predicts ``y`` by cross-validated ridge regression, folds drawn over the
stimuli sorted by id; mean R² over targets): ``method="target"`` splits the explained variance
of each target exactly by where it lies, ``(||P_f y||² − ||P_f (y − ŷ)||²) / ||y_c||²`` (no
Shapley needed, one fit); ``method="predictor"`` gives Shapley values of
``v(S) = R²(X_S → y)``.

Bias control: :func:`equalise_feature_variance` gives every coded feature (variance per dimension
well above the residual's, an F-like ratio) the same share of the variance (what is computed,
not how loudly); :func:`compare_controlled` reports raw and equalised
scores side by side. The RDM-level view (feature-model RDMs, variance partitioning, residualised
RDMs) is in :mod:`rsa_bias.analysis.features.rdm_partition`; raw vs equalised scores in
:mod:`rsa_bias.analysis.features.controlled`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._linalg import squared_distances, unit_rows
from rsa_bias._values import check_seed
from rsa_bias.analysis import similarity
from rsa_bias.analysis._inputs import ArrayLike, align_to, canonical_order, choose, stimulus_matrix
from rsa_bias.analysis._rdm_vectors import triu_vectors
from rsa_bias.analysis.encoding import out_of_fold_predictions, ridge_from_options
from rsa_bias.analysis.features._shapley import _result, _shapley
from rsa_bias.analysis.features.subspaces import _bases, _labelled, _names, _parts

SUMMARIES = ("mean", "median")


def _labelled_xy(x: ArrayLike, y: ArrayLike, stimuli: xr.Dataset | None,
                 ) -> tuple[xr.DataArray, xr.DataArray]:
    """x labelled (stimulus coords from ``stimuli`` attached) and y labelled, aligned to x."""
    xl = _labelled(x, stimuli, "x")
    return xl, align_to(xl, _labelled(y, None, "y"), ("x", "y"))


def _pair(x: ArrayLike, y: ArrayLike, stimuli: xr.Dataset | None,
          features: Sequence[str] | None, orthogonalise: str):
    """Names, bases, feature parts of x and of y (aligned to x by id), and y labelled."""
    xl, yl = _labelled_xy(x, y, stimuli)
    names = _names(xl, features)
    bases = _bases(xl, names, orthogonalise)
    return names, bases, _parts(stimulus_matrix(xl, "x"), bases), \
        _parts(stimulus_matrix(yl, "y"), bases), yl


@legacy_call(positional=("stimuli",))
def attribute_cka(x: ArrayLike, y: ArrayLike, *, stimuli: xr.Dataset | None = None,
                  features: Sequence[str] | None = None, hsic: str = "biased",
                  orthogonalise: str = "sequential") -> xr.Dataset:
    """Shapley attribution of linear CKA(x, y) to features.

    ``v(S) = HSIC(X_S, Y_S) / sqrt(HSIC(X, X) HSIC(Y, Y))``: the HSIC of the representations
    restricted to the features in ``S``, with the normalisation of the full score kept, so
    that a loud feature counts as loud. Each feature's share is its exact Shapley value over
    the ``2^k`` subsets; the shares add up to ``v(all features)`` (see the module docstring
    for the properties).

    Parameters
    ----------
    x, y : xarray.DataArray ("stimulus", unit dim[, "repeat"]) or array
        The two representations (repeats averaged); ``y`` is aligned to ``x`` by stimulus id.
        ``x`` carries the ``feature_<name>`` coords (or pass ``stimuli``). A numpy array is
        read as (stimulus, unit[, repeat]) with stimulus ids ``0..n-1``.
    stimuli, orthogonalise
        As in :func:`~rsa_bias.analysis.features.feature_decomposition`.
    features : sequence of str, optional
        Features and conjunctions (``"a:b"``) to attribute to; default all listed features
        (``attrs["feature_names"]``, else every ``feature_<name>`` coord). At most 10
        (exact Shapley values over all subsets).
    hsic : {"biased", "unbiased"}, default "biased"
        HSIC estimator, as in :func:`~rsa_bias.analysis.similarity.cka`.

    Returns
    -------
    xarray.Dataset
        ``share(feature)``, ``residual``, ``total`` (= :func:`~rsa_bias.analysis.similarity.cka`
        of x and y), ``features_score`` (= Σ share) and ``subset_score(subset)`` (``v`` of every
        subset, labelled ``"a+b"``, ``"none"`` for the empty one).

    Raises
    ------
    ValueError
        A self-HSIC is not positive (constant input), more than 10 features, or as
        :func:`~rsa_bias.analysis.features.feature_decomposition`.

    Examples
    --------
    >>> from rsa_bias.brain import factorial_stimuli, simulate_population
    >>> stimuli = factorial_stimuli({"a": 2, "b": 2}, repeats=8)
    >>> x = simulate_population(stimuli, {"a": 0.6, "b": 0.1}, n_neurons=20, seed=0).signal
    >>> y = simulate_population(stimuli, {"a": 0.3, "b": 0.3}, n_neurons=20, seed=1).signal
    >>> att = attribute_cka(x, y)
    >>> [round(float(s), 2) for s in att.share], round(float(att.total), 2)
    ([0.59, 0.1], 0.7)
    >>> abs(float(att.share.sum() + att.residual - att.total)) < 1e-9
    True
    """
    names, _, (px, rx), (py, ry), _ = _pair(x, y, stimuli, features, orthogonalise)
    xc, yc = sum(px) + rx, sum(py) + ry
    norm = np.sqrt(similarity.hsic(xc, xc, hsic=hsic) * similarity.hsic(yc, yc, hsic=hsic))
    if not norm > 0:
        raise ValueError("CKA is undefined: a self-HSIC is not positive (constant input)")

    def value(subset: tuple[int, ...]) -> float:
        return similarity.hsic(sum(px[i] for i in subset), sum(py[i] for i in subset),
                               hsic=hsic) / norm

    phi, v = _shapley(value, len(names))
    total = similarity.cka(xc, yc, hsic=hsic)
    return _result(names, phi, v, total, "cka", function="attribute_cka",
                   config={"hsic": hsic, "kernel": "linear", "orthogonalise": orthogonalise})


def _row_unit(x: np.ndarray, centre: bool) -> np.ndarray:
    """Unit rows; a constant (correlation) or zero (cosine) row raises :func:`rdm`'s error."""
    x = x - x.mean(axis=1, keepdims=True) if centre else x
    return unit_rows(x, "correlation" if centre else "cosine", in_place=False)


_RDM_PREP: dict[str, tuple[Callable[[np.ndarray], np.ndarray], bool]] = {
    "sqeuclidean": (lambda x: x / np.sqrt(x.shape[1]), False),
    "euclidean": (lambda x: x / np.sqrt(x.shape[1]), True),
    "correlation": (lambda x: _row_unit(x, True) / np.sqrt(2.0), False),
    "cosine": (lambda x: _row_unit(x, False) / np.sqrt(2.0), False),
}
_CENTRE_RDM = {"pearson": True, "cosine": False}


@legacy_call(positional=("stimuli",), renamed={"compare": "compare_method"})
def attribute_rsa(x: ArrayLike, y: ArrayLike, *, stimuli: xr.Dataset | None = None,
                  features: Sequence[str] | None = None, rdm_method: str = "sqeuclidean",
                  compare_method: str = "pearson",
                  orthogonalise: str = "sequential") -> xr.Dataset:
    """Shapley attribution of an RSA score ``compare_rdms(rdm(x), rdm(y))`` to features.

    ``v(S) = <d(X_S), d(Y_S)> / (||d(X)|| ||d(Y)||)`` for the RDM vectors ``d`` (centred for
    ``compare_method="pearson"``), with the normalisation of the full score kept; correlation
    and cosine RDMs are squared Euclidean RDMs of the row-normalised patterns, which are
    decomposed instead. Each feature's share is its exact Shapley value over the ``2^k``
    subsets (see the module docstring).

    Parameters
    ----------
    x, y, stimuli, features, orthogonalise
        As in :func:`attribute_cka`.
    rdm_method : {"sqeuclidean", "euclidean", "correlation", "cosine"}, default "sqeuclidean"
        The RDM of each representation. The default differs from
        :func:`~rsa_bias.analysis.rsa.rdm`'s ``"correlation"`` because the squared Euclidean
        RDM is the one that is exactly additive over feature subspaces.
    compare_method : {"pearson", "cosine"}, default "pearson"
        The RDM comparison. The default differs from
        :func:`~rsa_bias.analysis.rsa.compare_rdms`'s ``"spearman"`` because a rank-based
        comparison has no additive decomposition (use
        :func:`~rsa_bias.analysis.features.rdm_variance_partition` for an RDM-level view of
        any RDM).

    Returns
    -------
    xarray.Dataset
        The same variables as :func:`attribute_cka`: ``share(feature)``, ``residual``,
        ``total`` (the RSA score), ``features_score`` and ``subset_score(subset)``.

    Raises
    ------
    ValueError
        An unknown or non-additive method, constant (correlation) or all-zero (cosine)
        patterns, a constant RDM, more than 10 features, or as
        :func:`~rsa_bias.analysis.features.feature_decomposition`.
    """
    prep, take_sqrt = choose(_RDM_PREP, rdm_method, "rdm_method for attribution")
    centre = choose(_CENTRE_RDM, compare_method,
                    "comparison method for attribution (additive ones only)")
    xl, yl = _labelled_xy(x, y, stimuli)
    prepped = []
    for name, a in (("x", xl), ("y", yl)):
        try:
            prepped.append(a.copy(data=prep(stimulus_matrix(a, name))))
        except ValueError as err:  # rdm()'s message: constant / all-zero patterns
            msg = str(err).replace("method='", "rdm_method='")
            raise ValueError(f"{name} (positions in x's stimulus order): {msg}") from None
    names, _, (px, rx), (py, ry), _ = _pair(*prepped, None, features, orthogonalise)

    def vector(parts: list[np.ndarray]) -> np.ndarray:
        d = triu_vectors(squared_distances(sum(parts)))
        d = np.sqrt(d) if take_sqrt else d
        return d - d.mean() if centre else d

    full_x, full_y = vector([*px, rx]), vector([*py, ry])
    norm = np.linalg.norm(full_x) * np.linalg.norm(full_y)
    if not norm > 0:
        raise ValueError("an RDM is constant; RSA is undefined")

    def value(subset: tuple[int, ...]) -> float:
        return float(vector([px[i] for i in subset]) @ vector([py[i] for i in subset]) / norm)

    phi, v = _shapley(value, len(names))
    total = float(full_x @ full_y / norm)
    return _result(names, phi, v, total, "rsa", function="attribute_rsa",
                   config={"rdm_method": rdm_method, "compare_method": compare_method,
                           "orthogonalise": orthogonalise})


def _r2(yv: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Out-of-fold R² of each target (column)."""
    return 1.0 - np.sum((yv - pred) ** 2, axis=0) / np.sum((yv - yv.mean(0)) ** 2, axis=0)


def _mean_r2(yv: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(_r2(yv, pred)))


def _middle(values: np.ndarray) -> np.ndarray:
    """Indices of the middle element(s) of ``values``: their mean is the median."""
    order = np.argsort(values, kind="stable")
    n = len(order)
    return order[(n - 1) // 2: n // 2 + 1]


@legacy_call(positional=("stimuli",), folded={"estimator": (("alphas",), ridge_from_options)})
def attribute_encoding(x: ArrayLike, y: ArrayLike, *, stimuli: xr.Dataset | None = None,
                       features: Sequence[str] | None = None, method: str = "target",
                       estimator=None, cv=5, seed: int = 0, orthogonalise: str = "sequential",
                       summary: str = "mean") -> xr.Dataset:
    """Attribution of an encoding score: ``x`` predicts ``y``, cross-validated R² over targets.

    Predictions are the pooled out-of-fold predictions of ``estimator`` over the outer split
    ``cv`` of the stimuli sorted by id, so the result does not depend on the row order; as in
    :func:`~rsa_bias.analysis.encoding.cross_validated_scores`. ``method="target"`` splits
    the explained variance of each target exactly by where it lies,
    ``(||P_f y||² − ||P_f (y − ŷ)||²) / ||y_c||²`` (no Shapley needed, one fit);
    ``method="predictor"`` gives Shapley values of ``v(S) = R²(X_S → y)``.

    Parameters
    ----------
    x : xarray.DataArray ("stimulus", unit dim) or array
        The model representation (predictors), with ``feature_<name>`` coords (or pass
        ``stimuli``).
    y : xarray.DataArray ("stimulus", target dim[, "repeat"]) or array
        The responses, aligned to ``x`` by stimulus id; repeats are averaged (a numpy ``y``
        is read as (stimulus, unit[, repeat])).
    stimuli, features
        As in :func:`attribute_cka`.
    method : {"target", "predictor"}, default "target"
        ``"target"``: exact split of each target's explained variance by the subspace it
        lies in (adds ``share_per_target(feature, <target dim>)``); ``"predictor"``: Shapley
        values over encoders fitted on the feature-restricted ``x`` (2^k fits).
    estimator : scikit-learn regressor, optional
        The encoding model; ``None`` (default) uses
        :class:`~rsa_bias.analysis.encoding.RidgeEncoder`, alphas by leave-one-out within
        each training part.
    cv : int or scikit-learn splitter, default 5
        The outer split: a number of shuffled folds seeded by ``seed`` (``KFold``), or a
        splitter whose test folds cover every stimulus; over the stimuli sorted by id.
    seed : int, default 0
        Seeds an int ``cv``'s shuffle; an integer in [0, 2**32).
    orthogonalise
        As in :func:`~rsa_bias.analysis.features.feature_decomposition`.
    summary : {"mean", "median"}, default "mean"
        R² over targets (``"median"`` with ``method="target"`` only). The median is robust
        to a few targets with a very negative out-of-fold R²; its shares are the split of the
        median target's R² (the mean over the two middle targets for an even count), so they
        still add up to the score.

    Returns
    -------
    xarray.Dataset
        ``share(feature)``, ``residual``, ``total`` (mean or median R² over targets) and
        ``features_score``; ``subset_score(subset)`` for ``"predictor"``,
        ``share_per_target(feature, <target dim>)`` for ``"target"``.

    Raises
    ------
    ValueError
        An unknown ``method`` or ``summary``, a bad ``seed``, ``summary="median"`` with
        ``method="predictor"``, more than 10 features with ``"predictor"``, or as
        :func:`~rsa_bias.analysis.features.feature_decomposition`.
    """
    seed = check_seed(seed)
    choose(dict.fromkeys(("target", "predictor")), method, "encoding attribution method")
    choose(dict.fromkeys(SUMMARIES), summary, "summary over targets")
    if summary != "mean" and method == "predictor":
        raise ValueError("summary='median' needs method='target' (a median has no Shapley "
                         "game over predictors); use summary='mean' with method='predictor'")
    names, bases, (px, rx), (py, ry), yl = _pair(canonical_order(_labelled(x, stimuli, "x")), y,
                                                 None, features, orthogonalise)
    xv, yv = sum(px) + rx, sum(py) + ry
    config = {"method": method, "cv": cv, "seed": seed,
              "orthogonalise": orthogonalise, "summary": summary,
              "estimator": repr(estimator) if estimator is not None else "RidgeEncoder()"}

    def predict(features_x: np.ndarray) -> np.ndarray:
        return out_of_fold_predictions(features_x, yv, estimator=estimator, cv=cv, seed=seed,
                                       what="encoding attribution")[0]

    pred = predict(xv)
    if method == "predictor":
        phi, v = _shapley(lambda s: _mean_r2(yv, predict(sum(px[i] for i in s))), len(names))
        return _result(names, phi, v, _mean_r2(yv, pred), "encoding", config,
                       function="attribute_encoding")
    r2 = _r2(yv, pred)
    err = yv - pred
    per_target = np.stack([np.sum(p**2, 0) - np.sum((q @ (q.T @ err)) ** 2, 0)
                           for p, q in zip(py, bases, strict=True)]) / np.sum(yv**2, 0)
    keep = _middle(r2) if summary == "median" else np.arange(len(r2))
    phi = per_target[:, keep].mean(axis=1)
    ds = _result(names, phi, np.array([0.0, phi.sum()]), float(r2[keep].mean()), "encoding",
                 config, function="attribute_encoding")
    target_dim = str(yl.dims[1])
    return ds.drop_vars(["subset_score", "subset"]).assign(
        share_per_target=(("feature", target_dim), per_target)).assign_coords(
        {target_dim: yl[target_dim].values if target_dim in yl.coords else
         np.arange(yl.sizes[target_dim])})
