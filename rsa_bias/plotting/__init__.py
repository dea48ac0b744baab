"""Seaborn/matplotlib figures. Each function returns the matplotlib Figure.

* :mod:`~rsa_bias.plotting.training` — figures of a complexity-bias run (R² by layer,
  learning curves, PCA).
* :mod:`~rsa_bias.plotting.rdms` — RDMs ordered by category, with labels.
* :mod:`~rsa_bias.plotting.scores` — model/layer scores with intervals and the noise ceiling.
* :mod:`~rsa_bias.plotting.sweep` — the R² of a sweep against each swept factor.
* :mod:`~rsa_bias.plotting.causal` — steering curves and read-outs from the top PCs.
* :mod:`~rsa_bias.plotting.suite` — the bias suite: learning curves per condition, R² by
  output position, R² of finished runs side by side (CNN vs ResNet).
* :mod:`~rsa_bias.plotting.cka` — layer x layer CKA heatmaps.
* :mod:`~rsa_bias.plotting.redshift` — random networks' complexity (heatmaps of weight scale x
  depth, sampled functions, random Transformers) and complexity at init vs the R² gap.
* :mod:`~rsa_bias.plotting.spectral` — the spectral-bias heatmap (frequency x step).
* :mod:`~rsa_bias.plotting.attribution` — attribution bars, raw vs controlled scores,
  similarity matrices.
* :mod:`~rsa_bias.plotting.brain_maps` — voxel scores as a nilearn map (nilearn is imported
  only when :func:`plot_voxel_map` runs).
* :mod:`~rsa_bias.plotting.searchlight` — a searchlight score map (:func:`plot_searchlight_map`,
  through :func:`plot_voxel_map`).
"""

from __future__ import annotations

from rsa_bias.plotting._save import save_figure
from rsa_bias.plotting.attribution import (
    attribution_table,
    plot_attribution,
    plot_scores,
    plot_similarity_matrices,
)
from rsa_bias.plotting.brain_maps import plot_voxel_map
from rsa_bias.plotting.causal import plot_causal
from rsa_bias.plotting.cka import plot_cka_heatmap
from rsa_bias.plotting.rdms import category_order, plot_rdm, plot_rdm_row
from rsa_bias.plotting.redshift import (
    plot_complexity_heatmaps,
    plot_gpt_complexity,
    plot_init_gap,
    plot_random_functions,
    save_redshift_figures,
)
from rsa_bias.plotting.scores import plot_scores_with_ceiling
from rsa_bias.plotting.searchlight import plot_searchlight_map
from rsa_bias.plotting.spectral import plot_spectral, save_spectral_figure
from rsa_bias.plotting.suite import (
    condition_labels,
    emission_positions,
    plot_learning_curves,
    plot_position_effect,
    plot_runs,
    position_frame,
    runs_frame,
    save_sweep_figures,
)
from rsa_bias.plotting.sweep import plot_sweep, save_sweep_figure
from rsa_bias.plotting.training import (
    plot_pca,
    plot_r2_by_layer,
    plot_training_curves,
    save_figures,
)

__all__ = ["save_figure", "plot_pca", "plot_r2_by_layer", "plot_training_curves", "save_figures",
           "plot_rdm", "plot_rdm_row", "category_order", "plot_scores_with_ceiling",
           "plot_cka_heatmap", "plot_voxel_map", "attribution_table", "plot_attribution",
           "plot_scores", "plot_similarity_matrices", "plot_sweep", "save_sweep_figure",
           "condition_labels", "plot_learning_curves", "emission_positions", "position_frame",
           "plot_position_effect", "runs_frame", "plot_runs", "save_sweep_figures",
           "plot_causal", "plot_complexity_heatmaps", "plot_random_functions",
           "plot_gpt_complexity", "plot_init_gap", "save_redshift_figures", "plot_spectral",
           "save_spectral_figure", "plot_searchlight_map"]
