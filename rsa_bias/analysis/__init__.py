"""Pure analysis functions over xarray / numpy (no torch, no plotting, no file I/O).

Five measure families, each a subpackage whose private kernels stay inside it:

``rsa``          RDMs, crossnobis and noise precision, RDM comparisons, noise ceilings,
                 bootstrap / permutation inference, tests between models
``similarity``   CKA (all estimators, minibatch, layer x layer, inference), Procrustes,
                 CCA, SVCCA
``encoding``     the ridge encoding model, nested cross-validated scores, response ceilings
``features``     feature variance explained, PCA and tuning, feature subspaces,
                 attribution of scores to features, bias-controlled comparisons,
                 feature-model RDMs and RDM variance partitioning
``complexity``   complexity of functions on a grid: Fourier mean frequency, Legendre
                 polynomial order, LZ76 compressibility (Neural Redshift)

The public API is the union of the families' ``__all__`` lists, in that order; each family
is imported on first use (``import rsa_bias`` imports none of them, and neither scikit-learn
nor torch until a measure needs it).
"""

from __future__ import annotations

import importlib
from types import ModuleType

FAMILIES = ("rsa", "similarity", "encoding", "features", "complexity")


def _family(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def public_names() -> list[str]:
    """Every public analysis name, family by family (imports all five families)."""
    return [n for fam in FAMILIES for n in _family(fam).__all__]


def __getattr__(name: str):
    if name == "__all__":
        return public_names()
    if name in FAMILIES:
        return _family(name)
    if not name.startswith("_"):
        for fam in FAMILIES:
            module = _family(fam)
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value  # later look-ups skip __getattr__
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *FAMILIES, *public_names()})
