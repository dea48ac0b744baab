"""Pure analysis functions over xarray / numpy (no torch, no plotting, no file I/O)."""

from __future__ import annotations

from rsa_bias.analysis.attribution import (
    attribute_cka,
    attribute_encoding,
    attribute_rsa,
    compare_controlled,
)
from rsa_bias.analysis.ceilings import noise_ceiling as rdm_noise_ceiling
from rsa_bias.analysis.cka_batches import cka_matrix, minibatch_cka
from rsa_bias.analysis.cka_inference import cka_bootstrap, cka_permutation
from rsa_bias.analysis.compare import compare_rdms
from rsa_bias.analysis.crossnobis import noise_precision, stack_runs
from rsa_bias.analysis.encoding import RidgeEncoder
from rsa_bias.analysis.encoding_scores import cross_validated_scores, spearman_brown
from rsa_bias.analysis.encoding_scores import noise_ceiling as response_noise_ceiling
from rsa_bias.analysis.feature_subspaces import (
    equalise_feature_variance,
    feature_decomposition,
    remove_features,
    variance_shares,
)
from rsa_bias.analysis.inference import evaluate_models, permutation_test
from rsa_bias.analysis.kernel_alignment import cka, hsic
from rsa_bias.analysis.model_tests import correct_pvalues, pairwise_model_tests
from rsa_bias.analysis.rdm_partition import (
    feature_model_rdms,
    rdm_variance_partition,
    residualise_rdm,
)
from rsa_bias.analysis.rdms import condensed, rdm, squareform
from rsa_bias.analysis.similarity import (
    canonical_correlations,
    cca_similarity,
    procrustes_distance,
    svcca,
)
from rsa_bias.analysis.tuning import pca_summary, unit_tuning
from rsa_bias.analysis.variance import (
    feature_variance_explained,
    normalise_by_final,
    variance_explained_arrays,
)

__all__ = [
    "feature_variance_explained",
    "variance_explained_arrays",
    "normalise_by_final",
    "pca_summary",
    "unit_tuning",
    "rdm",
    "condensed",
    "squareform",
    "noise_precision",
    "stack_runs",
    "compare_rdms",
    "cka",
    "hsic",
    "minibatch_cka",
    "cka_matrix",
    "cka_bootstrap",
    "cka_permutation",
    "procrustes_distance",
    "canonical_correlations",
    "cca_similarity",
    "svcca",
    "RidgeEncoder",
    "cross_validated_scores",
    "response_noise_ceiling",
    "spearman_brown",
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
