"""Train many same-shaped networks at once, as one stacked computation.

The members of an ensemble share the architecture, the task and the schedule (steps, batch
size, evaluations, snapshots) and may differ in their seed and in the values of
:data:`VALUE_FIELDS` (learning rate, weight decay, momentum, dropout, initialisation). Each
member keeps what it would have alone (:func:`rsa_bias.training.train`): its initialisation
(built with its seed, as the sequential loop builds it), its own minibatch order (a
generator seeded with its seed, drawing the same indices), its own optimiser state and
settings, and its own dropout masks. The forward and backward passes of all members run as
batched matrix products and grouped convolutions (:mod:`rsa_bias.networks.stacked`).

The results are those of sequential runs up to float32 rounding. On the CPU, the MLP's
batched products call the BLAS kernel a single network's products call (its one-logit heads
are computed as ``nn.Linear`` computes them) and the optimiser is PyTorch's default one, so
at the shipped sizes (hidden widths that are multiples of 16, measured on this project's
2-core CPU) an ensemble reproduces one run after another to the bit. Where a batched product
sums in another order (other widths, which the BLAS library blocks differently; the CNN's
grouped convolutions; CUDA), members differ from sequential runs in the last bits, and
training amplifies such differences step by step: after a few thousand steps a seed's R²
can move by several hundredths, as it does between two CPU types. Compare ensembles of seeds
by their means and intervals, not seed by seed.

Dropout is the exception: a member draws its masks from its own generator (seeded with its
seed), so it gets the same masks in any ensemble, but not the masks :func:`train` draws from
torch's global generator; with dropout an ensemble's members are seeds of their own, not
copies of sequential runs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from rsa_bias.config import ModelConfig, TrainingConfig
from rsa_bias.networks import build_model, spatial_readout
from rsa_bias.networks.stacked import StackedNetwork, has_stacked, stack_models
from rsa_bias.tasks.binary import feature_matrix
from rsa_bias.tasks.images import n_classes
from rsa_bias.training.checkpoint import load_checkpoint, save_checkpoint
from rsa_bias.training.loop import (
    EVAL_SPLITS,
    TrainResult,
    _batch_weights,
    _inputs,
    _split_tensors,
    _starts,
    _train_weights,
    feature_losses,
    resolve_device,
    train,
)
from rsa_bias.training.stacked_optim import StackedOptimizer

#: Config values in which the members of one ensemble may differ (besides the seed).
VALUE_FIELDS = {"model": ("dropout", "init_scale", "init"),
                "training": ("lr", "weight_decay", "momentum")}

#: Stimuli per forward pass at evaluations and snapshots (bounds the memory of wide CNNs).
EVAL_CHUNK = 512


@dataclass(frozen=True)
class Member:
    """One member of an ensemble: its architecture, its training settings and its seed.

    Parameters
    ----------
    model : ModelConfig
        Its network (members share it up to the values of ``VALUE_FIELDS["model"]``).
    training : TrainingConfig
        Its optimisation (shared up to the values of ``VALUE_FIELDS["training"]``).
    seed : int
        Seeds its initialisation, its minibatch order and its dropout masks.
    """

    model: ModelConfig
    training: TrainingConfig
    seed: int


def seed_members(model_cfg: ModelConfig, cfg: TrainingConfig,
                 seeds: Sequence[int]) -> list[Member]:
    """The members of a seeds-only ensemble: one per seed, same configs.

    Parameters
    ----------
    model_cfg : ModelConfig
        The network of every member.
    cfg : TrainingConfig
        The training of every member.
    seeds : sequence of int
        One member per seed, in this order.

    Returns
    -------
    list of Member
        The members.

    Examples
    --------
    >>> [m.seed for m in seed_members(ModelConfig(), TrainingConfig(), [3, 4])]
    [3, 4]
    """
    return [Member(model_cfg, cfg, int(s)) for s in seeds]


def ensemble_key(model_cfg: ModelConfig, cfg: TrainingConfig) -> tuple:
    """What members of one ensemble must share: the configs with :data:`VALUE_FIELDS` reset.

    Parameters
    ----------
    model_cfg : ModelConfig
        A run's network.
    cfg : TrainingConfig
        Its training.

    Returns
    -------
    tuple of (ModelConfig, TrainingConfig)
        The two configs with every field of :data:`VALUE_FIELDS` at its default; two runs
        whose keys are equal can train as one ensemble.
    """
    model_defaults, training_defaults = ModelConfig(), TrainingConfig()
    model = dataclasses.replace(model_cfg, **{f: getattr(model_defaults, f)
                                              for f in VALUE_FIELDS["model"]})
    training = dataclasses.replace(cfg, **{f: getattr(training_defaults, f)
                                           for f in VALUE_FIELDS["training"]})
    return model, training


def _check_members(members: Sequence[Member]) -> None:
    if not members:
        raise ValueError("an ensemble needs at least one member")
    for m in members:
        m.model.validate()
        m.training.validate()
    key = ensemble_key(members[0].model, members[0].training)
    for i, m in enumerate(members):
        other = ensemble_key(m.model, m.training)
        if other != key:
            diff = [f"{section}.{f.name}"
                    for section, a, b in (("model", key[0], other[0]),
                                          ("training", key[1], other[1]))
                    for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
            raise ValueError(f"member {i} differs from member 0 in {diff}; members of one "
                             f"ensemble may differ only in the seed and in {VALUE_FIELDS}")


def train_ensemble(stimuli: xr.Dataset, members: Sequence[Member], *,
                   snapshot_mask: np.ndarray | None = None,
                   checkpoint: str | Path | None = None, config_json: str = "",
                   progress: bool = True) -> list[TrainResult]:
    """Train every member on the ``train`` split at once; what :func:`train` gives each alone.

    Parameters
    ----------
    stimuli : xarray.Dataset with dims ("stimulus", ...)
        The stimulus set, as for :func:`rsa_bias.training.train`.
    members : sequence of Member
        The members (see :func:`seed_members`); they must agree on everything but the seed
        and :data:`VALUE_FIELDS` (ValueError naming the field otherwise), and on the device.
    snapshot_mask : numpy.ndarray, optional
        Boolean ``(n_stimulus,)``: stimuli whose activations are recorded (default: val and
        test).
    checkpoint : str or pathlib.Path, optional
        One file for the whole ensemble, written every ``checkpoint_every`` steps and at the
        end, and resumed from when it exists (refused when written for another
        ``config_json`` or other members).
    config_json : str, default ""
        Recorded in the checkpoint.
    progress : bool, default True
        Show one progress bar for the ensemble.

    Returns
    -------
    list of TrainResult
        One per member, in the order of ``members``, each with its own trained network
        (an ordinary :class:`~rsa_bias.networks.MLP`, :class:`~rsa_bias.networks.CNN`,
        ...), learning curves and snapshots. An architecture without a batched version
        (see :func:`~rsa_bias.networks.stacked.has_stacked`) trains its members one after
        another with :func:`~rsa_bias.training.train` instead, each with a checkpoint of
        its own beside ``checkpoint``.
    """
    _check_members(members)
    cfg = members[0].training
    device = resolve_device(cfg.device)
    heads = n_classes(stimuli)
    names = list(heads)
    if snapshot_mask is None:
        snapshot_mask = np.isin(stimuli.split.values, EVAL_SPLITS)
    flat = members[0].model.flat_inputs
    features = feature_matrix(stimuli)
    x_train, y_train = _split_tensors(stimuli, features, "train", device, flat)
    w_train, starts = _train_weights(stimuli, device), _starts(stimuli, device)
    data = {s: _split_tensors(stimuli, features, s, device, flat) for s in EVAL_SPLITS}
    x_snap = _inputs(stimuli, snapshot_mask, flat, device)

    models = []
    for m in members:
        torch.manual_seed(m.seed)  # as train() builds it: the same initialisation
        models.append(build_model(stimuli.inputs.shape[1:], heads, m.model).to(device))
    if not has_stacked(models[0]):
        return _one_by_one(stimuli, members, snapshot_mask, checkpoint, config_json, progress)
    gens = [torch.Generator(device="cpu").manual_seed(m.seed) for m in members]
    drop_gens = [torch.Generator(device=device).manual_seed(m.seed) for m in members]
    net = stack_models(models, dropout=[m.model.dropout for m in members],
                       generators=drop_gens)
    optimizer = StackedOptimizer(list(net.parameters()), [m.training for m in members])
    results = [TrainResult(seed=m.seed, model=model, history={
        s: {k: {n: [] for n in names} for k in ("accuracy", "loss")} for s in EVAL_SPLITS})
        for m, model in zip(members, models, strict=True)]
    seeds = [m.seed for m in members]
    members_json = json.dumps([dataclasses.asdict(m) for m in members], sort_keys=True)
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        start = _restore(load_checkpoint(checkpoint, config_json=config_json), net, optimizer,
                         gens, drop_gens, results, seeds, members_json, checkpoint)

    snap_steps = set(cfg.all_snapshot_steps)
    bar = tqdm(total=cfg.steps, initial=start, desc=f"{len(members)} models",
               disable=not progress, leave=False, dynamic_ncols=True)
    net.train()
    for step in range(start, cfg.steps + 1):
        if step in snap_steps and step not in results[0].snapshots:
            _snapshot(net, x_snap, members[0].model.layer_readout, results, step)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            if not results[0].eval_steps or results[0].eval_steps[-1] != step:
                _evaluate(net, data, names, results, step)
                bar.set_postfix({f"min {n}": f"{_lowest(results, n):.3f}" for n in names})
        if step == cfg.steps:
            break
        idx = torch.stack([torch.randint(len(x_train), (cfg.batch_size,), generator=g)
                           for g in gens]).to(device)
        _, loss = feature_losses(net(x_train[idx]), y_train[idx], names,
                                 _batch_weights(w_train, idx, starts, step))
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        bar.update(1)
        done = step + 1
        if checkpoint is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            save_checkpoint(_state(net, optimizer, gens, drop_gens, results, seeds,
                                   members_json, done, config_json), checkpoint)
    bar.close()
    if checkpoint is not None:
        save_checkpoint(_state(net, optimizer, gens, drop_gens, results, seeds, members_json,
                               cfg.steps, config_json), checkpoint)
    for i, model in enumerate(models):
        model.load_state_dict(net.member_state_dict(i))
    return results


def _one_by_one(stimuli, members, snapshot_mask, checkpoint, config_json,
                progress) -> list[TrainResult]:
    """Members of an architecture without a batched version (the Transformer), trained one
    after another by :func:`train`, each with its own checkpoint beside ``checkpoint``."""
    results = []
    for i, m in enumerate(members):
        path = None if checkpoint is None else \
            Path(checkpoint).with_name(f"{Path(checkpoint).stem}_member_{i}_seed_{m.seed}.pt")
        if progress:
            print(f"[{i + 1}/{len(members)}] training seed {m.seed} ({m.model.arch}: no "
                  "batched version, one after another)", flush=True)
        results.append(train(stimuli, m.model, m.training, seed=m.seed,
                             snapshot_mask=snapshot_mask, checkpoint=path,
                             config_json=config_json, progress=progress))
    return results


def _lowest(results: list[TrainResult], name: str) -> float:
    """The lowest latest test accuracy of feature ``name`` over the members."""
    return min(r.history["test"]["accuracy"][name][-1] for r in results)


def _chunks(x: torch.Tensor):
    for start in range(0, len(x), EVAL_CHUNK):
        yield x[start:start + EVAL_CHUNK]


@torch.no_grad()
def _evaluate(net: StackedNetwork, data: dict, names: list[str],
              results: list[TrainResult], step: int) -> None:
    was_training = net.training
    net.eval()
    k = net.n_members
    for split, (x, y) in data.items():
        parts = [net(chunk, shared=True) for chunk in _chunks(x)]
        out = {n: torch.cat([p[n] for p in parts], dim=1) for n in names}
        y_all = y.expand(k, *y.shape)
        pred, loss = feature_losses(out, y_all, names)
        acc = (pred == y_all).float().mean(dim=-2).cpu().numpy()
        loss = loss.cpu().numpy()
        for i, r in enumerate(results):
            for j, n in enumerate(names):
                r.history[split]["accuracy"][n].append(float(acc[i, j]))
                r.history[split]["loss"][n].append(float(loss[i, j]))
    for r in results:
        r.eval_steps.append(step)
    net.train(was_training)


@torch.no_grad()
def _snapshot(net: StackedNetwork, x: torch.Tensor, readout: str,
              results: list[TrainResult], step: int) -> None:
    """Every member's named layers on ``x``, conv maps reduced by ``readout``."""
    was_training = net.training
    net.eval()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in net.layer_names}
    for chunk in _chunks(x):
        _, seen = net.forward_layers(chunk, shared=True)
        for name in net.layer_names:
            arr = seen[name].cpu().numpy()
            parts[name].append(np.stack([spatial_readout(a, readout=readout) for a in arr]))
    for i, r in enumerate(results):
        r.snapshots[step] = {name: np.concatenate([p[i] for p in chunks])
                             for name, chunks in parts.items()}
    net.train(was_training)


