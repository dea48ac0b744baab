"""The memory a run's biggest arrays need, estimated from its config before anything runs.

Sizes a config can ask for (``task.n_train = 10**12``, ``model.width = 10**9``) parse and
validate as numbers but cannot fit in memory; :func:`check_memory` refuses them naming the
key that sets the biggest array, with the estimate and this machine's memory. The estimate
counts the arrays that dominate (inputs of every stimulus, weights with their gradients and
Adam moments, layer outputs of a training batch and of the snapshot stimuli, the stored
snapshots of every seed), not every temporary.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from rsa_bias.config._base import _fail

#: Bytes assumed where the machine's memory cannot be read (``os.sysconf`` missing).
FALLBACK_LIMIT = 64 * 2 ** 30
FLOAT32 = 4
INPUT_BYTES = 8  # binary inputs pass through float64 (``2.0 * bits - 1.0``) on their way


def memory_limit() -> int:
    """This machine's physical memory.

    Returns
    -------
    int
        Bytes: page size x physical pages (``os.sysconf``), :data:`FALLBACK_LIMIT` where
        they cannot be read.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_LIMIT
    return total if total > 0 else FALLBACK_LIMIT


def format_bytes(n: float) -> str:
    """A byte count for people.

    Parameters
    ----------
    n : float
        Bytes.

    Returns
    -------
    str
        E.g. ``"12.3 GiB"`` (B up to EiB; larger counts in EiB).

    Examples
    --------
    >>> format_bytes(16 * 2 ** 30), format_bytes(512)
    ('16.0 GiB', '512.0 B')
    """
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    power = min(int(math.log(max(n, 1), 1024)), len(units) - 1)
    return f"{n / 1024 ** power:.1f} {units[power]}"


@dataclass(frozen=True)
class Part:
    """One array of the estimate: what it is, the config key that sets its size, its bytes."""

    what: str
    key: str
    nbytes: int


@dataclass(frozen=True)
class Estimate:
    """The parts of a run's memory estimate."""

    parts: tuple[Part, ...]

    @property
    def total(self) -> int:
        return sum(p.nbytes for p in self.parts)

    @property
    def biggest(self) -> Part:
        return max(self.parts, key=lambda p: p.nbytes)


def _largest(factors: dict[str, int]) -> str:
    """The key of the biggest factor of a product (the one to lower)."""
    return max(factors, key=lambda k: factors[k])


def _split_factors(task, splits=("n_train", "val_size", "test_size")) -> dict[str, int]:
    sizes = {"n_train": task.train_size, "val_size": task.val_size, "test_size": task.test_size}
    return {f"task.{s}": sizes[s] for s in splits}


def input_size(task) -> tuple[int, str]:
    """The numbers per stimulus of a task.

    Parameters
    ----------
    task : TaskConfig
        The task.

    Returns
    -------
    tuple of (int, str)
        The count (input bits, or 3 x size x size pixel values) and the key that sets it.
    """
    if task.kind == "images":
        return 3 * task.images.size ** 2, "task.images.size"
    return task.n_bits, "task.n_distractor"


def stimulus_part(task) -> Part:
    """The memory of the inputs of every stimulus of a task.

    Parameters
    ----------
    task : TaskConfig
        A validated task.

    Returns
    -------
    Part
        What, the key that sets its size (the biggest split or the input size), bytes.
    """
    n = task.train_size + task.val_size + task.test_size
    dim, dim_key = input_size(task)
    key = _largest({**_split_factors(task), dim_key: dim})
    return Part(f"the inputs of the {n} stimuli ({dim} numbers each)", key,
                n * dim * INPUT_BYTES)


