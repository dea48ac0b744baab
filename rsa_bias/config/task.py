"""The ``[task]`` section: binary feature tasks and Trifeature-like image tasks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rsa_bias.config._base import (
    CODINGS,
    COLOURS,
    ENUMERATE_MAX_BITS,
    FEATURE_TYPES,
    SHAPES,
    TASK_KINDS,
    TEXTURES,
    Section,
    _check_seed,
    _fail,
)
from rsa_bias.config.memory import check_task_memory


@dataclass(frozen=True)
class FeatureSpec(Section):
    """One task feature computed from its own block of ``k`` input bits.

    ``linear`` reads one bit (k must be 1); ``threshold`` is the balanced majority
    of k bits (k odd); ``parity`` is the XOR of k bits. ``prevalence`` is the fraction of
    the training examples on which the feature is supervised (its loss counted, 0 on the
    others, averaged over the whole batch): a fixed random subset drawn with the task seed;
    1.0 (the default) supervises it everywhere. ``start_step`` is the training step from
    which its loss counts (a curriculum: 0, the default, from the start; features with a
    later start are learned after the others have been trained alone).
    """

    name: str
    type: str = "linear"
    k: int = 1
    prevalence: float = 1.0
    start_step: int = 0

    def validate(self, key: str) -> None:
        self._check_finite(key)
        if self.start_step < 0:
            _fail(f"{key}.start_step", f"must be >= 0 (the step from which the feature's loss "
                  f"counts), got {self.start_step}")
        if not 0.0 < self.prevalence <= 1.0:
            _fail(f"{key}.prevalence", f"must be in (0, 1] (the fraction of training "
                  f"examples that supervise this feature), got {self.prevalence}")
        if not self.name.isidentifier():
            _fail(f"{key}.name", f"{self.name!r} must be a Python identifier (used in "
                  "coord names feature_<name>)")
        if self.type not in FEATURE_TYPES:
            _fail(f"{key}.type", f"unknown feature type {self.type!r}; valid: {FEATURE_TYPES}")
        if self.k < 1:
            _fail(f"{key}.k", f"must be >= 1, got {self.k}")
        if self.type == "linear" and self.k != 1:
            _fail(f"{key}.k", "a 'linear' feature reads a single bit; use k = 1 "
                  "(or type = 'threshold' for a linear threshold over several bits)")
        if self.type == "threshold" and self.k % 2 == 0:
            _fail(f"{key}.k", f"a balanced threshold (majority) needs an odd k, got {self.k}")
        if self.type == "parity" and self.k < 2:
            _fail(f"{key}.k", "parity needs k >= 2 (parity of one bit is the 'linear' type)")


@dataclass(frozen=True)
class ImageTaskConfig(Section):
    """Trifeature-like images: a textured, coloured shape on a grey background.

    ``n_colours``, ``n_shapes`` and ``n_textures`` take the first values of
    :data:`COLOURS`, :data:`SHAPES` and :data:`TEXTURES` (2 each gives the binary version).
    The shape's radius is ``shape_radius * size`` pixels; its centre moves by up to
    ``jitter`` pixels in x and y; ``noise`` is the standard deviation of Gaussian pixel noise
    (inputs lie in [-1, 1]).
    """

    size: int = 32
    n_colours: int = 3
    n_shapes: int = 3
    n_textures: int = 3
    shape_radius: float = 0.3
    jitter: int = 4
    noise: float = 0.0

    def validate(self, key: str = "task.images") -> None:
        self._check_finite(key)
        if self.size < 8:
            _fail(f"{key}.size", f"must be >= 8 pixels, got {self.size}")
        for name, values in (("n_colours", COLOURS), ("n_shapes", SHAPES),
                             ("n_textures", TEXTURES)):
            n = getattr(self, name)
            if not 2 <= n <= len(values):
                _fail(f"{key}.{name}", f"must be in [2, {len(values)}] (values: {values}), "
                      f"got {n}")
        if not 0.1 <= self.shape_radius <= 0.5:
            _fail(f"{key}.shape_radius", f"must be in [0.1, 0.5] (a fraction of the image "
                  f"size), got {self.shape_radius}")
        room = int(self.size * (0.5 - self.shape_radius))
        if not 0 <= self.jitter <= room:
            _fail(f"{key}.jitter", f"must be in [0, {room}] so the shape stays inside the "
                  f"{self.size}-pixel image (radius {self.shape_radius} x size), got "
                  f"{self.jitter}")
        if self.noise < 0:
            _fail(f"{key}.noise", f"must be >= 0, got {self.noise}")

    @property
    def n_values(self) -> tuple[int, int, int]:
        """Number of values of (colour, shape, texture)."""
        return (self.n_colours, self.n_shapes, self.n_textures)


@dataclass(frozen=True)
class TaskConfig(Section):
    """Multi-feature task.

    ``kind = "binary"``: binary features on disjoint bit blocks plus distractor bits.
    ``kind = "images"``: Trifeature-like images (colour, shape, texture) set by
    ``images``; ``features``, ``n_distractor`` and ``coding`` do not apply.
    """

    kind: str = "binary"
    features: tuple[FeatureSpec, ...] = (
        FeatureSpec("easy", "linear", 1),
        FeatureSpec("hard", "parity", 4),
    )
    n_distractor: int = 11
    coding: str = "pm1"
    n_train: int | str = "all"
    val_size: int = 2048
    test_size: int = 2048
    seed: int = 0
    images: ImageTaskConfig = field(default_factory=ImageTaskConfig)

    def validate(self) -> None:
        self._check_finite("task")
        if self.kind not in TASK_KINDS:
            _fail("task.kind", f"unknown task kind {self.kind!r}; valid: {TASK_KINDS}")
        _check_seed("task.seed", self.seed)
        if self.kind == "images":
            self._validate_images()
        else:
            self._validate_binary()
        check_task_memory(self)

    def _validate_binary(self) -> None:
        if self.images != ImageTaskConfig():
            _fail("task.images", "only used when task.kind = 'images'")
        if not self.features:
            _fail("task.features", "at least one feature is needed")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            _fail("task.features", f"feature names must be unique, got {names}")
        for i, f in enumerate(self.features):
            f.validate(f"task.features[{i}]")
        if self.n_distractor < 0:
            _fail("task.n_distractor", f"must be >= 0, got {self.n_distractor}")
        if self.coding not in CODINGS:
            _fail("task.coding", f"unknown coding {self.coding!r}; valid: {CODINGS}")
        if self.n_bits > 62:
            _fail("task.n_distractor", f"{self.n_bits} input bits; at most 62 are supported")
        if isinstance(self.n_train, str) and self.n_train != "all":
            _fail("task.n_train", f"must be a positive integer or 'all', got {self.n_train!r}")
        if isinstance(self.n_train, int) and self.n_train < 1:
            _fail("task.n_train", f"must be >= 1, got {self.n_train}")
        self._check_split_sizes()
        self._check_capacity()

    def _validate_images(self) -> None:
        defaults = TaskConfig()
        for key in ("features", "n_distractor", "coding"):
            if getattr(self, key) != getattr(defaults, key):
                _fail(f"task.{key}", "only used when task.kind = 'binary'; the features of "
                      "an image task are set in [task.images]")
        self.images.validate()
        if not isinstance(self.n_train, int) or self.n_train < 1:
            _fail("task.n_train", f"an image task needs a positive integer number of training "
                  f"images, got {self.n_train!r}")
        self._check_split_sizes()

    def _check_split_sizes(self) -> None:
        """``val_size``/``test_size`` >= 1 and every split a multiple of :attr:`n_cells`."""
        for key in ("val_size", "test_size"):
            if getattr(self, key) < 1:
                _fail(f"task.{key}", f"must be >= 1, got {getattr(self, key)}")
        n_cells = self.n_cells
        for key in ("n_train", "val_size", "test_size"):
            n = getattr(self, key)
            if isinstance(n, int) and n % n_cells:
                _fail(f"task.{key}", f"{n} must be a multiple of {n_cells} (the number of "
                      "feature-value combinations) so that every split is exactly balanced "
                      "and its features exactly independent")

    @property
    def n_cells(self) -> int:
        """Number of combinations of feature values."""
        if self.kind == "images":
            return math.prod(self.images.n_values)
        return 2 ** len(self.features)

    def _check_capacity(self) -> None:
        capacity = 2 ** self.n_bits
        held_out = self.val_size + self.test_size
        wanted = held_out + (self.n_train if isinstance(self.n_train, int) else 0)
        if held_out >= capacity or wanted > capacity:
            _fail("task.n_distractor", f"the input space holds only {capacity} distinct inputs "
                  f"({self.n_bits} bits) but the splits ask for {wanted} (n_train="
                  f"{self.n_train}, val_size={self.val_size}, test_size={self.test_size}); "
                  "inputs cannot be held out without leaking test inputs into training. Add "
                  "distractor bits (task.n_distractor) or shrink the splits")
        if self.n_train == "all" and self.n_bits > ENUMERATE_MAX_BITS:
            _fail("task.n_train", f"'all' needs an enumerable input space (<= "
                  f"{ENUMERATE_MAX_BITS} bits); with {self.n_bits} bits give an integer")

    @property
    def n_bits(self) -> int:
        return sum(f.k for f in self.features) + self.n_distractor

    @property
    def train_size(self) -> int:
        """Number of training stimuli: ``n_train``, or with ``"all"`` every input of the
        (enumerable) input space that is not held out."""
        if isinstance(self.n_train, int):
            return self.n_train
        return 2 ** self.n_bits - self.val_size - self.test_size
