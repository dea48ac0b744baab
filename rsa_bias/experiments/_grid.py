"""Model x layer grids: results keyed by ``(model, layer)`` as arrays with those two dims."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def by_model_layer(values: Mapping[tuple[str, str], np.ndarray], models: list[str],
                   layers: list[str], tail: tuple[int, ...] = ()) -> np.ndarray:
    """``(model, layer, *tail)`` array of ``values[(model, layer)]`` (NaN where missing)."""
    out = np.full((len(models), len(layers), *tail), np.nan)
    for (m, layer), v in values.items():
        out[models.index(m), layers.index(layer)] = v
    return out


def model_layer_names(keys) -> tuple[list[str], list[str]]:
    """Models and layers of ``(model, layer)`` keys, each in order of first appearance."""
    models = list(dict.fromkeys(m for m, _ in keys))
    layers = list(dict.fromkeys(layer for _, layer in keys))
    return models, layers
