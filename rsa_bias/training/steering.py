"""Steering a trained network along a feature's class-mean direction: does the rest of the
network read the feature from that direction? (Lampinen, Chan & Hermann 2025)

The direction is computed from the model's own activations at ``layer`` on the fit split:
``mu_v`` is the mean activation of the stimuli with value ``v`` of the steered feature. Each
eval stimulus of value ``v`` is moved towards another value's mean,

    h' = h + scale * (mu_other - mu_v),

(for a binary feature ``other`` is the opposite value; for one with ``K > 2`` values the
next value, ``(v + 1) mod K`` in sorted order) by a forward hook on ``model.layer(layer)``
that returns the modified output; the rest of the network runs on it. At ``scale = 1`` a
stimulus moves by the whole class-mean difference. A head whose decoded label changes reads
the feature from that direction; the other heads should not change.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bias._features import feature_names
from rsa_bias._values import check_count, check_number, numeric_values
from rsa_bias.networks import MLP, Transformer
from rsa_bias.provenance import result_attrs
from rsa_bias.training.activations import capture

DEFAULT_SCALES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def _checked_scales(scales) -> np.ndarray:
    if isinstance(scales, numbers.Real):
        scales = [scales]
    values = [check_number(s, "scales", low=0.0) for s in scales]
    if not values:
        raise ValueError("scales is empty; pass at least one scale, e.g. scales=(0.5, 1.0)")
    return np.unique(np.asarray(values, dtype=np.float64))


def _crossing(scales: np.ndarray, rates: np.ndarray, threshold: float) -> float:
    """The smallest scale at which ``rates`` reaches ``threshold``, linearly interpolated
    through ``(0, 0)`` and the grid; NaN when it never does."""
    s, r = scales, rates
    if s[0] > 0:
        s, r = np.concatenate([[0.0], s]), np.concatenate([[0.0], r])
    hit = np.flatnonzero(r >= threshold)
    if not hit.size:
        return float("nan")
    j = int(hit[0])
    if j == 0 or r[j] == threshold:
        return float(s[j])
    return float(s[j - 1] + (threshold - r[j - 1]) * (s[j] - s[j - 1]) / (r[j] - r[j - 1]))


def _checked_stimuli(stimuli: xr.Dataset) -> list[str]:
    if not isinstance(stimuli, xr.Dataset) or "inputs" not in stimuli:
        raise ValueError("stimuli must be a stimulus set of rsa_bias.tasks.make_task (an "
                         "xarray.Dataset with an 'inputs' variable)")
    if "split" not in stimuli.coords:
        raise ValueError("the stimulus set has no 'split' coord; steering fits its direction "
                         "on one split and tests it on another")
    names = feature_names(stimuli.attrs) or [str(c)[len("feature_"):] for c in stimuli.coords
                                             if str(c).startswith("feature_")]
    missing = [n for n in names if f"feature_{n}" not in stimuli.coords]
    if missing or not names:
        raise ValueError(f"the stimulus set lacks the feature coords of {missing or 'any'} "
                         "feature; it needs feature_<name> coords")
    return names


def _split(stimuli: xr.Dataset, split: str, what: str) -> np.ndarray:
    mask = stimuli["split"].values == split
    if not mask.any():
        raise ValueError(f"{what} {split!r} holds no stimuli (splits present: "
                         f"{sorted(set(stimuli['split'].values.tolist()))})")
    return mask


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _inputs(stimuli: xr.Dataset, mask: np.ndarray, flat: bool, device) -> torch.Tensor:
    x = numeric_values(stimuli["inputs"].values[mask], "stimuli.inputs", dtype=np.float32)
    return torch.as_tensor(x.reshape(len(x), -1) if flat else x, device=device)


def _labels(logits: torch.Tensor) -> torch.Tensor:
    """Decoded value ids: a binary head's logit > 0, else the argmax over values."""
    return (logits > 0).long() if logits.ndim == 1 else logits.argmax(dim=-1)


