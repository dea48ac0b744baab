"""The Trifeature CNN of the networks-vs-brains comparison: the image task, the CNN trained
on it, the same CNN at random initialisation under several initialisation families, and the
feature variance each of their layers gives colour, shape and texture.

Every model is the same small CNN (:func:`comparison_config`): at random initialisation under
several initialisation families and activations (:data:`RANDOM_FAMILIES`, all seeded), and
trained on the Trifeature-like images (:func:`train_trifeature_cnn`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bias._api import legacy_call
from rsa_bias.analysis import feature_variance_explained
from rsa_bias.config import CNNConfig, ImageTaskConfig, ModelConfig, TaskConfig, TrainingConfig
from rsa_bias.experiments._grid import by_model_layer, model_layer_names
from rsa_bias.networks import build_model
from rsa_bias.provenance import result_attrs
from rsa_bias.tasks import make_image_task, n_classes
from rsa_bias.training import TrainResult, train
from rsa_bias.training.activations import layer_activations

HEADS = {"colour": 3, "shape": 3, "texture": 3}

# name -> changes to comparison_config(): init families x activations, seeded.
RANDOM_FAMILIES: dict[str, dict] = {
    "random kaiming relu": {"init": "kaiming_normal", "activation": "relu"},
    "random orthogonal relu": {"init": "orthogonal", "activation": "relu"},
    "random xavier tanh": {"init": "xavier_uniform", "activation": "tanh"},
    "random kaiming gelu": {"init": "kaiming_normal", "activation": "gelu"},
    "random scaled x4 tanh": {"init": "scaled_normal", "init_scale": 4.0, "activation": "tanh"},
}


def comparison_config(**changes) -> ModelConfig:
    """The CNN of ``models/cnn_trifeature.toml`` (3 conv blocks 16-32-32, fc 64, ReLU,
    Kaiming-normal init), with ``changes`` applied to its fields."""
    base = ModelConfig(arch="cnn", init="kaiming_normal",
                       cnn=CNNConfig(channels=(16, 32, 32), fc_widths=(64,)))
    return dataclasses.replace(base, **changes)


def random_models(families: Mapping[str, dict] | None = None, *, seed: int = 0,
                  image_size: int = 32) -> dict[str, nn.Module]:
    """One CNN per entry of ``families`` (default :data:`RANDOM_FAMILIES`) at initialisation,
    in evaluation mode, each built after ``torch.manual_seed(seed)``."""
    out = {}
    for name, changes in (RANDOM_FAMILIES if families is None else families).items():
        torch.manual_seed(seed)
        out[name] = build_model((3, image_size, image_size), HEADS,
                                comparison_config(**changes)).eval()
    return out


def trifeature_task(*, small: bool = True, seed: int = 0) -> xr.Dataset:
    """The image task of ``models/cnn_trifeature.toml`` (small: 20 instead of 40 training
    images per combination)."""
    per_cell = 20 if small else 40
    return make_image_task(TaskConfig(kind="images", n_train=27 * per_cell, val_size=216,
                                      test_size=216, seed=seed, images=ImageTaskConfig()))


def train_trifeature_cnn(stimuli: xr.Dataset | None = None, *, small: bool = True,
                         seed: int = 0, model_cfg: ModelConfig | None = None,
                         progress: bool = False) -> TrainResult:
    """Train :func:`comparison_config` on the Trifeature task (500 steps small, 1000 full)."""
    stimuli = trifeature_task(small=small, seed=seed) if stimuli is None else stimuli
    cfg = TrainingConfig(lr=3e-3, batch_size=64, steps=500 if small else 1000, eval_every=100,
                         snapshot_steps=(0,), device="cpu")
    res = train(stimuli, model_cfg or comparison_config(), cfg, seed=seed, progress=progress)
    res.model.eval()
    return res


def all_layer_activations(models, images, **kw) -> dict[tuple[str, str], xr.DataArray]:
    return {(m, layer): act for m, model in models.items()
            for layer, act in layer_activations(model, images, **kw).items()}


@legacy_call(positional=("stimuli",))
def trifeature_variance(models: Mapping[str, nn.Module], *, stimuli: xr.Dataset,
                        layers: Sequence[str] | None = None, readout: str = "gap",
                        fit_split: str = "val", eval_split: str = "test") -> xr.Dataset:
    """Feature variance explained of every model x layer on the Trifeature images, each
    3-valued feature entered as indicator columns (see
    :func:`~rsa_bias.analysis.feature_variance_explained`).

    Returns ``r2(model, layer, feature)`` and ``r2_joint(model, layer)``.
    """
    held_out = stimuli.isel(stimulus=np.isin(stimuli.split.values, (fit_split, eval_split)))
    x = torch.as_tensor(held_out.inputs.values)
    ids = held_out.stimulus.values
    rows = {(m, layer): feature_variance_explained(a, stimuli=held_out, fit_split=fit_split,
                                                   eval_split=eval_split, categorical=True)
            for m, model in models.items()
            for layer, a in layer_activations(model, x, stimulus_ids=ids, layers=layers,
                                              readout=readout).items()}
    models_, layers_ = model_layer_names(rows)
    feats = list(n_classes(stimuli))
    out = xr.Dataset(
        {"r2": (("model", "layer", "feature"),
                by_model_layer({k: v.r2.values for k, v in rows.items()}, models_, layers_,
                      (len(feats),))),
         "r2_joint": (("model", "layer"),
                      by_model_layer({k: float(v.r2_joint) for k, v in rows.items()}, models_,
                            layers_))},
        coords={"model": models_, "layer": layers_, "feature": feats})
    out.attrs.update(result_attrs("trifeature_variance",
                                  method="categorical feature variance explained",
                                  readout=readout, fit_split=fit_split, eval_split=eval_split))
    return out
