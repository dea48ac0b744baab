"""Which features a representation holds and which carry a score: feature variance explained
(Lampinen et al.'s metric), PCA and unit tuning, feature subspaces (decomposition, shares,
removal, equalisation), Shapley attribution of RSA / CKA / encoding scores, bias-controlled
comparisons, and feature-model RDMs with RDM variance partitioning."""

from __future__ import annotations

from rsa_bias.analysis.features.attribution import (
    attribute_cka,
    attribute_encoding,
    attribute_rsa,
)
from rsa_bias.analysis.features.causal import (
    class_mean_direction,
    pcs_needed,
    readout_reliance,
)
from rsa_bias.analysis.features.controlled import compare_controlled
from rsa_bias.analysis.features.rdm_partition import (
    feature_model_rdms,
    rdm_variance_partition,
    residualise_rdm,
)
from rsa_bias.analysis.features.subspaces import (
    equalise_feature_variance,
    feature_decomposition,
    remove_features,
    variance_shares,
)
from rsa_bias.analysis.features.tuning import pca_summary, unit_tuning
from rsa_bias.analysis.features.variance import (
    feature_variance_explained,
    normalise_by_final,
    variance_explained_arrays,
)

__all__ = ["feature_variance_explained", "variance_explained_arrays", "normalise_by_final",
           "pca_summary", "unit_tuning",
           "feature_decomposition", "variance_shares", "remove_features",
           "equalise_feature_variance", "attribute_cka", "attribute_rsa", "attribute_encoding",
           "compare_controlled", "feature_model_rdms", "rdm_variance_partition",
           "residualise_rdm", "class_mean_direction", "pcs_needed", "readout_reliance"]
