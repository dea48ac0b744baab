"""Raw scores next to bias-controlled ones: every feature made equally loud first.

:func:`compare_controlled` recomputes RSA, CKA and encoding scores on
:func:`~rsa_bias.analysis.features.subspaces.equalise_feature_variance` of both
representations, so that a score reflects what the representations compute, not how
loudly each computes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from rsa_bias._api import legacy_call
from rsa_bias._values import check_names, check_seed
from rsa_bias.analysis import similarity
from rsa_bias.analysis._inputs import ArrayLike, align_to, canonical_order, choose, stimulus_matrix
from rsa_bias.analysis.encoding import out_of_fold_predictions, ridge_from_options
from rsa_bias.analysis.features.attribution import _labelled_xy, _mean_r2
from rsa_bias.analysis.features.subspaces import equalise_feature_variance
from rsa_bias.analysis.rsa import compare_rdms, rdm
from rsa_bias.provenance import result_attrs


def _score_rsa(x, y, opts) -> float:
    return float(compare_rdms(rdm(x, method=opts["rdm_method"]),
                              rdm(y, method=opts["rdm_method"]),
                              method=opts["compare_method"]))


def _score_cka(x, y, opts) -> float:
    return similarity.cka(x, y, hsic=opts["hsic"])


def _score_encoding(x, y, opts) -> float:
    x = canonical_order(x)  # folds independent of the row order
    xv, yv = stimulus_matrix(x, "x"), stimulus_matrix(align_to(x, y, ("x", "y")), "y")
    pred, _ = out_of_fold_predictions(xv, yv, estimator=opts["estimator"], cv=opts["cv"],
                                      seed=opts["seed"], what="compare_controlled")
    return _mean_r2(yv, pred)


MEASURES: dict[str, Callable[[xr.DataArray, xr.DataArray, dict], float]] = {
    "rsa": _score_rsa, "cka": _score_cka, "encoding": _score_encoding}


@legacy_call(positional=("stimuli",), renamed={"compare": "compare_method"},
             folded={"estimator": (("alphas",), ridge_from_options)})
def compare_controlled(x: ArrayLike, y: ArrayLike, *, stimuli: xr.Dataset | None = None,
                       features: Sequence[str] | None = None,
                       measures: Sequence[str] = ("rsa", "cka", "encoding"),
                       rdm_method: str = "sqeuclidean", compare_method: str = "pearson",
                       hsic: str = "biased", estimator=None, cv=5,
                       seed: int = 0) -> xr.Dataset:
    """Raw scores next to scores with every feature equally loud in both representations.

    ``"equalised"`` recomputes each measure on :func:`equalise_feature_variance` of ``x`` and
    of ``y``. Each representation is equalised on its own: a feature it does not code
    (variance per dimension at the residual's chance level) is left alone in it, not
    amplified.

    Parameters
    ----------
    x : xarray.DataArray ("stimulus", unit dim) or array
        The model representation, with ``feature_<name>`` coords (or pass ``stimuli``).
    y : xarray.DataArray ("stimulus", unit dim[, "repeat"]) or array
        The other representation (a brain's responses; repeats averaged), aligned to ``x``
        by stimulus id; it is equalised over ``x``'s features.
    stimuli, features
        As in :func:`~rsa_bias.analysis.features.feature_decomposition`; the features are the
        ones equalised.
    measures : sequence of str, default ("rsa", "cka", "encoding")
        Any of ``"rsa"`` (``compare_rdms(rdm(x, method=rdm_method), ...,
        method=compare_method)``), ``"cka"`` (linear, with ``hsic``) and ``"encoding"`` (mean
        cross-validated R² of ``x`` predicting ``y``, folds over the stimuli sorted by id).
    rdm_method, compare_method : str, default "sqeuclidean", "pearson"
        The RSA score; any methods of :func:`~rsa_bias.analysis.rsa.rdm` and
        :func:`~rsa_bias.analysis.rsa.compare_rdms`. The defaults differ from those two
        functions' (``"correlation"``, ``"spearman"``) so that the raw RSA score equals the
        ``total`` of :func:`~rsa_bias.analysis.features.attribute_rsa` (which needs an
        additive score).
    hsic : {"biased", "unbiased"}, default "biased"
        HSIC estimator of the CKA score, as in :func:`~rsa_bias.analysis.similarity.cka`.
    estimator : scikit-learn regressor, optional
        The encoding model; ``None`` (default) uses
        :class:`~rsa_bias.analysis.encoding.RidgeEncoder`, alphas by leave-one-out within
        each training part.
    cv : int or scikit-learn splitter, default 5
        The outer split of the encoding score: a number of shuffled folds seeded by
        ``seed`` (``KFold``), or a splitter whose test folds cover every stimulus; over the
        stimuli sorted by id (as in :func:`~rsa_bias.analysis.encoding.cross_validated_scores`).
    seed : int, default 0
        Seeds an int ``cv``'s shuffle; an integer in [0, 2**32).

    Returns
    -------
    xarray.Dataset
        ``score(measure, condition)`` with condition ``["raw", "equalised"]``.

    Raises
    ------
    ValueError
        ``measures`` is empty, a string or names an unknown measure; a bad ``seed``; or as
        :func:`~rsa_bias.analysis.features.equalise_feature_variance`.

    Examples
    --------
    >>> from rsa_bias.brain import factorial_stimuli, simulate_population
    >>> stim = factorial_stimuli({"a": 2, "b": 2}, repeats=8)
    >>> x, y = (simulate_population(stim, gains, n_neurons=20, seed=seed).signal
    ...         for seed, gains in enumerate([{"a": 0.6, "b": 0.1}, {"a": 0.1, "b": 0.6}]))
    >>> out = compare_controlled(x, y, measures=["cka"])
    >>> out.score.sel(measure="cka").round(2).values.tolist()
    [0.31, 0.89]
    """
    measures = check_names(measures, "measures")
    for m in measures:
        choose(MEASURES, m, "measure")
    seed = check_seed(seed)
    xl, yl = _labelled_xy(x, y, stimuli)
    yl = yl.assign_coords({k: c for k, c in xl.coords.items() if str(k).startswith("feature_")})
    yl.attrs["feature_names"] = xl.attrs.get("feature_names", [])
    pairs = {"raw": (xl, yl), "equalised": (equalise_feature_variance(xl, features=features),
                                            equalise_feature_variance(yl, features=features))}
    opts = {"rdm_method": rdm_method, "compare_method": compare_method, "hsic": hsic,
            "estimator": estimator, "cv": cv, "seed": seed}
    score = [[MEASURES[m](a, b, opts) for a, b in pairs.values()] for m in measures]
    return xr.Dataset({"score": (("measure", "condition"), np.array(score))},
                      coords={"measure": list(measures), "condition": list(pairs)},
                      attrs=result_attrs("compare_controlled", measures=list(measures),
                                         features=features, rdm_method=rdm_method,
                                         compare_method=compare_method, hsic=hsic,
                                         estimator=repr(estimator), cv=cv, seed=seed))
