"""Binary multi-feature tasks: each feature reads its own disjoint block of input bits.

Splits are drawn *stratified* on the joint feature values: every split holds the
same number of inputs for each combination of feature values, so within every
split each feature is exactly balanced and all features are exactly independent
(their joint distribution is the product of the marginals). Inputs are distinct
across and within splits; when the input space cannot hold the requested splits
a :class:`ValueError` says so rather than leaking test inputs into training.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
import xarray as xr

from rsa_bias.config import ENUMERATE_MAX_BITS, FeatureSpec, TaskConfig

SPLITS = ("train", "val", "test")


def _linear(block: np.ndarray) -> np.ndarray:
    return block[:, 0].astype(np.int8)


def _threshold(block: np.ndarray) -> np.ndarray:
    return (block.sum(axis=1) * 2 > block.shape[1]).astype(np.int8)


def _parity(block: np.ndarray) -> np.ndarray:
    return (block.sum(axis=1) % 2).astype(np.int8)


_FEATURE_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": _linear,
    "threshold": _threshold,
    "parity": _parity,
}


def feature_function(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    """Return the function that maps a ``(n, k)`` 0/1 bit block to 0/1 feature values.

    ``"linear"`` reads the block's single bit, ``"threshold"`` is the majority of its bits
    (1 when more than half are 1) and ``"parity"`` their XOR.

    Parameters
    ----------
    kind : str
        The feature type: ``"linear"``, ``"threshold"`` or ``"parity"``.

    Returns
    -------
    callable
        ``f(block) -> values``: a ``(n, k)`` array of 0/1 bits to ``(n,)`` int8 0/1 values.

    Raises
    ------
    ValueError
        For an unknown ``kind``.

    Examples
    --------
    >>> bits = np.array([[0, 1, 1], [1, 1, 1]])
    >>> feature_function("parity")(bits), feature_function("threshold")(bits)
    (array([0, 1], dtype=int8), array([1, 1], dtype=int8))
    """
    try:
        return _FEATURE_FUNCTIONS[kind]
    except KeyError:
        raise ValueError(f"unknown feature type {kind!r}; valid: "
                         f"{sorted(_FEATURE_FUNCTIONS)}") from None


def _bits_of(codes: np.ndarray, n_bits: int) -> np.ndarray:
    """``(n,)`` integer codes -> ``(n, n_bits)`` 0/1 bits, bit 0 = most significant."""
    shifts = np.arange(n_bits - 1, -1, -1, dtype=np.int64)
    return ((codes[:, None] >> shifts) & 1).astype(np.int8)


def _codes_of(bits: np.ndarray) -> np.ndarray:
    weights = np.int64(1) << np.arange(bits.shape[1] - 1, -1, -1, dtype=np.int64)
    return bits.astype(np.int64) @ weights


def _blocks(features: tuple[FeatureSpec, ...]) -> list[slice]:
    starts = np.cumsum([0] + [f.k for f in features])
    return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]


def compute_features(bits: np.ndarray, features: tuple[FeatureSpec, ...]) -> np.ndarray:
    """``(n, n_bits)`` 0/1 bits -> ``(n, n_features)`` 0/1 feature values."""
    return np.stack([feature_function(f.type)(bits[:, blk])
                     for f, blk in zip(features, _blocks(features), strict=True)], axis=1)


def _cell_ids(values: np.ndarray) -> np.ndarray:
    return values.astype(np.int64) @ (np.int64(1) << np.arange(values.shape[1], dtype=np.int64))


def _split_sizes(cfg: TaskConfig) -> dict[str, int | None]:
    """Requested size per split (``None``: all remaining inputs); checked by the config."""
    return {"train": None if cfg.n_train == "all" else int(cfg.n_train),
            "val": cfg.val_size, "test": cfg.test_size}


def _draw_enumerated(cfg: TaskConfig, sizes: dict[str, int | None],
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Partition the full input space, cell by cell, into the splits."""
    codes = np.arange(2 ** cfg.n_bits, dtype=np.int64)
    cells = _cell_ids(compute_features(_bits_of(codes, cfg.n_bits), cfg.features))
    n_cells = 2 ** len(cfg.features)
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in range(n_cells):
        members = rng.permutation(codes[cells == c])
        start = 0
        for split in ("test", "val", "train"):
            n = sizes[split]
            take = len(members) - start if n is None else n // n_cells
            out[split].append(members[start:start + take])
            start += take
    return {s: np.concatenate(v) for s, v in out.items()}


