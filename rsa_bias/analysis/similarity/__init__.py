"""Representational similarity beyond RDMs: CKA in all its forms (biased and unbiased HSIC,
linear and RBF, minibatch, layer x layer) with bootstrap and permutation inference, and the
shape metrics Procrustes, CCA and SVCCA, and the unit-neuron alignment score."""

from __future__ import annotations

from rsa_bias.analysis.similarity.alignment import alignment_score
from rsa_bias.analysis.similarity.cka import cka, hsic
from rsa_bias.analysis.similarity.cka_batches import cka_matrix, minibatch_cka
from rsa_bias.analysis.similarity.cka_inference import cka_bootstrap, cka_permutation
from rsa_bias.analysis.similarity.shape_metrics import (
    canonical_correlations,
    cca_similarity,
    procrustes_distance,
    svcca,
)

__all__ = ["cka", "hsic", "minibatch_cka", "cka_matrix", "cka_bootstrap", "cka_permutation",
           "procrustes_distance", "canonical_correlations", "cca_similarity", "svcca",
           "alignment_score"]
