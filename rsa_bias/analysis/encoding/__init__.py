"""Encoding models: a scikit-learn ridge estimator with a cross-validated alpha per target,
nested cross-validated scores, and the split-half noise ceiling of the responses."""

from __future__ import annotations

from rsa_bias.analysis.encoding.alpha_grid import (  # noqa: F401 - one_alpha_warning: helper
    AlphaGridWarning,
    one_alpha_warning,
)
from rsa_bias.analysis.encoding.ceiling import response_noise_ceiling, spearman_brown
from rsa_bias.analysis.encoding.ridge import DEFAULT_ALPHAS, RidgeEncoder  # noqa: F401
from rsa_bias.analysis.encoding.scores import (  # noqa: F401 - helpers for other families
    cross_validated_scores,
    out_of_fold_predictions,
    outer_splitter,
    ridge_from_options,
)
from rsa_bias.analysis.encoding.streamed import streamed_ridge_scores

__all__ = ["RidgeEncoder", "AlphaGridWarning", "cross_validated_scores",
           "response_noise_ceiling", "spearman_brown", "streamed_ridge_scores"]
