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

from rsa_bias.analysis import similarity
from rsa_bias.analysis._inputs import ArrayLike, align_to, choose, stimulus_matrix
from rsa_bias.analysis.encoding import DEFAULT_ALPHAS
from rsa_bias.analysis.features.attribution import (
    _labelled_xy,
    _mean_r2,
    _out_of_fold,
    _sorted_by_id,
)
from rsa_bias.analysis.features.subspaces import equalise_feature_variance
from rsa_bias.analysis.rsa import compare_rdms, rdm


def _score_rsa(x, y, opts) -> float:
    return float(compare_rdms(rdm(x, method=opts["rdm_method"]),
                              rdm(y, method=opts["rdm_method"]), method=opts["compare"]))


def _score_cka(x, y, opts) -> float:
    return similarity.cka(x, y, hsic=opts["hsic"])


def _score_encoding(x, y, opts) -> float:
    x = _sorted_by_id(x)  # folds independent of the row order
    xv, yv = stimulus_matrix(x, "x"), stimulus_matrix(align_to(x, y, ("x", "y")), "y")
    return _mean_r2(yv, _out_of_fold(xv, yv, opts["cv"], opts["alphas"], opts["seed"]))


MEASURES: dict[str, Callable[[xr.DataArray, xr.DataArray, dict], float]] = {
    "rsa": _score_rsa, "cka": _score_cka, "encoding": _score_encoding}


def compare_controlled(x: ArrayLike, y: ArrayLike, stimuli: xr.Dataset | None = None, *,
                       features: Sequence[str] | None = None,
                       measures: Sequence[str] = ("rsa", "cka", "encoding"),
                       rdm_method: str = "sqeuclidean", compare: str = "pearson",
                       hsic: str = "biased", cv: int = 5, alphas=DEFAULT_ALPHAS,
                       seed: int = 0) -> xr.Dataset:
    """Raw scores next to scores with every feature equally loud in both representations.

    ``"equalised"`` recomputes each measure on :func:`equalise_feature_variance` of ``x`` and
    of ``y`` (RSA: ``compare_rdms(rdm(x, method=rdm_method), ..., method=compare)``, any
    methods; CKA with ``hsic``; encoding: mean cross-validated R² of ``x`` predicting ``y``,
    folds over the stimuli sorted by id). Each representation is equalised on its own: a
    feature it does not code (variance per dimension at the residual's chance level) is left
    alone in it, not amplified.

    Returns
    -------
    xarray.Dataset: ``score(measure, condition)`` with condition ``["raw", "equalised"]``.
    """
    for m in measures:
        choose(MEASURES, m, "measure")
    xl, yl = _labelled_xy(x, y, stimuli)
    yl = yl.assign_coords({k: c for k, c in xl.coords.items() if str(k).startswith("feature_")})
    yl.attrs["feature_names"] = xl.attrs.get("feature_names", [])
    pairs = {"raw": (xl, yl), "equalised": (equalise_feature_variance(xl, features=features),
                                            equalise_feature_variance(yl, features=features))}
    opts = {"rdm_method": rdm_method, "compare": compare, "hsic": hsic, "cv": cv,
            "alphas": alphas, "seed": seed}
    score = [[MEASURES[m](a, b, opts) for a, b in pairs.values()] for m in measures]
    return xr.Dataset({"score": (("measure", "condition"), np.array(score))},
                      coords={"measure": list(measures), "condition": list(pairs)},
                      attrs={"method": "compare_controlled", "rdm_method": rdm_method,
                             "compare": compare, "hsic": hsic})