@torch.no_grad()
def _decode(model: nn.Module, x: torch.Tensor, heads: list[str], batch_size: int,
            module: nn.Module | None = None, delta: torch.Tensor | None = None
            ) -> dict[str, np.ndarray]:
    """Decoded labels of every head, with ``delta`` added to ``module``'s output if given."""
    current: dict[str, torch.Tensor] = {}
    handle = None
    if delta is not None:
        def hook(_module, _inputs, output):
            return output + current["delta"]
        handle = module.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    out: dict[str, list[torch.Tensor]] = {h: [] for h in heads}
    try:
        for start in range(0, len(x), batch_size):
            if delta is not None:
                current["delta"] = delta[start:start + batch_size]
            logits = model(x[start:start + batch_size])
            for h in heads:
                out[h].append(_labels(logits[h]).cpu())
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    return {h: torch.cat(v).numpy() for h, v in out.items()}


@torch.no_grad()
def _heads(model: nn.Module, x: torch.Tensor, names: list[str]) -> list[str]:
    """The features (in the stimulus set's order) that the model has a head for."""
    was_training = model.training
    model.eval()
    try:
        out = model(x[:1])
    finally:
        model.train(was_training)
    return [n for n in names if n in out]


def _unit_shifts(h_fit: np.ndarray, fit_values: np.ndarray, eval_values: np.ndarray,
                 direction, feature: str) -> np.ndarray:
    """``mu_other - mu_own`` of every eval stimulus, in the layer's output shape."""
    levels = np.unique(fit_values)
    if levels.size < 2:
        raise ValueError(f"feature {feature!r} takes one value on the fit split; a direction "
                         "needs two")
    unknown = np.setdiff1d(eval_values, levels)
    if unknown.size:
        raise ValueError(f"eval stimuli have values {unknown.tolist()} of {feature!r} that "
                         "no fit stimulus has; their class mean is unknown")
    own = np.searchsorted(levels, eval_values)
    shape = h_fit.shape[1:]
    if direction is not None:
        if levels.size != 2:
            raise ValueError(f"direction= is for binary features; {feature!r} takes "
                             f"{levels.size} values")
        d = numeric_values(getattr(direction, "values", direction), "direction").ravel()
        if d.size != int(np.prod(shape)):
            raise ValueError(f"direction has {d.size} values but the layer's output has shape "
                             f"{shape} ({int(np.prod(shape))} values) per stimulus")
        means = np.stack([np.zeros(shape), d.reshape(shape)])  # only the difference matters
    else:
        means = np.stack([h_fit[fit_values == v].mean(axis=0) for v in levels])
    return means[(own + 1) % levels.size] - means[own]


