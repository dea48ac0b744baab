"""Seaborn/matplotlib figures. Each function returns the matplotlib Figure.

* :mod:`~rsa_bias.plotting.training` — figures of a complexity-bias run (R² by layer,
  learning curves, PCA).
"""

from __future__ import annotations

from rsa_bias.plotting.training import (
    plot_pca,
    plot_r2_by_layer,
    plot_training_curves,
    save_figures,
)

__all__ = ["plot_pca", "plot_r2_by_layer", "plot_training_curves", "save_figures"]