def _draw_sampled(cfg: TaskConfig, sizes: dict[str, int | None],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rejection-sample distinct inputs per cell when the space is too large to list."""
    n_cells = 2 ** len(cfg.features)
    used: set[int] = set()
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    blocks = _blocks(cfg.features)
    # per feature, the bit patterns of its block giving value 0 and value 1
    by_value = []
    for f in cfg.features:
        all_blocks = _bits_of(np.arange(2 ** f.k, dtype=np.int64), f.k)
        values = feature_function(f.type)(all_blocks)
        by_value.append([all_blocks[values == v] for v in (0, 1)])
    for c in range(n_cells):
        patterns = [pats[(c >> i) & 1] for i, pats in enumerate(by_value)]
        for split in ("test", "val", "train"):
            need = sizes[split] // n_cells
            got: list[int] = []
            while len(got) < need:
                m = 2 * (need - len(got)) + 16
                bits = rng.integers(0, 2, size=(m, cfg.n_bits), dtype=np.int8)
                for pat, blk in zip(patterns, blocks, strict=True):
                    bits[:, blk] = pat[rng.integers(0, len(pat), size=m)]
                for code in _codes_of(bits).tolist():
                    if code not in used and len(got) < need:
                        used.add(code)
                        got.append(code)
            out[split].append(np.asarray(got, dtype=np.int64))
    return {s: np.concatenate(v) for s, v in out.items()}


def make_binary_task(cfg: TaskConfig | None = None) -> xr.Dataset:
    """Generate a binary multi-feature stimulus set.

    Parameters
    ----------
    cfg : TaskConfig, optional
        Features, distractor bits, coding (``"pm1"``: ±1, ``"01"``: 0/1), split
        sizes and the task seed. Defaults to one linear bit and a 4-bit parity.

    Returns
    -------
    xarray.Dataset
        ``inputs(stimulus, input)`` (float32, in the chosen coding); coords
        ``stimulus`` (the input's integer code, unique), ``split`` (train/val/test),
        one ``feature_<name>(stimulus)`` (0/1) per feature, ``input_role(input)``
        naming the feature each bit feeds (or ``"distractor"``);
        ``attrs["feature_names"]`` lists the features in order.

    Examples
    --------
    >>> from rsa_bias.config import TaskConfig
    >>> ds = make_binary_task(TaskConfig(n_distractor=3, val_size=64, test_size=64))
    >>> ds.sizes["input"], int((ds.split == "test").sum())
    (8, 64)
    """
    cfg = cfg or TaskConfig()
    cfg.validate()
    sizes = _split_sizes(cfg)
    rng = np.random.default_rng(cfg.seed)
    draw = _draw_enumerated if cfg.n_bits <= ENUMERATE_MAX_BITS else _draw_sampled
    codes_by_split = draw(cfg, sizes, rng)
    codes_all = np.concatenate([rng.permutation(codes_by_split[s]) for s in SPLITS])
    split = np.repeat(SPLITS, [len(codes_by_split[s]) for s in SPLITS])
    bits = _bits_of(codes_all, cfg.n_bits)
    values = compute_features(bits, cfg.features)
    inputs = bits.astype(np.float32) if cfg.coding == "01" else 2.0 * bits - 1.0
    roles = ["distractor"] * cfg.n_bits
    for f, blk in zip(cfg.features, _blocks(cfg.features), strict=True):
        roles[blk] = [f.name] * f.k
    names = [f.name for f in cfg.features]
    coords = {
        "stimulus": codes_all,
        "split": ("stimulus", split),
        "input_role": ("input", np.array(roles).astype(str)),
        **{f"feature_{n}": ("stimulus", values[:, i]) for i, n in enumerate(names)},
    }
    coords.update(_supervision(cfg, split))
    ds = xr.Dataset({"inputs": (("stimulus", "input"), inputs.astype(np.float32))},
                    coords=coords)
    ds.attrs.update(feature_names=names, coding=cfg.coding,
                    feature_start_steps=[f.start_step for f in cfg.features],
                    feature_types=[f.type for f in cfg.features],
                    task_json=json.dumps(dataclasses.asdict(cfg), sort_keys=True))
    return ds


def _supervision(cfg: TaskConfig, split: np.ndarray) -> dict:
    """``supervised_<name>(stimulus)`` coords of the features with ``prevalence < 1``: True
    on ``round(prevalence * n_train)`` training stimuli drawn with the task seed (and the
    feature's index), and on every val and test stimulus (evaluation sees all)."""
    out = {}
    train = np.flatnonzero(split == "train")
    for i, f in enumerate(cfg.features):
        if f.prevalence >= 1.0:
            continue
        rng = np.random.default_rng([cfg.seed, 1 + i])  # its own stream: the task is unchanged
        chosen = rng.choice(train, size=max(1, round(f.prevalence * len(train))),
                            replace=False)
        mask = split != "train"
        mask[chosen] = True
        out[f"supervised_{f.name}"] = ("stimulus", mask)
    return out


def supervision_matrix(ds: xr.Dataset) -> np.ndarray | None:
    """``(n_stimulus, n_features)`` float32 weights of each feature's loss on each stimulus:
    its ``supervised_<name>`` coord (see ``FeatureSpec.prevalence``), 1 where a feature has
    none; None when no feature has one (every loss counts everywhere)."""
    names = ds.attrs["feature_names"]
    if not any(f"supervised_{n}" in ds.coords for n in names):
        return None
    return np.stack([ds[f"supervised_{n}"].values if f"supervised_{n}" in ds.coords
                     else np.ones(ds.sizes["stimulus"], bool) for n in names],
                    axis=1).astype(np.float32)


def start_steps(ds: xr.Dataset) -> np.ndarray | None:
    """Each feature's first supervised training step (``FeatureSpec.start_step``); None when
    every feature is supervised from step 0 (no curriculum)."""
    steps = np.asarray(ds.attrs.get("feature_start_steps", []), dtype=np.int64)
    return steps if steps.size and steps.any() else None


def feature_matrix(ds: xr.Dataset) -> np.ndarray:
    """``(n_stimulus, n_features)`` 0/1 matrix of the dataset's features, in order."""
    return np.stack([ds[f"feature_{n}"].values for n in ds.attrs["feature_names"]], axis=1)
