"""rsa_bias: see how representation biases distort RSA, CKA and encoding comparisons.

The package follows one data flow (see DESIGN.md):
``tasks -> networks -> training -> activations -> store -> analysis -> plotting -> cli``.
torch is imported only by the modules that run networks; the measures exported
here (RDMs, RSA, CKA, encoding models, variance explained) work without it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from rsa_bias.analysis import (  # noqa: E402
    cca_similarity,
    cka,
    cka_bootstrap,
    cka_matrix,
    cka_permutation,
    compare_rdms,
    feature_variance_explained,
    minibatch_cka,
    procrustes_distance,
    rdm,
    svcca,
)

__all__ = [
    "__version__",
    "rdm",
    "compare_rdms",
    "cka",
    "cka_matrix",
    "minibatch_cka",
    "cka_bootstrap",
    "cka_permutation",
    "procrustes_distance",
    "cca_similarity",
    "svcca",
    "feature_variance_explained",
]
