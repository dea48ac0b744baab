"""Pure analysis functions over xarray / numpy (no torch, no plotting, no file I/O)."""

from __future__ import annotations

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
]
