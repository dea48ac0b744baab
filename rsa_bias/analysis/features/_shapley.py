"""Exact Shapley values over subsets of features (or predictor groups), and the labelled result
that :mod:`~rsa_bias.analysis.features.attribution` and
:mod:`~rsa_bias.analysis.features.rdm_partition` return."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import xarray as xr

from rsa_bias.provenance import result_attrs

MAX_EXACT_FEATURES = 10


def _shapley(value: Callable[[tuple[int, ...]], float], k: int, *,
             remedy: str = "pass features=[...] with at most {max} (group or drop some)",
             what: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley values of ``value`` (over index tuples) and ``v`` of every subset mask."""
    if k > MAX_EXACT_FEATURES:
        raise ValueError(f"exact Shapley values over {k} {what} need 2^{k} evaluations; "
                         + remedy.format(max=MAX_EXACT_FEATURES))
    v = np.array([value(tuple(i for i in range(k) if m >> i & 1)) if m else 0.0
                  for m in range(2**k)])
    phi = np.zeros(k)
    for m in range(2**k):
        size = bin(m).count("1")
        for i in (i for i in range(k) if not m >> i & 1):
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            phi[i] += weight * (v[m | 1 << i] - v[m])
    return phi, v


def _result(names: list[str], phi: np.ndarray, v: np.ndarray, total: float, measure: str,
            config: dict, *, function: str) -> xr.Dataset:
    """``share(feature)``, ``residual``, ``total``, ``features_score`` and
    ``subset_score(subset)`` with the attrs of :func:`~rsa_bias.provenance.result_attrs`
    (``function`` the public function; ``method`` the config's, else ``<measure>_shapley``)."""
    labels = ["+".join(n for i, n in enumerate(names) if m >> i & 1) or "none"
              for m in range(len(v))]
    ds = xr.Dataset({"share": ("feature", phi), "residual": total - v[-1], "total": total,
                     "features_score": v[-1], "subset_score": ("subset", v)},
                    coords={"feature": names, "subset": labels})
    config = dict(config)
    method = config.pop("method", f"{measure}_shapley")
    ds.attrs.update(result_attrs(function, method=method, measure=measure, **config))
    return ds
