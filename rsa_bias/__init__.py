"""rsa_bias: see how representation biases distort RSA, CKA and encoding comparisons.

The package follows one data flow (``docs/architecture.md``):
``tasks -> networks -> training -> store -> analysis -> plotting -> experiments / cli``,
with ``brain`` (recorded and simulated data) feeding the analysis. Every public analysis
function is importable from here (``from rsa_bias import rdm, cka, RidgeEncoder``); they are
loaded on first use, so ``import rsa_bias`` stays light (no torch, scikit-learn, nilearn or
matplotlib until a measure or a figure needs it).
"""

from __future__ import annotations

import importlib

from rsa_bias._version import __version__ as __version__


def _analysis():
    return importlib.import_module("rsa_bias.analysis")


def __getattr__(name: str):
    if name == "__all__":
        return ["__version__", *_analysis().public_names()]
    if not name.startswith("_"):
        try:
            value = getattr(_analysis(), name)
        except AttributeError:
            pass
        else:
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_analysis().public_names()})
