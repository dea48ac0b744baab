"""RSA: RDMs (with crossnobis and noise precision), their comparison, noise ceilings,
bootstrap and permutation inference, tests between models, and searchlights over a mask."""

from __future__ import annotations

from rsa_bias.analysis.rsa.blocked import blocked_rdm_comparison
from rsa_bias.analysis.rsa.ceilings import rdm_noise_ceiling
from rsa_bias.analysis.rsa.compare import compare_rdms
from rsa_bias.analysis.rsa.crossnobis import noise_precision, stack_runs
from rsa_bias.analysis.rsa.forms import condensed, squareform
from rsa_bias.analysis.rsa.inference import evaluate_models, permutation_test
from rsa_bias.analysis.rsa.model_tests import correct_pvalues, pairwise_model_tests
from rsa_bias.analysis.rsa.rdms import rdm
from rsa_bias.analysis.rsa.searchlight import (
    searchlight_rdms,
    searchlight_rsa,
    searchlight_spheres,
    searchlight_to_nifti,
)

__all__ = ["rdm", "condensed", "squareform", "noise_precision", "stack_runs", "compare_rdms",
           "rdm_noise_ceiling", "evaluate_models", "permutation_test", "pairwise_model_tests",
           "correct_pvalues", "blocked_rdm_comparison", "searchlight_spheres", "searchlight_rdms",
           "searchlight_rsa", "searchlight_to_nifti"]
