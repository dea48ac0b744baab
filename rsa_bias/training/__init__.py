"""Training loop, batched ensembles, per-feature learning curves, activation snapshots,
checkpoints."""

from __future__ import annotations

from rsa_bias.training.ensemble import (
    VALUE_FIELDS,
    Member,
    ensemble_key,
    seed_members,
    train_ensemble,
)
from rsa_bias.training.extract import (
    extraction_provenance,
    iter_module_activations,
    module_activations,
    module_layers,
)
from rsa_bias.training.loop import TrainResult, resolve_device, train
from rsa_bias.training.steering import steer, steering_table

__all__ = ["train", "train_ensemble", "Member", "seed_members", "ensemble_key", "VALUE_FIELDS",
           "TrainResult", "resolve_device", "steer", "steering_table", "module_layers",
           "iter_module_activations", "module_activations", "extraction_provenance"]