def _state(net, optimizer, gens, drop_gens, results, seeds, members_json, step,
           config_json) -> dict:
    return {
        "step": step, "config_json": config_json, "seeds": list(seeds),
        "members_json": members_json,
        "net": net.state_dict(), "optimizer": optimizer.state_dict(),
        "generators": [g.get_state() for g in gens],
        "dropout_generators": [g.get_state().cpu() for g in drop_gens],
        "eval_steps": list(results[0].eval_steps),
        "history_json": json.dumps([r.history for r in results]),
        "snapshots": {str(s): {name: torch.from_numpy(np.stack([r.snapshots[s][name]
                                                                for r in results]))
                               for name in results[0].snapshots[s]}
                      for s in results[0].snapshots},
    }


def _restore(state, net, optimizer, gens, drop_gens, results, seeds, members_json,
             path) -> int:
    if state.get("seeds") != list(seeds):
        raise ValueError(f"checkpoint {path} holds an ensemble of seeds {state.get('seeds')}, "
                         f"not {list(seeds)}; delete it or run the members that wrote it")
    if state.get("members_json") != members_json:
        raise ValueError(f"checkpoint {path} was written by members with other settings "
                         "(config values per member); delete it or run the members that wrote it")
    net.load_state_dict(state["net"])
    optimizer.load_state_dict(state["optimizer"])
    for g, s in zip(gens, state["generators"], strict=True):
        g.set_state(s)
    for g, s in zip(drop_gens, state["dropout_generators"], strict=True):
        g.set_state(s)
    histories = json.loads(state["history_json"])
    for i, r in enumerate(results):
        r.eval_steps = list(state["eval_steps"])
        r.history = histories[i]
        r.snapshots = {int(s): {k: v[i].numpy() for k, v in layers.items()}
                       for s, layers in state["snapshots"].items()}
    return int(state["step"])
