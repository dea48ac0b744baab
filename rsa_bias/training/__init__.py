"""Training loop, per-feature learning curves, activation snapshots, checkpoints."""

from __future__ import annotations

from rsa_bias.training.loop import TrainResult, resolve_device, train

__all__ = ["train", "TrainResult", "resolve_device"]
