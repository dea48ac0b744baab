"""rsa_bias: see how representation biases distort RSA, CKA and encoding comparisons.

The package follows one data flow (see DESIGN.md):
``tasks -> networks -> training -> activations -> store -> analysis -> plotting -> cli``.
torch is imported only by the modules that run networks, so ``rsa_bias.analysis``
works without it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