def steer(model: nn.Module, *, stimuli: xr.Dataset, layer: str, feature: str,
          scales: Sequence[float] = DEFAULT_SCALES, fit_split: str = "val",
          eval_split: str = "test", direction=None, threshold: float = 0.5,
          flat: bool | None = None, batch_size: int = 8192) -> xr.Dataset:
    """Move eval stimuli along a feature's class-mean direction at one layer; count flips.

    The class means of ``feature`` are taken over the model's own activations at ``layer``
    on the ``fit_split``; each ``eval_split`` stimulus is moved by ``scale`` times the
    difference between another value's mean and its own value's mean (the opposite value of
    a binary feature; see the module docstring) through a forward hook on
    ``model.layer(layer)``, and the rest of the network decodes every head. A flip is a
    decoded label that differs from the unsteered one (so every rate is 0 at scale 0).

    Parameters
    ----------
    model : torch.nn.Module
        A trained network with ``layer_names`` and ``layer(name)`` whose ``model(x)`` returns
        ``{feature: logits}``: ``(batch,)`` for a binary head (label: logit > 0),
        ``(batch, n_values)`` otherwise (label: argmax), as :func:`rsa_bias.training.train`
        trains. Run in evaluation mode (its mode is restored afterwards), on its own device.
    stimuli : xarray.Dataset
        The stimulus set of :func:`rsa_bias.tasks.make_task`: ``inputs``, the ``split``
        coord and ``feature_<name>`` coords (``attrs["feature_names"]``).
    layer : str
        The layer to steer (one of ``model.layer_names``).
    feature : str
        The feature whose direction is added.
    scales : sequence of float, default (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
        Multiples of the class-mean difference to add, each >= 0 (sorted, duplicates
        dropped).
    fit_split : str, default "val"
        Split whose activations give the class means.
    eval_split : str, default "test"
        Split whose stimuli are steered.
    direction : array-like, optional
        For a binary feature, a direction of the layer's output shape (or that many values,
        e.g. a :func:`rsa_bias.class_mean_direction` of the same layer read without spatial
        pooling) pointing from value 0 towards value 1, used instead of the class-mean
        difference: a stimulus of value 0 moves along it, one of value 1 against it.
    threshold : float, default 0.5
        The flip rate of the steered feature that ``step_needed`` reports the scale of.
    flat : bool, optional
        Flatten each stimulus's inputs to a vector (as the MLP and the Transformer read
        them); default: for an :class:`~rsa_bias.networks.MLP` or a
        :class:`~rsa_bias.networks.Transformer`, not otherwise.
    batch_size : int, default 8192
        Stimuli per forward pass.

    Returns
    -------
    xarray.Dataset
        ``flip_rate(target_feature, scale)``: share of eval stimuli whose decoded label of
        each head changes (for the steered feature the causal effect; for the others a
        side effect that should stay near 0); ``accuracy(target_feature)``: unsteered
        accuracy on the eval split (head index = the feature's value id, as ``train``'s
        targets); ``step_needed``: the smallest scale whose steered-feature flip rate reaches
        ``threshold``, interpolated linearly between the grid points and ``(0, 0)`` (NaN if
        no scale reaches it); ``relative_norm``: the mean norm of the shift at scale 1 over
        the mean activation norm of the fit split (for a binary feature
        ``||mu_1 - mu_0|| / mean ||h||``); ``n_eval``. The scalar coord ``feature`` names
        the steered feature.

    Raises
    ------
    ValueError
        An unknown layer or feature (listing the valid ones), a feature without a head, an
        empty split, a feature with one value on the fit split, negative or non-numeric
        scales, a ``direction`` of the wrong size or for a feature with more than two
        values, or NaN/inf inputs.
    """
    names = _checked_stimuli(stimuli)
    if feature not in names:
        raise ValueError(f"unknown feature {feature!r}; features: {names}")
    layer_names = list(model.layer_names)
    if layer not in layer_names:
        raise ValueError(f"unknown layer {layer!r}; layers: {layer_names}")
    if isinstance(model, Transformer):
        raise ValueError("a Transformer's block_i layers record a copy of the residual stream "
                         "(at the positions before the first output), which the network does "
                         "not read on: steering it would change nothing; steer an MLP, CNN "
                         "or ResNet layer")
    grid = _checked_scales(scales)
    threshold = check_number(threshold, "threshold", low=0.0, high=1.0)
    batch_size = check_count(batch_size, "batch_size")
    flat = isinstance(model, (MLP, Transformer)) if flat is None else bool(flat)
    fit = _split(stimuli, fit_split, "fit_split")
    ev = _split(stimuli, eval_split, "eval_split")
    device = _device(model)
    x_fit, x_ev = _inputs(stimuli, fit, flat, device), _inputs(stimuli, ev, flat, device)

    heads = _heads(model, x_ev, names)
    if feature not in heads:
        raise ValueError(f"the model has no head for {feature!r} (heads: {heads})")
    h_fit = capture(model, x_fit, [layer], batch_size=batch_size)[layer].astype(np.float64)
    values = stimuli[f"feature_{feature}"].values
    shifts = _unit_shifts(h_fit, values[fit], values[ev], direction, feature)
    plain = _decode(model, x_ev, heads, batch_size)
    module = model.layer(layer)
    rates = np.empty((len(heads), grid.size))
    for k, scale in enumerate(grid):
        delta = torch.as_tensor(scale * shifts, dtype=torch.float32, device=device)
        steered = _decode(model, x_ev, heads, batch_size, module, delta)
        rates[:, k] = [np.mean(steered[h] != plain[h]) for h in heads]
    accuracy = [float(np.mean(plain[h] == stimuli[f"feature_{h}"].values[ev])) for h in heads]
    act_norm = np.linalg.norm(h_fit.reshape(len(h_fit), -1), axis=1).mean()
    shift_norm = np.linalg.norm(shifts.reshape(len(shifts), -1), axis=1).mean()
    steered_rates = rates[heads.index(feature)]
    ds = xr.Dataset(
        {"flip_rate": (("target_feature", "scale"), rates),
         "accuracy": (("target_feature",), np.asarray(accuracy)),
         "step_needed": _crossing(grid, steered_rates, threshold),
         "relative_norm": float(shift_norm / act_norm) if act_norm > 0 else float("nan"),
         "n_eval": int(ev.sum())},
        coords={"target_feature": heads, "scale": grid, "feature": feature})
    ds.attrs.update(result_attrs("steer", layer=layer, feature=feature,
                                 scales=grid.tolist(), fit_split=fit_split,
                                 eval_split=eval_split, threshold=threshold, flat=flat,
                                 direction="class_mean" if direction is None else "given"))
    return ds


