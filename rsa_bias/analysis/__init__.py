"""Pure analysis functions over xarray / numpy (no torch, no plotting, no file I/O)."""

from __future__ import annotations

from rsa_bias.analysis.cka import cka, cka_matrix, hsic, minibatch_cka
from rsa_bias.analysis.cka_inference import cka_bootstrap, cka_permutation
from rsa_bias.analysis.compare import compare_rdms
from rsa_bias.analysis.rdm import condensed, noise_precision, rdm, squareform, stack_runs
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
]
