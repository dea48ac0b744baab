"""Trifeature-like images (after Hermann & Lampinen 2020): colour, shape and texture.

Each image is one shape (circle, square, triangle, ...) filled with a texture (stripes,
dots, checker, ...) in a colour, on a mid-grey background. The three features are
statistically independent by construction: splits are drawn *stratified* on the joint
feature values, so every combination of (colour, shape, texture) appears equally often in
every split (as in :mod:`rsa_bias.tasks.binary`). Nuisance variation: the shape's centre
moves by up to ``jitter`` pixels (positions drawn without replacement within a combination
while the positions last: no two images of a combination share a position unless it has more
images than the ``(2 jitter + 1)²`` positions, and then every position is used once before
any is used again), the texture has a random phase, and optional Gaussian pixel noise is
added.

Rendering is numpy only: shapes and textures are evaluated on a 4x supersampled grid and
box-averaged, so edges are anti-aliased. A texture-"on" pixel has the full colour, an "off"
pixel the colour at 35% brightness, so colour and texture never coincide with the grey
background and a shape's outline is always visible.

Pixel values: ``inputs`` are ``2 * intensity - 1``, in [-1, 1] (the range that
:func:`rsa_bias.networks.cnn.prepare_images` gives photographs) when ``noise`` is 0. Pixel
noise is added afterwards and not clipped (so it stays Gaussian): with ``noise > 0`` values
leave [-1, 1] by a few ``noise`` standard deviations.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
import xarray as xr

from rsa_bias.config import COLOURS, SHAPES, TEXTURES, ImageTaskConfig, TaskConfig
from rsa_bias.tasks.binary import SPLITS, _split_sizes

FEATURES = ("colour", "shape", "texture")
BACKGROUND = 0.5
OFF_BRIGHTNESS = 0.35
SUPERSAMPLE = 4

RGB: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1), "green": (0.1, 0.75, 0.15), "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.9, 0.1), "magenta": (0.9, 0.15, 0.85), "cyan": (0.1, 0.85, 0.9),
    "orange": (1.0, 0.55, 0.0), "purple": (0.5, 0.1, 0.75),
}

# Shapes: boolean masks of coordinates (u, v) relative to the centre, in units of the radius
# (v points down the image).
_Mask = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    theta = np.arctan2(u, -v)  # one point straight up
    return np.hypot(u, v) <= 0.62 + 0.38 * np.cos(5 * theta)


SHAPE_MASKS: dict[str, _Mask] = {
    "circle": lambda u, v: u**2 + v**2 <= 1.0,
    "square": lambda u, v: np.maximum(abs(u), abs(v)) <= 0.82,
    "triangle": lambda u, v: (v <= 0.8) & (abs(u) <= 0.58 * (v + 1.0)),
    "cross": lambda u, v: ((abs(u) <= 0.33) & (abs(v) <= 0.95))
    | ((abs(v) <= 0.33) & (abs(u) <= 0.95)),
    "star": _star,
    "diamond": lambda u, v: abs(u) + abs(v) <= 1.05,
    "ring": lambda u, v: (u**2 + v**2 <= 1.0) & (u**2 + v**2 >= 0.45**2),
    # thin diagonal bands (half-width 0.2): thicker ones fill most of the square
    "x": lambda u, v: ((abs(u - v) <= 0.2) | (abs(u + v) <= 0.2)) & (np.maximum(abs(u), abs(v))
                                                                   <= 0.8),
}

# Textures: "on" (True) / "off" of pixel coordinates (x, y) relative to the centre, in units
# of the texture period, with phases (a, b) in [0, 1).
_Texture = Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]


def _frac(t: np.ndarray) -> np.ndarray:
    return t - np.floor(t)


def _dots(x: np.ndarray, y: np.ndarray, a: float, b: float) -> np.ndarray:
    return np.hypot(_frac(x + a) - 0.5, _frac(y + b) - 0.5) <= 0.3


TEXTURE_PATTERNS: dict[str, _Texture] = {
    "stripes_horizontal": lambda x, y, a, b: _frac(y + a) < 0.5,
    "dots": _dots,
    "checker": lambda x, y, a, b: (_frac(x + a) < 0.5) ^ (_frac(y + b) < 0.5),
    "stripes_vertical": lambda x, y, a, b: _frac(x + a) < 0.5,
    "stripes_diagonal": lambda x, y, a, b: _frac((x + y) / np.sqrt(2) + a) < 0.5,
    "grid": lambda x, y, a, b: (_frac(x + a) < 0.3) | (_frac(y + b) < 0.3),
    "solid": lambda x, y, a, b: np.ones(np.broadcast(x, y).shape, dtype=bool),
    "stripes_antidiagonal": lambda x, y, a, b: _frac((x - y) / np.sqrt(2) + a) < 0.5,
}

assert tuple(SHAPE_MASKS) == SHAPES and tuple(TEXTURE_PATTERNS) == TEXTURES
assert tuple(RGB) == COLOURS


def feature_values(cfg: ImageTaskConfig) -> dict[str, list[str]]:
    """Names of the values each feature takes under ``cfg``, in class-id order."""
    return {"colour": list(COLOURS[:cfg.n_colours]), "shape": list(SHAPES[:cfg.n_shapes]),
            "texture": list(TEXTURES[:cfg.n_textures])}


def _box_average(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape[0] // k, a.shape[1] // k
    return a.reshape(h, k, w, k).mean(axis=(1, 3))


def render(colour: str, shape: str, texture: str, *, size: int = 32, radius: float = 0.3,
           offset: tuple[float, float] = (0.0, 0.0),
           phase: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """One image ``(3, size, size)`` with intensities in [0, 1].

    Parameters
    ----------
    colour, shape, texture : value names (see :data:`RGB`, :data:`SHAPE_MASKS`,
        :data:`TEXTURE_PATTERNS`).
    radius : the shape's radius as a fraction of ``size``.
    offset : ``(dx, dy)`` pixels from the image centre.
    phase : texture phases in [0, 1) along x and y.
    """
    n = size * SUPERSAMPLE
    grid = (np.arange(n) + 0.5) / SUPERSAMPLE
    cx, cy = size / 2 + offset[0], size / 2 + offset[1]
    x, y = grid[None, :] - cx, grid[:, None] - cy
    r = radius * size
    inside = np.broadcast_to(SHAPE_MASKS[shape](x / r, y / r), (n, n))
    mask = _box_average(inside.astype(float), SUPERSAMPLE)
    period = max(size / 8.0, 3.0)
    on = np.broadcast_to(TEXTURE_PATTERNS[texture](x / period, y / period, *phase), (n, n))
    brightness = _box_average(np.where(on, 1.0, OFF_BRIGHTNESS), SUPERSAMPLE)
    rgb = np.asarray(RGB[colour])[:, None, None]
    return BACKGROUND + mask * (brightness * rgb - BACKGROUND)


def _cells(n_values: tuple[int, ...]) -> np.ndarray:
    """All combinations of feature values ``(n_cells, n_features)``, last feature fastest."""
    return np.stack(np.meshgrid(*[np.arange(k) for k in n_values], indexing="ij"),
                    axis=-1).reshape(-1, len(n_values))


def _positions(rng: np.random.Generator, n_positions: int, n: int) -> np.ndarray:
    """``n`` position indices, without replacement while the positions last: full shuffled
    rounds of all positions, then a draw without replacement for the rest."""
    if n <= n_positions:
        return rng.choice(n_positions, n, replace=False)
    rounds = [rng.permutation(n_positions) for _ in range(n // n_positions)]
    return np.concatenate([*rounds, rng.choice(n_positions, n % n_positions, replace=False)])


def _draw(cfg: TaskConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per stimulus: split, feature values, offsets and phases (before rendering)."""
    cells = _cells(cfg.images.n_values)
    sizes = _split_sizes(cfg)
    per_cell = [sizes[s] // len(cells) for s in SPLITS]
    j = cfg.images.jitter
    positions = np.stack(np.meshgrid(np.arange(-j, j + 1), np.arange(-j, j + 1),
                                     indexing="xy"), axis=-1).reshape(-1, 2)
    total = sum(per_cell)
    offset = np.concatenate([positions[_positions(rng, len(positions), total)]
                             for _ in cells])
    values = np.repeat(cells, total, axis=0)
    split = np.tile(np.repeat(SPLITS, per_cell), len(cells))
    order = np.concatenate([rng.permutation(np.flatnonzero(split == s)) for s in SPLITS])
    phase = rng.random((len(order), 2))
    return {"values": values[order], "offset": offset[order], "split": split[order],
            "phase": phase}


def make_image_task(cfg: TaskConfig | None = None) -> xr.Dataset:
    """Generate a Trifeature-like image set (colour x shape x texture).

    Parameters
    ----------
    cfg : TaskConfig, optional
        A task with ``kind = "images"``; its ``images`` table sets the image size, the
        number of values of each feature, the shape size, position jitter and pixel noise;
        ``n_train``, ``val_size`` and ``test_size`` (multiples of the number of
        combinations) the splits; ``seed`` everything random. Default (``None``): 3 values
        per feature, 32x32 pixels, 27 images per combination for training and 2 for
        val/test.

    Returns
    -------
    xarray.Dataset
        ``inputs(stimulus, channel, y, x)`` float32, in [-1, 1] without pixel noise
        (noise is added unclipped); coords ``stimulus``
        (integer id), ``split`` (train/val/test), ``feature_colour``, ``feature_shape``,
        ``feature_texture`` (integer class ids; each coord's ``attrs["values"]`` names
        them), ``offset_x``/``offset_y`` (pixels) and ``texture_phase_x``/``_y``;
        attrs ``feature_names``, ``feature_n_values``, ``pixel_range`` and ``task_json``.

    Raises
    ------
    ValueError
        When ``cfg.kind`` is not ``"images"`` or the config is invalid.

    Examples
    --------
    >>> from rsa_bias.config import TaskConfig
    >>> ds = make_image_task(TaskConfig(kind="images", n_train=54, val_size=27, test_size=27))
    >>> ds.inputs.shape, ds.feature_colour.attrs["values"]
    ((108, 3, 32, 32), ['red', 'green', 'blue'])
    """
    cfg = cfg or TaskConfig(kind="images", n_train=729, val_size=54, test_size=54)
    if cfg.kind != "images":
        raise ValueError(f"make_image_task needs task.kind = 'images', got {cfg.kind!r}")
    cfg.validate()
    icfg = cfg.images
    rng = np.random.default_rng(cfg.seed)
    drawn = _draw(cfg, rng)
    names = feature_values(icfg)
    inputs = np.empty((len(drawn["split"]), 3, icfg.size, icfg.size), dtype=np.float32)
    for i, (vals, off, ph) in enumerate(zip(drawn["values"], drawn["offset"], drawn["phase"],
                                            strict=True)):
        img = render(*(names[f][v] for f, v in zip(FEATURES, vals, strict=True)),
                     size=icfg.size, radius=icfg.shape_radius, offset=tuple(off),
                     phase=tuple(ph))
        inputs[i] = 2.0 * img - 1.0
    if icfg.noise > 0:
        inputs += rng.normal(0.0, icfg.noise, size=inputs.shape).astype(np.float32)
    return _dataset(inputs, drawn, names, cfg)


def _dataset(inputs: np.ndarray, drawn: dict[str, np.ndarray], names: dict[str, list[str]],
             cfg: TaskConfig) -> xr.Dataset:
    size = inputs.shape[-1]
    coords = {
        "stimulus": np.arange(len(inputs)),
        "split": ("stimulus", drawn["split"].astype(str)),
        "channel": ["R", "G", "B"], "y": np.arange(size), "x": np.arange(size),
        **{f"feature_{f}": ("stimulus", drawn["values"][:, i].astype(np.int8),
                            {"values": names[f]}) for i, f in enumerate(FEATURES)},
        "offset_x": ("stimulus", drawn["offset"][:, 0]),
        "offset_y": ("stimulus", drawn["offset"][:, 1]),
        "texture_phase_x": ("stimulus", drawn["phase"][:, 0]),
        "texture_phase_y": ("stimulus", drawn["phase"][:, 1]),
    }
    ds = xr.Dataset({"inputs": (("stimulus", "channel", "y", "x"), inputs)}, coords=coords)
    ds.attrs.update(feature_names=list(FEATURES),
                    feature_n_values=[len(names[f]) for f in FEATURES],
                    pixel_range="[-1, 1] = 2 * intensity - 1; background 0"
                    + (f"; plus unclipped Gaussian pixel noise, sd {cfg.images.noise}"
                       if cfg.images.noise > 0 else ""),
                    task_json=json.dumps(dataclasses.asdict(cfg), sort_keys=True))
    return ds


def to_uint8(inputs: np.ndarray) -> np.ndarray:
    """``(n, 3, y, x)`` inputs in [-1, 1] -> ``(n, y, x, 3)`` uint8 images (for display)."""
    img = np.clip((np.asarray(inputs) + 1.0) / 2.0, 0.0, 1.0)
    return np.round(np.moveaxis(img, -3, -1) * 255).astype(np.uint8)


def n_classes(stimuli: xr.Dataset) -> dict[str, int]:
    """Count the values of each feature of a stimulus set (2 for binary features).

    A feature coord's ``attrs["values"]`` (set by :func:`make_image_task`) names its values;
    a coord without it is taken as binary.

    Parameters
    ----------
    stimuli : xarray.Dataset
        A stimulus set with ``feature_<name>`` coords and ``attrs["feature_names"]`` (a
        list, or a single name as netCDF reads back a one-element list).

    Returns
    -------
    dict of str to int
        ``{feature: number of values}``, in the order of ``attrs["feature_names"]``.

    Examples
    --------
    >>> from rsa_bias.config import TaskConfig
    >>> from rsa_bias.tasks import make_binary_task
    >>> n_classes(make_binary_task(TaskConfig(n_distractor=3, val_size=64, test_size=64)))
    {'easy': 2, 'hard': 2}
    """
    names = stimuli.attrs["feature_names"]
    names = [names] if isinstance(names, str) else list(names)
    return {n: len(stimuli[f"feature_{n}"].attrs.get("values", (0, 1))) for n in names}
