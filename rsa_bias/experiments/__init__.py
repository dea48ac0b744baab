"""The papers' experiments as functions returning xarray results and figures, and the one
registry (:mod:`rsa_bias.experiments.registry`) that the CLI runs them through."""

from __future__ import annotations

from rsa_bias.experiments.bias_demos import lampinen, loud_feature
from rsa_bias.experiments.brain_scores import encoding_vs_v4, rsa_vs_it
from rsa_bias.experiments.complexity_bias import run_complexity_bias, summary_table
from rsa_bias.experiments.model_vs_brain import run_model_vs_brain
from rsa_bias.experiments.own_vs_brain import brain_comparison_table, compare_to_brain
from rsa_bias.experiments.registry import (
    EXPERIMENTS,
    Experiment,
    ExperimentRun,
    list_experiments,
    run_demo,
    run_experiment,
)
from rsa_bias.experiments.searchlight import haxby_searchlight, run_haxby_searchlight
from rsa_bias.experiments.trifeature_cnn import (
    random_models,
    train_trifeature_cnn,
    trifeature_task,
    trifeature_variance,
)
from rsa_bias.training.activations import layer_activations

__all__ = ["EXPERIMENTS", "Experiment", "ExperimentRun", "list_experiments", "run_experiment",
           "run_demo", "loud_feature", "lampinen", "run_complexity_bias", "summary_table",
           "run_model_vs_brain", "layer_activations", "rsa_vs_it", "encoding_vs_v4",
           "random_models", "train_trifeature_cnn", "trifeature_task", "trifeature_variance",
           "haxby_searchlight", "run_haxby_searchlight", "compare_to_brain",
           "brain_comparison_table"]
