"""Torch modules whose hidden layers are addressable by name."""

from __future__ import annotations

from rsa_bias.networks.mlp import MLP, build_mlp

__all__ = ["MLP", "build_mlp"]
