"""Generators of multi-feature stimulus sets (labelled ``xr.Dataset``)."""

from __future__ import annotations

from rsa_bias.tasks.binary import feature_function, make_binary_task

__all__ = ["make_binary_task", "feature_function"]
