"""Train one network on one task and seed, recording what the analyses need.

Binary features are learned with a logistic (binary cross-entropy) loss on one logit,
features with more values with a softmax cross-entropy loss; the per-feature losses are
summed. Conv feature maps are recorded as ``(stimulus, unit)`` snapshots through
the conv network's ``readout`` (global average per channel, or flattened).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from rsa_bias._api import legacy_call
from rsa_bias.config import ModelConfig, TrainingConfig
from rsa_bias.networks import build_model, spatial_readout
from rsa_bias.tasks.binary import feature_matrix, start_steps, supervision_matrix
from rsa_bias.tasks.images import n_classes
from rsa_bias.training.activations import capture
from rsa_bias.training.checkpoint import load_checkpoint, save_checkpoint

EVAL_SPLITS = ("val", "test")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name into a :class:`torch.device`; ``"auto"`` picks CUDA when present.

    Parameters
    ----------
    name : str, default "auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    torch.device
        The device.

    Raises
    ------
    ValueError
        For a CUDA device when CUDA is not available.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"training.device={name!r} but CUDA is not available; use 'auto'")
    return torch.device(name)


@dataclass
class TrainResult:
    """What one training run produced (returned by :func:`train`).

    Attributes
    ----------
    seed : int
        The seed of the run.
    model : torch.nn.Module
        The trained network, on the training device.
    eval_steps : list of int
        Steps at which the ``val`` and ``test`` splits were evaluated.
    history : dict
        ``history[split][metric][feature]`` lists values at ``eval_steps`` (split: ``val``
        or ``test``; metric: ``accuracy`` or ``loss``).
    snapshots : dict of int to dict of str to numpy.ndarray
        ``snapshots[step][layer]`` is a ``(n_snapshot_stimuli, n_units)`` array over the
        stimuli in ``snapshot_mask``, conv feature maps reduced by
        ``model_cfg.layer_readout``.
    """

    seed: int
    model: nn.Module
    eval_steps: list[int] = field(default_factory=list)
    history: dict = field(default_factory=dict)
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)


def _inputs(stimuli: xr.Dataset, mask: np.ndarray, flat: bool, device: torch.device):
    x = stimuli.inputs.values[mask]
    return torch.as_tensor(x.reshape(len(x), -1) if flat else x, device=device)


def _split_tensors(stimuli: xr.Dataset, features: np.ndarray, split: str,
                   device: torch.device, flat: bool):
    """Inputs and ``(n, feature)`` targets of one split; ``features``: the feature matrix."""
    mask = stimuli.split.values == split
    x = _inputs(stimuli, mask, flat, device)
    y = torch.as_tensor(features[mask], dtype=torch.float32, device=device)
    return x, y


def _batch_weights(w_train: torch.Tensor | None, idx: torch.Tensor,
                   starts: torch.Tensor | None, step: int) -> torch.Tensor | None:
    """Which example of the batch ``idx`` supervises which feature at ``step``: its
    prevalence mask (``w_train``) times the curriculum (a feature counts from its start
    step on); None when both are absent (every loss counts)."""
    w = None if w_train is None else w_train[idx]
    if starts is None:
        return w
    active = (starts <= step).to(torch.float32)
    return active.expand(*idx.shape, len(starts)) if w is None else w * active


def _starts(stimuli: xr.Dataset, device: torch.device) -> torch.Tensor | None:
    steps = start_steps(stimuli)
    return None if steps is None else torch.as_tensor(steps, device=device)


def _train_weights(stimuli: xr.Dataset, device: torch.device) -> torch.Tensor | None:
    """``(n_train, feature)`` supervision weights of the training split (None: all count)."""
    weights = supervision_matrix(stimuli)
    if weights is None:
        return None
    return torch.as_tensor(weights[stimuli.split.values == "train"], device=device)


def _make_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                fused=cfg.fused or None)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str],
            weights: torch.Tensor | None = None):
    """Predicted values ``(batch, feature)`` and the mean loss of each feature ``(feature,)``
    of ``model`` on ``x`` (see :func:`feature_losses`). A network that emits its outputs
    as a sequence (``teacher_forced``) is fed the true earlier outputs while training and
    its own predictions when evaluated."""
    if model.training and getattr(model, "teacher_forced", False):
        return feature_losses(model(x, targets=y), y, names, weights)
    return feature_losses(model(x), y, names, weights)


def feature_losses(out: dict[str, torch.Tensor], y: torch.Tensor, names: list[str],
                   weights: torch.Tensor | None = None):
    """Predicted values ``(..., batch, feature)`` and mean loss per feature ``(..., feature)``.

    ``out[name]`` holds a head's logits, ``(..., batch)`` for a binary head (BCE) and
    ``(..., batch, n_values)`` for a multi-class one (cross-entropy); ``y`` holds the value
    ids as floats, ``(..., batch, feature)``. Leading dims (an ensemble's members) are kept.
    ``weights`` (like ``y``, 0/1) says which examples supervise which feature (its
    ``prevalence``): a feature's loss counts on those examples and is 0 on the others, and
    the mean runs over the whole batch, so a feature supervised on a fraction p of the
    examples gets about p times the gradient of one supervised on all of them (as a masked
    loss in a training loop does).
    """
    def mean(loss: torch.Tensor, i: int) -> torch.Tensor:  # over the batch dim
        return (loss if weights is None else loss * weights[..., i]).mean(dim=-1)

    if all(out[n].ndim == y.ndim - 1 for n in names):  # all binary: one stacked BCE
        logits = torch.stack([out[n] for n in names], dim=-1)
        per_feature = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        if weights is not None:
            per_feature = per_feature * weights
        return (logits > 0).to(y.dtype), per_feature.mean(dim=-2)
    preds, losses = [], []
    for i, n in enumerate(names):
        logits, target = out[n], y[..., i]
        if logits.ndim == target.ndim:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target,
                                                                  reduction="none")
            losses.append(mean(loss, i))
            preds.append((logits > 0).to(y.dtype))
            continue
        if logits.ndim == 2 and weights is None:  # one network: the loss as it always was
            losses.append(nn.functional.cross_entropy(logits, target.long()))
        else:
            loss = nn.functional.cross_entropy(logits.flatten(0, -2), target.flatten().long(),
                                               reduction="none")
            losses.append(mean(loss.reshape(target.shape), i))
        preds.append(logits.argmax(dim=-1).to(y.dtype))
    return torch.stack(preds, dim=-1), torch.stack(losses, dim=-1)


@torch.no_grad()
def _evaluate(model, data, names, result: TrainResult, step: int) -> None:
    was_training = model.training
    model.eval()
    result.eval_steps.append(step)
    for split, (x, y) in data.items():
        pred, loss = _losses(model, x, y, names)
        acc = (pred == y).float().mean(dim=0)
        for i, n in enumerate(names):
            result.history[split]["accuracy"][n].append(float(acc[i]))
            result.history[split]["loss"][n].append(float(loss[i]))
    model.train(was_training)


@legacy_call(positional=("seed",))
def train(stimuli: xr.Dataset, model_cfg: ModelConfig, cfg: TrainingConfig, *, seed: int,
          snapshot_mask: np.ndarray | None = None, checkpoint: str | Path | None = None,
          config_json: str = "", progress: bool = True) -> TrainResult:
    """Train a network with one head per feature on the ``train`` split.

    Binary features are learned with a logistic (binary cross-entropy) loss on one logit,
    features with more values with a softmax cross-entropy loss; the per-feature losses are
    summed. Minibatches are drawn with replacement. The ``val`` and ``test`` splits are
    evaluated every ``cfg.eval_every`` steps and at the last step.

    Parameters
    ----------
    stimuli : xarray.Dataset with dims ("stimulus", ...)
        A stimulus set from :func:`rsa_bias.tasks.make_task` (binary or image task):
        ``inputs``, ``split`` and the ``feature_<name>`` coords of
        ``attrs["feature_names"]``, one head each.
    model_cfg : ModelConfig
        The architecture (``model_cfg.arch``: MLP, CNN, ResNet or Transformer;
        ``model_cfg.layer_readout`` reduces conv feature maps in the snapshots).
    cfg : TrainingConfig
        Optimisation settings and the schedule of evaluations, snapshots and checkpoints;
        ``cfg.device`` goes through :func:`resolve_device`.
    seed : int
        Seeds the initialisation, the batch order and dropout (required).
    snapshot_mask : numpy.ndarray, optional
        Boolean ``(n_stimulus,)``: the stimuli whose activations are recorded at
        ``cfg.all_snapshot_steps`` (default: val and test).
    checkpoint : str or pathlib.Path, optional
        When given, state is saved there every ``cfg.checkpoint_every`` steps and at the
        end, and an existing file is resumed from (loaded with ``weights_only=True``).
    config_json : str, default ""
        Recorded in the checkpoint; resuming from a checkpoint written with another
        ``config_json`` is refused (ValueError), rather than continuing a different
        experiment.
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    TrainResult
        The trained model, its learning curves and the activation snapshots.
    """
    cfg.validate()  # configs built in code skip load_config: refuse lr=inf etc. here too
    model_cfg.validate()
    device = resolve_device(cfg.device)
    heads = n_classes(stimuli)
    names = list(heads)
    if snapshot_mask is None:
        snapshot_mask = np.isin(stimuli.split.values, EVAL_SPLITS)
    flat = model_cfg.flat_inputs
    features = feature_matrix(stimuli)
    x_train, y_train = _split_tensors(stimuli, features, "train", device, flat)
    w_train, starts = _train_weights(stimuli, device), _starts(stimuli, device)
    data = {s: _split_tensors(stimuli, features, s, device, flat) for s in EVAL_SPLITS}
    x_snap = _inputs(stimuli, snapshot_mask, flat, device)

    torch.manual_seed(seed)
    model = build_model(stimuli.inputs.shape[1:], heads, model_cfg).to(device)
    optimizer = _make_optimizer(model, cfg)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    result = TrainResult(seed=seed, model=model, history={
        s: {m: {n: [] for n in names} for m in ("accuracy", "loss")} for s in EVAL_SPLITS})
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        start = _restore(load_checkpoint(checkpoint, config_json=config_json),
                         model, optimizer, gen, result)

    snap_steps = set(cfg.all_snapshot_steps)
    bar = tqdm(total=cfg.steps, initial=start, desc=f"seed {seed}", disable=not progress,
               leave=False, dynamic_ncols=True)
    model.train()
    for step in range(start, cfg.steps + 1):
        if step in snap_steps and step not in result.snapshots:
            result.snapshots[step] = _snapshot(model, x_snap, model_cfg.layer_readout)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            if not result.eval_steps or result.eval_steps[-1] != step:
                _evaluate(model, data, names, result, step)
                bar.set_postfix({n: f"{result.history['test']['accuracy'][n][-1]:.3f}"
                                 for n in names})
        if step == cfg.steps:
            break
        idx = torch.randint(len(x_train), (cfg.batch_size,), generator=gen).to(device)
        _, loss = _losses(model, x_train[idx], y_train[idx], names,
                          _batch_weights(w_train, idx, starts, step))
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        bar.update(1)
        done = step + 1
        if checkpoint is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            save_checkpoint(_state(model, optimizer, gen, result, done, config_json), checkpoint)
    bar.close()
    if checkpoint is not None:
        save_checkpoint(_state(model, optimizer, gen, result, cfg.steps, config_json), checkpoint)
    return result


def _snapshot(model: nn.Module, x: torch.Tensor, readout: str) -> dict[str, np.ndarray]:
    """Activations of every named layer, conv feature maps reduced to ``(stimulus, unit)``."""
    return {name: spatial_readout(arr, readout=readout)
            for name, arr in capture(model, x, model.layer_names).items()}


def _state(model, optimizer, gen, result: TrainResult, step: int, config_json: str) -> dict:
    return {
        "step": step,
        "config_json": config_json,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "eval_steps": list(result.eval_steps),
        "history_json": json.dumps(result.history),
        "snapshots": {str(s): {k: torch.from_numpy(v) for k, v in layers.items()}
                      for s, layers in result.snapshots.items()},
    }


def _restore(state: dict, model, optimizer, gen, result: TrainResult) -> int:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    result.eval_steps = list(state["eval_steps"])
    result.history = json.loads(state["history_json"])
    result.snapshots = {int(s): {k: v.numpy() for k, v in layers.items()}
                        for s, layers in state["snapshots"].items()}
    return int(state["step"])