def steering_table(model: nn.Module, *, stimuli: xr.Dataset, layer: str,
                   features: Sequence[str] | None = None,
                   scales: Sequence[float] = DEFAULT_SCALES, fit_split: str = "val",
                   eval_split: str = "test", threshold: float = 0.5,
                   flat: bool | None = None, batch_size: int = 8192) -> xr.Dataset:
    """:func:`steer` along each feature's class-mean direction in turn, as one table.

    Parameters
    ----------
    model, stimuli, layer, scales, fit_split, eval_split, threshold, flat, batch_size
        As in :func:`steer`.
    features : sequence of str, optional
        The features to steer; default every feature of the stimulus set with a head.

    Returns
    -------
    xarray.Dataset
        The results of :func:`steer` stacked over a ``feature`` dim (the steered feature):
        ``flip_rate(feature, target_feature, scale)``, ``accuracy(target_feature)``,
        ``step_needed(feature)``, ``relative_norm(feature)`` and ``n_eval``. The diagonal
        of ``flip_rate`` is each feature's causal effect, the rest its side effects.

    Raises
    ------
    ValueError
        An empty or string ``features``, or as :func:`steer`.
    """
    if features is None:
        flat_ = isinstance(model, (MLP, Transformer)) if flat is None else bool(flat)
        names = _heads(model, _inputs(stimuli, np.arange(1), flat_, _device(model)),
                       _checked_stimuli(stimuli))
    elif isinstance(features, str) or not list(features):
        raise ValueError(f"features must be a non-empty list of names; got {features!r}")
    else:
        names = list(features)
    options = dict(stimuli=stimuli, layer=layer, scales=scales, fit_split=fit_split,
                   eval_split=eval_split, threshold=threshold, flat=flat,
                   batch_size=batch_size)
    results = [steer(model, feature=n, **options) for n in names]
    ds = xr.concat(results, dim="feature", data_vars="all", coords="minimal",
                   compat="override", join="exact")
    ds["accuracy"] = results[0]["accuracy"]
    ds["n_eval"] = results[0]["n_eval"]
    ds.attrs = result_attrs("steering_table", layer=layer, features=names,
                            scales=list(map(float, _checked_scales(scales))),
                            fit_split=fit_split, eval_split=eval_split, threshold=threshold,
                            flat=flat)
    return ds
