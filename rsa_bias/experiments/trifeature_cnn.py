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
    """Build one CNN per initialisation family, at random initialisation.

    Every model is :func:`comparison_config` with the family's changes, in evaluation mode,
    each built after ``torch.manual_seed(seed)`` (so two families that share a config get
    the same weights).

    Parameters
    ----------
    families : mapping of str to dict, optional
        ``{model name: changes to comparison_config()}`` (e.g. ``{"init": "orthogonal",
        "activation": "tanh"}``); default :data:`RANDOM_FAMILIES`.
    seed : int, default 0
        Seeds each model's initialisation (torch's global generator).
    image_size : int, default 32
        Side of the input images the models are built for; the CNN pools globally, so it
        runs on any size and its weights do not depend on this.

    Returns
    -------
    dict of str to torch.nn.Module
        ``{model name: CNN}`` with heads ``colour``, ``shape`` and ``texture`` (3 values
        each).

    Examples
    --------
    >>> models = random_models({"kaiming": {}, "tanh": {"activation": "tanh"}})
    >>> list(models), models["kaiming"].layer_names
    (['kaiming', 'tanh'], ['conv_0', 'conv_1', 'conv_2', 'pool', 'fc_0'])
    """
    out = {}
    for name, changes in (RANDOM_FAMILIES if families is None else families).items():
        torch.manual_seed(seed)
        out[name] = build_model((3, image_size, image_size), HEADS,
                                comparison_config(**changes)).eval()
    return out


def trifeature_task(*, small: bool = True, seed: int = 0) -> xr.Dataset:
    """Generate the image task of ``models/cnn_trifeature.toml``.

    Trifeature-like images (:func:`~rsa_bias.tasks.make_image_task`, default
    ``ImageTaskConfig``: 3 colours x 3 shapes x 3 textures, 32 x 32 pixels), with 216
    validation and 216 test images (8 per combination).

    Parameters
    ----------
    small : bool, default True
        20 instead of 40 training images per combination (540 instead of 1080).
    seed : int, default 0
        The task seed (splits, positions, texture phases).

    Returns
    -------
    xarray.Dataset
        ``inputs(stimulus, channel, y, x)`` with the ``split`` and ``feature_colour``,
        ``feature_shape``, ``feature_texture`` coords of
        :func:`~rsa_bias.tasks.make_image_task`.
    """
    per_cell = 20 if small else 40
    return make_image_task(TaskConfig(kind="images", n_train=27 * per_cell, val_size=216,
                                      test_size=216, seed=seed, images=ImageTaskConfig()))


def train_trifeature_cnn(stimuli: xr.Dataset | None = None, *, small: bool = True,
                         seed: int = 0, model_cfg: ModelConfig | None = None,
                         progress: bool = False) -> TrainResult:
    """Train the comparison CNN on the Trifeature task.

    Adam at learning rate 3e-3, batches of 64, 500 steps (small) or 1000 (full), evaluated
    every 100 steps, on the CPU; activations are snapshot only at step 0.

    Parameters
    ----------
    stimuli : xarray.Dataset with dims ("stimulus", "channel", "y", "x"), optional
        The task; default :func:`trifeature_task` of ``small`` and ``seed``.
    small : bool, default True
        500 training steps (and the small task when ``stimuli`` is not given); ``False``:
        1000.
    seed : int, default 0
        Seeds the task (when generated here) and the training.
    model_cfg : ModelConfig, optional
        The network; default :func:`comparison_config`.
    progress : bool, default False
        Show a progress bar.

    Returns
    -------
    TrainResult
        The run, its ``model`` in evaluation mode.
    """
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
    """Compute the feature variance explained of every model x layer on the Trifeature images.

    Each 3-valued feature is entered as indicator columns (see
    :func:`~rsa_bias.analysis.feature_variance_explained`), fitted on one split and
    evaluated on another; the images of both splits go through each network as they are
    (already in [-1, 1]).

    Parameters
    ----------
    models : mapping of str to torch.nn.Module
        ``{model name: network}``, e.g. :func:`random_models` plus a trained CNN.
    stimuli : xarray.Dataset with dims ("stimulus", "channel", "y", "x")
        The Trifeature task (:func:`trifeature_task`) with its ``split`` and
        ``feature_<name>`` coords.
    layers : sequence of str, optional
        The layers to analyse; default as
        :func:`~rsa_bias.experiments.layer_activations`.
    readout : str, default "gap"
        Conv feature maps to units, as :func:`~rsa_bias.experiments.layer_activations`.
    fit_split : str, default "val"
        The split the feature regression is fitted on.
    eval_split : str, default "test"
        The split its variance explained is measured on.

    Returns
    -------
    xarray.Dataset
        ``r2(model, layer, feature)`` and ``r2_joint(model, layer)``; provenance attrs.
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
