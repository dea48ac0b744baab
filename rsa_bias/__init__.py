"""rsa_bias: see how representation biases distort RSA, CKA and encoding comparisons.

The package follows one data flow (see DESIGN.md):
``tasks -> networks -> training -> activations -> store -> analysis -> plotting -> cli``.
torch is imported only by the modules that run networks; the measures exported
here (RDMs, RSA, CKA, encoding models, variance explained) work without it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from rsa_bias.analysis import (  # noqa: E402
    RidgeEncoder,
    attribute_cka,
    attribute_encoding,
    attribute_rsa,
    cca_similarity,
    cka,
    cka_bootstrap,
    cka_matrix,
    cka_permutation,
    compare_controlled,
    compare_rdms,
    correct_pvalues,
    cross_validated_scores,
    equalise_feature_variance,
    evaluate_models,
    feature_decomposition,
    feature_model_rdms,
    feature_variance_explained,
    minibatch_cka,
    pairwise_model_tests,
    permutation_test,
    procrustes_distance,
    rdm,
    rdm_noise_ceiling,
    rdm_variance_partition,
    remove_features,
    residualise_rdm,
    response_noise_ceiling,
    svcca,
    variance_shares,
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
    "RidgeEncoder",
    "cross_validated_scores",
    "response_noise_ceiling",
    "evaluate_models",
    "rdm_noise_ceiling",
    "permutation_test",
    "pairwise_model_tests",
    "correct_pvalues",
    "feature_decomposition",
    "variance_shares",
    "remove_features",
    "equalise_feature_variance",
    "attribute_cka",
    "attribute_rsa",
    "attribute_encoding",
    "compare_controlled",
    "feature_model_rdms",
    "rdm_variance_partition",
    "residualise_rdm",
]
