"""The papers' experiments as functions returning xarray results and figures."""

from __future__ import annotations

from rsa_bias.experiments.bias_demos import list_demos, run_demo
from rsa_bias.experiments.brain_comparison import run_model_vs_brain
from rsa_bias.experiments.complexity_bias import run_complexity_bias, summary_table
from rsa_bias.experiments.model_vs_brain import (
    encoding_vs_v4,
    layer_activations,
    random_models,
    rsa_vs_it,
    train_trifeature_cnn,
    trifeature_variance,
)

__all__ = ["run_demo", "list_demos", "run_complexity_bias", "summary_table",
           "run_model_vs_brain", "layer_activations",
           "rsa_vs_it", "encoding_vs_v4", "random_models", "train_trifeature_cnn",
           "trifeature_variance"]
