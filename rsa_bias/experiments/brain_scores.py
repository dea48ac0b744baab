"""Networks against the brain: RSA to human and monkey IT on the 92 images (Kriegeskorte et
al. 2008) and ridge encoding of 50 V4 neurons (Cowley et al. 2023), for every model x layer.

Scale: trained on 32 px synthetic images, the networks are scored on photographs resized to
``image_size=64`` (more of their detail; convolutions and readout work at any size), so their
filters meet structures at about twice their training scale; ``image_size=32`` avoids that.
The readout of conv layers is that of :func:`rsa_bias.training.activations.layer_activations`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from torch import nn

from rsa_bias._api import legacy_call
from rsa_bias.analysis import RidgeEncoder, cross_validated_scores, evaluate_models, rdm
from rsa_bias.analysis.encoding import ridge_from_options
from rsa_bias.experiments._grid import by_model_layer, model_layer_names
from rsa_bias.experiments.trifeature_cnn import all_layer_activations
from rsa_bias.provenance import result_attrs

ALPHAS = tuple(float(a) for a in np.logspace(-6, 6, 25))  # ridge grid for z-scored units

def _rsa_target(rdms: xr.DataArray, keys: list, data: xr.DataArray, **kw) -> xr.Dataset:
    ev = evaluate_models(rdms, data, bootstrap="stimulus", **kw)
    models, layers = model_layer_names(keys)
    grid = {v: by_model_layer({k: float(ev[v][i]) for i, k in enumerate(keys)}, models, layers)
            for v in ("score", "ci_low", "ci_high", "standard_error")}
    out = xr.Dataset({v: (("model", "layer"), g) for v, g in grid.items()},
                     coords={"model": models, "layer": layers})
    out["noise_ceiling_lower"] = float(ev.noise_ceiling_lower)
    out["noise_ceiling_upper"] = float(ev.noise_ceiling_upper)
    per_subject = {k: ev.score_subject.values[i] for i, k in enumerate(keys)}
    out["score_subject"] = (("model", "layer", "subject"),
                            by_model_layer(per_subject, models, layers, (ev.sizes["subject"],)))
    return out.assign_coords(subject=ev.subject.values)


@legacy_call(renamed={"method": "compare_method"})
def rsa_vs_it(models: Mapping[str, nn.Module], rsa92: xr.Dataset | None = None, *,
              layers: Sequence[str] | None = None, image_size: int = 64, readout: str = "gap",
              n_components: int | None = None, rdm_method: str = "correlation",
              compare_method: str = "spearman", n_boot: int = 1000, seed: int = 0,
              activations: Mapping[tuple[str, str], xr.DataArray] | None = None
              ) -> xr.Dataset:
    """Score every model x layer by RSA against human IT and monkey IT on the 92 images.

    Each layer's RDM is ``rdm(activation, method=rdm_method)`` (default 1 - Pearson r, as
    the brain RDMs). Human IT: each subject's RDM averaged over its 2 sessions, the 4
    subjects as subjects of :func:`~rsa_bias.analysis.evaluate_models` (score = mean over
    subjects of ``compare_method``, default Spearman; 95% stimulus-bootstrap interval;
    noise ceiling as :func:`~rsa_bias.analysis.rdm_noise_ceiling`). Monkey IT: one group
    RDM (no ceiling). The brain RDMs are put in sorted stimulus-id order first, so the
    bootstrap draws do not depend on how the data are ordered.

    Parameters
    ----------
    models : mapping of str to torch.nn.Module
        ``{model name: network}``, e.g. :func:`~rsa_bias.experiments.random_models` plus
        a trained CNN.
    rsa92 : xarray.Dataset, optional
        The dataset of :func:`~rsa_bias.brain.load_rsa92`; loaded when not given.
    layers : sequence of str, optional
        The layers to score; default as :func:`~rsa_bias.experiments.layer_activations`.
    image_size : int, default 64
        Side the photographs are resized to (on scale, see
        :mod:`rsa_bias.experiments.brain_scores`).
    readout : str, default "gap"
        Conv feature maps to units, as :func:`~rsa_bias.experiments.layer_activations`.
    n_components : int, optional
        Random projection of each layer, as :func:`~rsa_bias.experiments.layer_activations`.
    rdm_method : str, default "correlation"
        The method of the layers' RDMs (:func:`~rsa_bias.analysis.rdm`).
    compare_method : str, default "spearman"
        How a layer's RDM is compared with a brain RDM
        (:func:`~rsa_bias.analysis.compare_rdms`).
    n_boot : int, default 1000
        Stimulus-bootstrap replicates of the interval.
    seed : int, default 0
        Seeds the bootstrap and the random projections.
    activations : mapping of (str, str) to xarray.DataArray, optional
        The ``{(model, layer): activation}`` of the 92 images when already computed (as
        by :func:`~rsa_bias.experiments.trifeature_cnn.all_layer_activations` with the same
        readout arguments), to skip the forward passes; ``models``, ``layers`` and the
        readout arguments are then not used to compute activations (the readout arguments
        are still recorded in the attrs).

    Returns
    -------
    xarray.Dataset
        ``score``, ``ci_low``, ``ci_high``, ``standard_error`` (target, model, layer),
        ``noise_ceiling_lower``/``_upper`` (target; NaN for monkey IT),
        ``score_subject(target, model, layer, subject)``; targets ``human_it``,
        ``monkey_it``; provenance attrs.
    """
    from rsa_bias.brain import load_rsa92

    rsa92 = load_rsa92() if rsa92 is None else rsa92
    acts = activations if activations is not None else all_layer_activations(
        models, rsa92["image"], layers=layers, image_size=image_size, readout=readout,
        n_components=n_components, seed=seed)
    return _rsa_scores(acts, rsa92, image_size=image_size, readout=readout,
                       n_components=n_components, rdm_method=rdm_method,
                       compare_method=compare_method,
                       n_boot=n_boot, seed=seed)


def _rsa_scores(acts: Mapping[tuple[str, str], xr.DataArray], rsa92: xr.Dataset, *,
                image_size: int, readout: str, n_components: int | None, rdm_method: str,
                compare_method: str, n_boot: int, seed: int) -> xr.Dataset:
    """:func:`rsa_vs_it` of activations already computed by ``all_layer_activations`` (the
    readout arguments only go into the provenance attrs)."""
    keys = list(acts)
    rdms = xr.concat([rdm(a, method=rdm_method) for a in acts.values()], dim="model",
                     coords="minimal", compat="override", join="exact")
    rdms = rdms.assign_coords(model=[f"{m}|{layer}" for m, layer in keys])
    targets = {"human_it": rsa92["human_it"].mean("session"),
               "monkey_it": rsa92["monkey_it"].expand_dims(subject=["monkey"])}
    # canonical (sorted-id) order: bootstrap draws do not depend on how the data are ordered
    targets = {k: v.sortby("stimulus_i").sortby("stimulus_j") for k, v in targets.items()}
    kw = {"method": compare_method, "n_boot": n_boot, "seed": seed}
    parts = [_rsa_target(rdms, keys, data, **kw) for data in targets.values()]
    out = xr.concat(parts, dim=xr.Variable("target", list(targets)), join="outer",
                    coords="different", compat="equals")
    out.attrs.update(result_attrs(
        "rsa_vs_it", method=compare_method, bootstrap="stimulus", image_size=image_size,
        readout=readout, n_components=n_components, rdm_method=rdm_method, n_boot=n_boot,
        seed=seed, human_it="mean over sessions, 4 subjects",
        monkey_it="group RDM (mIT_674neurons)"))
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


@legacy_call(folded={"estimator": (("alphas",), ridge_from_options)})
def encoding_vs_v4(models: Mapping[str, nn.Module], v4: xr.Dataset | None = None, *,
                   layers: Sequence[str] | None = None, image_size: int = 64,
                   readout: str = "gap", n_components: int | None = None, cv: int = 5,
                   estimator=None, n_boot: int = 1000, seed: int = 0,
                   activations: Mapping[tuple[str, str], xr.DataArray] | None = None
                   ) -> xr.Dataset:
    """Score every model x layer by cross-validated ridge encoding of the V4 neurons.

    Units are z-scored over the images (so one alpha grid suits every layer and
    initialisation); :func:`~rsa_bias.analysis.cross_validated_scores` (seeded shuffled
    ``cv``-fold outer split; ``estimator`` default ``RidgeEncoder(ALPHAS)``, a leave-one-out
    choice of alpha per neuron over :data:`ALPHAS`) fits the mean
    over the first :func:`v4_responses` repeats; Pearson r is divided by the neuron's
    split-half (Spearman-Brown) ceiling sqrt(reliability) of those repeats. The responses
    are put in sorted stimulus-id order first, so the folds do not depend on the data's
    order.

    Parameters
    ----------
    models, layers, image_size, readout, n_components
        As in :func:`rsa_vs_it`.
    v4 : xarray.Dataset, optional
        The dataset of :func:`~rsa_bias.brain.load_v4` (with images); loaded when not given.
    cv : int, default 5
        Outer folds (shuffled, seeded by ``seed``) of
        :func:`~rsa_bias.analysis.cross_validated_scores`, which also takes a
        scikit-learn splitter.
    estimator : scikit-learn regressor, optional
        The encoding model; default ``RidgeEncoder(ALPHAS)``.
    n_boot : int, default 1000
        Bootstrap-over-neurons replicates of the interval of the median.
    seed : int, default 0
        Seeds the outer folds, the noise-ceiling half-splits, the bootstrap and the random
        projections.
    activations : mapping of (str, str) to xarray.DataArray, optional
        The ``{(model, layer): activation}`` of the V4 images when already computed (an
        activation file of your own model, say), as in :func:`rsa_vs_it`.

    Returns
    -------
    xarray.Dataset
        ``pearson_r`` and ``pearson_r_normalised`` (model, layer, neuron),
        ``ceiling_r``/``reliability`` (neuron), ``score`` (model, layer) = median
        normalised r over neurons with a positive reliability, ``score_raw`` = median raw
        r (over the same neurons), and a 95% bootstrap-over-neurons interval of the
        median, ``ci_low``/``ci_high``; provenance attrs.
    """
    from rsa_bias.brain import load_v4

    v4 = load_v4() if v4 is None else v4
    resp = v4_responses(v4).sortby("stimulus")  # folds independent of the data's order
    acts = activations if activations is not None else all_layer_activations(
        models, v4["image"], layers=layers, image_size=image_size, readout=readout,
        n_components=n_components, seed=seed)
    estimator = RidgeEncoder(ALPHAS) if estimator is None else estimator
    scores = {k: cross_validated_scores(_zscored(_in_order(a, resp)), resp, cv=cv,
                                        estimator=estimator, seed=seed)
              for k, a in acts.items()}
    first = next(iter(scores.values()))
    n = first.sizes["neuron"]
    models_, layers_ = model_layer_names(scores)
    grid = {v: by_model_layer({k: s[v].values for k, s in scores.items()}, models_, layers_, (n,))
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
    out.attrs.update(result_attrs(
        "encoding_vs_v4", method="ridge, nested CV, noise-ceiling normalised",
        image_size=image_size, readout=readout, n_components=n_components, cv=cv,
        n_boot=n_boot, n_repeats=int(resp.sizes["repeat"]),
        n_neurons_with_ceiling=int(ok.sum()), seed=seed))
    return out


