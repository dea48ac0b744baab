"""Random and trained CNNs against the brain: RSA to human and monkey IT on the 92 images
(Kriegeskorte et al. 2008), ridge encoding of 50 V4 neurons (Cowley et al. 2023), and the
Trifeature features each layer is loud about.

Every model is the same small CNN (:func:`comparison_config`): at random initialisation under
several initialisation families and activations (:data:`RANDOM_FAMILIES`, all seeded), and
trained on the Trifeature-like images (:func:`train_trifeature_cnn`). Photographs are
resized to ``image_size`` pixels and scaled to [-1, 1] by
:func:`rsa_bias.networks.prepare_images`, the range of the synthetic training images. Scale:
trained on 32 px synthetic images, the network is scored on photographs resized to
``image_size=64`` (more of their detail; convolutions and readout work at any size), so its
filters meet structures at about twice their training scale; ``image_size=32`` avoids that.

Readout: a conv layer's feature map becomes ``activation(stimulus, unit)`` by averaging each
channel over space (``readout="gap"``, the default: position-invariant, one unit per
channel), or by flattening every (channel, y, x) (``"flatten"``), optionally followed by a
seeded Gaussian random projection to ``n_components`` units (which preserves distances and
correlations approximately, Johnson-Lindenstrauss). With ``"gap"`` the ``pool`` layer equals
the last conv layer and is left out of the default layers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bias.activations import capture
from rsa_bias.analysis import (
    cross_validated_scores,
    evaluate_models,
    feature_variance_explained,
    rdm,
)
from rsa_bias.config import CNNConfig, ImageTaskConfig, ModelConfig, TaskConfig, TrainingConfig
from rsa_bias.networks import build_model, prepare_images, spatial_readout
from rsa_bias.provenance import provenance_attrs
from rsa_bias.tasks import make_image_task, n_classes
from rsa_bias.training import TrainResult, train

HEADS = {"colour": 3, "shape": 3, "texture": 3}
ALPHAS = tuple(float(a) for a in np.logspace(-6, 6, 25))  # ridge grid for z-scored units

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
    res = train(stimuli, model_cfg or comparison_config(), cfg, seed, progress=progress)
    res.model.eval()
    return res


def _default_layers(model: nn.Module, readout: str) -> list[str]:
    return [n for n in model.layer_names if not (readout == "gap" and n == "pool")]


def layer_activations(model: nn.Module, images: xr.DataArray | np.ndarray | torch.Tensor, *,
                      stimulus_ids: Sequence | None = None, layers: Sequence[str] | None = None,
                      image_size: int | None = 64, readout: str = "gap",
                      n_components: int | None = None, seed: int = 0,
                      batch_size: int = 128) -> dict[str, xr.DataArray]:
    """``{layer: activation(stimulus, unit)}`` of ``model`` for ``images``.

    Parameters
    ----------
    images : uint8 ``image(stimulus, y, x, channel)`` DataArray (its ``stimulus`` coord
        gives the ids; ``stimulus_ids``, if given, must equal them), a uint8 array ``(n, y, x,
        3)`` or a prepared float tensor ``(n, 3, y, x)`` (both need ``stimulus_ids``).
    layers : default every layer (without ``pool`` under ``readout="gap"``).
    image_size : side the photographs are resized to (ignored for a tensor).
    readout, n_components, seed : see the module docstring; the projection is drawn from
        ``numpy.random.default_rng(seed)``, one matrix per layer.

    Returns
    -------
    dict of DataArrays with dims ("stimulus", "unit") labelled with the stimulus ids, so
    every analysis aligns them with brain data by id.
    """
    if isinstance(images, xr.DataArray):
        own = images["stimulus"].values
        if stimulus_ids is not None and not np.array_equal(np.asarray(stimulus_ids), own):
            raise ValueError("stimulus_ids differ from the images' own stimulus coord; pass a "
                             "labelled DataArray without stimulus_ids (its ids are used)")
        stimulus_ids = own
    elif stimulus_ids is None:
        raise ValueError("stimulus_ids are required for unlabelled images; pass the brain "
                         "dataset's ids in the images' order")
    ids = np.asarray(stimulus_ids)
    x = images if isinstance(images, torch.Tensor) else prepare_images(images, size=image_size)
    if len(ids) != len(x):
        raise ValueError(f"{len(ids)} stimulus ids for {len(x)} images")
    layers = list(layers or _default_layers(model, readout))
    device = next(model.parameters()).device
    acts = capture(model, x.to(device), layers, batch_size=batch_size)
    rng = np.random.default_rng(seed)
    out = {}
    for name in layers:
        a = spatial_readout(acts[name], readout).astype(np.float64)
        if n_components is not None and a.shape[1] > n_components:
            a = a @ rng.normal(0.0, 1.0 / np.sqrt(n_components), (a.shape[1], n_components))
        out[name] = xr.DataArray(a, dims=("stimulus", "unit"), name="activation",
                                 coords={"stimulus": ids, "unit": np.arange(a.shape[1])},
                                 attrs={"readout": readout,
                                        "n_components": n_components or 0})
    return out


def _all_layers(models, images, **kw) -> dict[tuple[str, str], xr.DataArray]:
    return {(m, layer): act for m, model in models.items()
            for layer, act in layer_activations(model, images, **kw).items()}


def _grid(values: Mapping[tuple[str, str], np.ndarray], models: list[str], layers: list[str],
          tail: tuple[int, ...] = ()) -> np.ndarray:
    out = np.full((len(models), len(layers), *tail), np.nan)
    for (m, layer), v in values.items():
        out[models.index(m), layers.index(layer)] = v
    return out


def _names(keys) -> tuple[list[str], list[str]]:
    models = list(dict.fromkeys(m for m, _ in keys))
    layers = list(dict.fromkeys(layer for _, layer in keys))
    return models, layers


def _rsa_target(rdms: xr.DataArray, keys: list, data: xr.DataArray, **kw) -> xr.Dataset:
    ev = evaluate_models(rdms, data, bootstrap="stimulus", **kw)
    models, layers = _names(keys)
    grid = {v: _grid({k: float(ev[v][i]) for i, k in enumerate(keys)}, models, layers)
            for v in ("score", "ci_low", "ci_high", "standard_error")}
    out = xr.Dataset({v: (("model", "layer"), g) for v, g in grid.items()},
                     coords={"model": models, "layer": layers})
    out["noise_ceiling_lower"] = float(ev.noise_ceiling_lower)
    out["noise_ceiling_upper"] = float(ev.noise_ceiling_upper)
    per_subject = {k: ev.score_subject.values[i] for i, k in enumerate(keys)}
    out["score_subject"] = (("model", "layer", "subject"),
                            _grid(per_subject, models, layers, (ev.sizes["subject"],)))
    return out.assign_coords(subject=ev.subject.values)


def rsa_vs_it(models: Mapping[str, nn.Module], rsa92: xr.Dataset | None = None, *,
              layers: Sequence[str] | None = None, image_size: int = 64, readout: str = "gap",
              n_components: int | None = None, rdm_method: str = "correlation",
              method: str = "spearman", n_boot: int = 1000, seed: int = 0,
              activations: Mapping[tuple[str, str], xr.DataArray] | None = None
              ) -> xr.Dataset:
    """RSA of every model x layer against human IT and monkey IT on the 92 images.

    Each layer's RDM is ``rdm(activation, method=rdm_method)`` (default 1 - Pearson r, as
    the brain RDMs). Human IT: each subject's RDM averaged over its 2 sessions, the 4
    subjects as subjects of :func:`~rsa_bias.analysis.evaluate_models` (score = mean over
    subjects of ``method``, default Spearman; 95% stimulus-bootstrap interval; noise ceiling
    as :func:`~rsa_bias.analysis.rdm_noise_ceiling`). Monkey IT: one group RDM (no ceiling).
    ``activations``: the ``{(model, layer): activation}`` of the 92 images when already
    computed (as by ``_all_layers`` with the same readout arguments), to skip the forward passes.

    Returns
    -------
    xarray.Dataset with ``score``, ``ci_low``, ``ci_high``, ``standard_error``
    (target, model, layer), ``noise_ceiling_lower``/``_upper`` (target; NaN for monkey IT),
    ``score_subject(target, model, layer, subject)``; targets ``human_it``, ``monkey_it``.
    """
    from rsa_bias.brain import load_rsa92

    rsa92 = load_rsa92() if rsa92 is None else rsa92
    acts = activations if activations is not None else _all_layers(
        models, rsa92["image"], layers=layers, image_size=image_size, readout=readout,
        n_components=n_components, seed=seed)
    return _rsa_scores(acts, rsa92, image_size=image_size, readout=readout,
                       n_components=n_components, rdm_method=rdm_method, method=method,
                       n_boot=n_boot, seed=seed)


def _rsa_scores(acts: Mapping[tuple[str, str], xr.DataArray], rsa92: xr.Dataset, *,
                image_size: int, readout: str, n_components: int | None, rdm_method: str,
                method: str, n_boot: int, seed: int) -> xr.Dataset:
    """:func:`rsa_vs_it` of activations already computed by :func:`_all_layers` (the
    readout arguments only go into the provenance attrs)."""
    keys = list(acts)
    rdms = xr.concat([rdm(a, method=rdm_method) for a in acts.values()], dim="model",
                     coords="minimal", compat="override", join="exact")
    rdms = rdms.assign_coords(model=[f"{m}|{layer}" for m, layer in keys])
    targets = {"human_it": rsa92["human_it"].mean("session"),
               "monkey_it": rsa92["monkey_it"].expand_dims(subject=["monkey"])}
    # canonical (sorted-id) order: bootstrap draws do not depend on how the data are ordered
    targets = {k: v.sortby("stimulus_i").sortby("stimulus_j") for k, v in targets.items()}
    kw = {"method": method, "n_boot": n_boot, "seed": seed}
    parts = [_rsa_target(rdms, keys, data, **kw) for data in targets.values()]
    out = xr.concat(parts, dim=xr.Variable("target", list(targets)), join="outer",
                    coords="different", compat="equals")
    out.attrs.update(provenance_attrs(
        config={"image_size": image_size, "readout": readout, "n_components": n_components,
                "rdm_method": rdm_method, "n_boot": n_boot, "human_it": "mean over sessions, "
                "4 subjects", "monkey_it": "group RDM (mIT_674neurons)"},
        seed=seed, method=f"rsa_vs_it ({method}, stimulus bootstrap)"))
    return out


def v4_responses(v4: xr.Dataset) -> xr.DataArray:
    """``response(stimulus, neuron, repeat)`` with the first ``min(n_repeats)`` repeats of
    every image (all observed), so the split-half noise ceiling has no missing values."""
    k = int(v4["n_repeats"].min())
    resp = v4["response"].isel(repeat=slice(0, k)).transpose("stimulus", "neuron", "repeat")
    if np.isnan(resp.values).any():
        raise ValueError(f"V4 responses have missing values within the first {k} repeats")
    return resp


def _in_order(a: xr.DataArray, ref: xr.DataArray) -> xr.DataArray:
    """``a`` in the stimulus order of ``ref``; refuses differing stimulus sets by name."""
    ids = ref["stimulus"].values
    missing = np.setdiff1d(ids, a["stimulus"].values)
    extra = np.setdiff1d(a["stimulus"].values, ids)
    if missing.size or extra.size:
        raise ValueError(f"stimuli differ: {missing.size} response ids lack activations (e.g. "
                         f"{missing[:3].tolist()}), {extra.size} activation ids lack responses "
                         f"(e.g. {extra[:3].tolist()})")
    return a.sel(stimulus=ids)


def _zscored(a: xr.DataArray) -> xr.DataArray:
    sd = a.std("stimulus")
    return (a - a.mean("stimulus")) / sd.where(sd > 0, 1.0)


def encoding_vs_v4(models: Mapping[str, nn.Module], v4: xr.Dataset | None = None, *,
                   layers: Sequence[str] | None = None, image_size: int = 64,
                   readout: str = "gap", n_components: int | None = None, cv: int = 5,
                   alphas: Sequence[float] = ALPHAS, n_boot: int = 1000,
                   seed: int = 0) -> xr.Dataset:
    """Cross-validated ridge encoding of the V4 neurons from every model x layer.

    Units are z-scored over the images (so one alpha grid suits every layer and
    initialisation); :func:`~rsa_bias.analysis.cross_validated_scores` (seeded shuffled
    ``cv``-fold outer split, leave-one-out choice of ``alphas`` per neuron) fits the mean
    over the first :func:`v4_responses` repeats; Pearson r is divided by the neuron's
    split-half (Spearman-Brown) ceiling sqrt(reliability) of those repeats.

    Returns
    -------
    xarray.Dataset: ``pearson_r`` and ``pearson_r_normalised`` (model, layer, neuron),
    ``ceiling_r``/``reliability`` (neuron), ``score`` (model, layer) = median normalised r
    over neurons with a positive reliability, ``score_raw`` = median raw r, and a 95%
    bootstrap-over-neurons interval of the median, ``ci_low``/``ci_high``.
    """
    from rsa_bias.brain import load_v4

    v4 = load_v4() if v4 is None else v4
    resp = v4_responses(v4).sortby("stimulus")  # folds independent of the data's order
    acts = _all_layers(models, v4["image"], layers=layers, image_size=image_size,
                       readout=readout, n_components=n_components, seed=seed)
    scores = {k: cross_validated_scores(_zscored(_in_order(a, resp)), resp, cv=cv,
                                        alphas=alphas, seed=seed) for k, a in acts.items()}
    first = next(iter(scores.values()))
    n = first.sizes["neuron"]
    models_, layers_ = _names(scores)
    grid = {v: _grid({k: s[v].values for k, s in scores.items()}, models_, layers_, (n,))
            for v in ("pearson_r", "pearson_r_normalised")}
    ok = np.isfinite(first["ceiling_r"].values)
    boot = np.random.default_rng(seed).integers(0, ok.sum(), (n_boot, ok.sum()))
    norm = grid["pearson_r_normalised"][..., ok]
    medians = np.median(norm[..., boot], axis=-1)  # (model, layer, n_boot)
    out = xr.Dataset(
        {**{v: (("model", "layer", "neuron"), g) for v, g in grid.items()},
         "ceiling_r": first["ceiling_r"], "reliability": first["reliability"],
         "score": (("model", "layer"), np.median(norm, axis=-1)),
         "score_raw": (("model", "layer"), np.median(grid["pearson_r"][..., ok], axis=-1)),
         "ci_low": (("model", "layer"), np.quantile(medians, 0.025, axis=-1)),
         "ci_high": (("model", "layer"), np.quantile(medians, 0.975, axis=-1))},
        coords={"model": models_, "layer": layers_, "neuron": first["neuron"].values})
    out.attrs.update(provenance_attrs(
        config={"image_size": image_size, "readout": readout, "n_components": n_components,
                "cv": cv, "n_boot": n_boot, "n_repeats": int(resp.sizes["repeat"]),
                "n_neurons_with_ceiling": int(ok.sum())},
        seed=seed, method="encoding_vs_v4 (ridge, nested CV, noise-ceiling normalised)"))
    return out


def trifeature_variance(models: Mapping[str, nn.Module], stimuli: xr.Dataset, *,
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
    models_, layers_ = _names(rows)
    feats = list(n_classes(stimuli))
    out = xr.Dataset(
        {"r2": (("model", "layer", "feature"),
                _grid({k: v.r2.values for k, v in rows.items()}, models_, layers_,
                      (len(feats),))),
         "r2_joint": (("model", "layer"),
                      _grid({k: float(v.r2_joint) for k, v in rows.items()}, models_,
                            layers_))},
        coords={"model": models_, "layer": layers_, "feature": feats})
    out.attrs.update(provenance_attrs(config={"readout": readout, "fit_split": fit_split,
                                              "eval_split": eval_split},
                                      method="categorical feature variance explained"))
    return out