def _conv_layers(model, task) -> tuple[list[int], list[int], str]:
    """Per-stimulus output sizes (raw, recorded) of a CNN's or ResNet's layers and the key
    that sets the biggest (a ResNet stage counts its blocks' two convs each)."""
    c, size, arch = getattr(model, model.arch), task.images.size, model.arch
    per_layer = 2 * c.blocks if arch == "resnet" else 1
    raw = [per_layer * ch * (size // 2 ** i) ** 2 for i, ch in enumerate(c.channels)]
    recorded = raw if c.readout == "flatten" else list(c.channels)
    tail = [c.channels[-1], *c.fc_widths]
    key = _largest({f"model.{arch}.channels": max(c.channels), f"model.{arch}.fc_widths":
                    max(c.fc_widths, default=0), "task.images.size": size ** 2})
    return raw + tail, recorded + tail, key


def _n_params(model, task) -> tuple[int, str]:
    n_in, _ = input_size(task)
    heads = 3 * 8 if task.kind == "images" else len(task.features)
    if model.arch in ("cnn", "resnet"):
        c, arch = getattr(model, model.arch), model.arch
        sizes = [3, *c.channels]
        per_stage = 2 * c.blocks if arch == "resnet" else 1
        convs = sum(per_stage * a * b * c.kernel_size ** 2
                    for a, b in zip(sizes, sizes[1:], strict=False))
        widths = [c.channels[-1], *c.fc_widths, heads]
        fcs = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
        key = _largest({f"model.{arch}.channels": max(c.channels), f"model.{arch}.fc_widths":
                        max(c.fc_widths, default=0), f"model.{arch}.kernel_size":
                        c.kernel_size})
        return convs + fcs, key
    w = model.width
    if model.arch == "transformer":  # attention (4 w^2) and the MLP (2 ratio w^2) per block
        n = model.depth * (4 + 2 * model.transformer.mlp_ratio) * w * w + (n_in + 8) * w
        return n, "model.depth" if model.depth > w else "model.width"
    n = n_in * w + (model.depth - 1) * w * w + w * heads
    return n, "model.depth" if model.depth > w else "model.width"


def estimate_bytes(cfg) -> Estimate:
    """Estimate the memory of the biggest arrays of an experiment config.

    Parameters
    ----------
    cfg : ExperimentConfig
        A config whose sections have been validated.

    Returns
    -------
    Estimate
        Its parts (``what``, ``key``, ``nbytes``), ``total`` and ``biggest``.
    """
    task, model, training = cfg.task, cfg.model, cfg.training
    n_eval = task.val_size + task.test_size
    eval_key = "task.val_size" if task.val_size >= task.test_size else "task.test_size"
    if model.arch in ("cnn", "resnet"):
        raw, recorded, unit_key = _conv_layers(model, task)
    elif model.arch == "transformer":  # every position's stream, attention scores, the MLP
        seq = input_size(task)[0] + len(task.features)
        per_block = seq * model.width * (6 + model.transformer.mlp_ratio) + seq * seq * \
            model.transformer.n_heads
        raw, recorded = [per_block] * model.depth, [model.width] * model.depth
        unit_key = "model.depth" if model.depth > model.width else "model.width"
    else:
        raw = recorded = [model.width] * model.depth
        unit_key = "model.depth" if model.depth > model.width else "model.width"
    n_params, param_key = _n_params(model, task)
    n_seeds, n_snaps = len(cfg.seeds), len(training.all_snapshot_steps)
    units, raw_units = sum(recorded), sum(raw)
    stored_key = _largest({"seeds": n_seeds, "training.snapshot_steps": n_snaps,
                           eval_key: n_eval, unit_key: units})
    return Estimate((
        stimulus_part(task),
        # weights, their gradients and Adam's two moments
        Part(f"the {n_params} weights with gradients and optimiser state", param_key,
             4 * n_params * FLOAT32),
        # forward outputs, pre-activations and gradients of one batch
        Part(f"the layer outputs of a batch of {training.batch_size}",
             _largest({"training.batch_size": training.batch_size, unit_key: raw_units}),
             3 * training.batch_size * raw_units * FLOAT32),
        # recorded in chunks, then concatenated
        Part(f"the layer outputs of the {n_eval} snapshot stimuli",
             _largest({eval_key: n_eval, unit_key: raw_units}), 2 * n_eval * raw_units * FLOAT32),
        # every seed's snapshots, then their stacked copy
        Part(f"the stored activations ({n_seeds} seeds x {n_snaps} snapshots x {n_eval} "
             f"stimuli x {units} units)", stored_key,
             2 * n_seeds * n_snaps * n_eval * units * FLOAT32),
    ))


def _refuse(part: Part, nbytes: int, limit: int) -> None:
    together = (f" (the run's biggest arrays together about {format_bytes(nbytes)})"
                if nbytes > part.nbytes else "")
    _fail(part.key, f"{part.what} would need about {format_bytes(part.nbytes)}{together}, more "
          f"than this machine's {format_bytes(limit)} of memory; lower {part.key}")


def check_task_memory(task) -> None:
    """Refuse a (validated) task whose stimuli alone exceed :func:`memory_limit`.

    Parameters
    ----------
    task : TaskConfig
        The task.

    Returns
    -------
    None
    """
    part, limit = stimulus_part(task), memory_limit()
    if part.nbytes > limit:
        _refuse(part, part.nbytes, limit)


def check_memory(cfg) -> None:
    """Refuse a config whose biggest arrays (:func:`estimate_bytes`) exceed the memory.

    Parameters
    ----------
    cfg : ExperimentConfig
        A config whose sections have been validated.

    Returns
    -------
    None
    """
    estimate, limit = estimate_bytes(cfg), memory_limit()
    if estimate.total > limit:
        _refuse(estimate.biggest, estimate.total, limit)
