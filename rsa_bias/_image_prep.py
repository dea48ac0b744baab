"""How 8-bit images become network input: the geometry (stretch, or resize and centre-crop)
and the per-channel normalisation, shared by the file reader (Pillow, ``store``) and the
in-memory path (torch, ``networks``). No torch and no Pillow here.

:class:`ImagePrep` is the setting; :data:`IMAGE_PREPS` the named presets; :func:`crop_geometry`
the resize-then-centre-crop box, with torchvision's rounding (``Resize(int)`` keeps the aspect
ratio, truncating the longer side; ``CenterCrop`` rounds the offsets half to even).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The smallest ``crop_fraction`` accepted (smaller ones would resize a 224-pixel crop's
#: shorter side beyond 4480 pixels).
MIN_CROP_FRACTION = 0.05

#: ImageNet channel statistics (torchvision's and timm's defaults), RGB, on pixels / 255.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _triple(value, name: str, *, positive: bool) -> tuple[float, float, float]:
    if isinstance(value, str):
        raise ValueError(f"{name} must be three numbers (R, G, B), got the string {value!r}")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers (R, G, B), got {value!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be three finite numbers (R, G, B), got {value!r}")
    if positive and min(out) <= 0:
        raise ValueError(f"{name} must be positive (it divides), got {out}")
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class ImagePrep:
    """How uint8 RGB images become float network input of ``size`` x ``size`` pixels.

    Parameters
    ----------
    crop_fraction : float, optional
        ``None`` (default): stretch every image to the square, whatever its aspect ratio. A
        number in [0.05, 1]: resize the shorter side to ``floor(size / crop_fraction)``
        (timm's rule) keeping the aspect ratio, then cut the centre ``size`` x ``size``
        square, as torchvision's ``Resize(256)`` + ``CenterCrop(224)`` does with 0.875 (1.0
        keeps the whole shorter side).
    resize_to : int, optional
        The shorter side before the crop in pixels, for a model whose transform names it
        (Inception v3: ``Resize(342)`` + ``CenterCrop(299)``); in place of ``crop_fraction``
        (give one of them), at least the crop's side.
    mean, std : three floats, default (0.5, 0.5, 0.5)
        Input = ``(pixel / 255 - mean) / std`` per RGB channel. The default maps pixels to
        [-1, 1], the range of the synthetic image tasks; :data:`IMAGENET_MEAN` and
        :data:`IMAGENET_STD` are what torchvision's pretrained weights expect.
    upright : bool, default False
        Turn image files upright by their EXIF orientation tag (as phone cameras write it)
        before anything else. Off by default: torchvision's image loader and PsychoPy's
        image stimuli use the pixels as stored, so a tagged photo was shown, and is read,
        as stored (reading a folder warns when any image carries such a tag). In-memory
        arrays have no tag.

    Examples
    --------
    >>> ImagePrep.named("imagenet").crop_fraction
    0.875
    >>> ImagePrep(crop_fraction=1.0).shorter_side(224)
    224
    """

    crop_fraction: float | None = None
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    resize_to: int | None = None
    upright: bool = False

    def __post_init__(self) -> None:
        if self.crop_fraction is not None:
            f = float(self.crop_fraction)
            if not (MIN_CROP_FRACTION <= f <= 1):
                raise ValueError(f"crop_fraction must be in [{MIN_CROP_FRACTION}, 1] (the share "
                                 f"of the resized shorter side kept; 0.875 for ImageNet "
                                 f"weights), got {self.crop_fraction!r}; None stretches "
                                 "instead")
            object.__setattr__(self, "crop_fraction", f)
        if self.resize_to is not None:
            if self.crop_fraction is not None:
                raise ValueError("give crop_fraction or resize_to (the shorter side before "
                                 "the crop), not both")
            if isinstance(self.resize_to, bool) or int(self.resize_to) != self.resize_to \
                    or self.resize_to < 1:
                raise ValueError(f"resize_to must be a positive number of pixels, got "
                                 f"{self.resize_to!r}")
            object.__setattr__(self, "resize_to", int(self.resize_to))
        object.__setattr__(self, "mean", _triple(self.mean, "mean", positive=False))
        object.__setattr__(self, "std", _triple(self.std, "std", positive=True))
        object.__setattr__(self, "upright", bool(self.upright))

    @classmethod
    def named(cls, name: str | ImagePrep | None) -> ImagePrep:
        """The preset ``name`` of :data:`IMAGE_PREPS` (an ImagePrep is returned as it is,
        ``None`` gives the default)."""
        if name is None:
            return cls()
        if isinstance(name, ImagePrep):
            return name
        try:
            return IMAGE_PREPS[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown image_prep {name!r}; valid: {sorted(IMAGE_PREPS)} or "
                             "an ImagePrep(crop_fraction=, mean=, std=)") from None

    @property
    def crops(self) -> bool:
        """Whether images are resized keeping their aspect ratio and centre-cropped."""
        return self.crop_fraction is not None or self.resize_to is not None

    @property
    def is_unit(self) -> bool:
        """Whether the normalisation is the default 2 * pixel / 255 - 1."""
        return self.mean == (0.5, 0.5, 0.5) and self.std == (0.5, 0.5, 0.5)

    def check_size(self, size: int | None) -> None:
        """Refuse a centre crop without the crop's side (stretching may keep the size)."""
        if self.crops and size is None:
            raise ValueError("a centre crop needs the crop's side; pass image_size= (size= to "
                             "prepare_images and read_images; the CLI's --image-size), e.g. "
                             "224 for ImageNet weights")

    def shorter_side(self, size: int) -> int:
        """The side the shorter edge is resized to before the crop (``size`` when
        stretching)."""
        if self.resize_to is not None:
            if self.resize_to < size:
                raise ValueError(f"resize_to={self.resize_to} is smaller than the crop's side "
                                 f"{size}; the shorter side must be at least the crop")
            return self.resize_to
        if self.crop_fraction is None:
            return int(size)
        return max(int(size), math.floor(int(size) / self.crop_fraction))

    def without_geometry(self) -> ImagePrep:
        """The same normalisation with neither crop nor rotation (for images a reader has
        already fitted to the square)."""
        return ImagePrep(mean=self.mean, std=self.std)

    def to_dict(self) -> dict:
        """JSON-ready fields, for provenance."""
        return {"crop_fraction": self.crop_fraction, "resize_to": self.resize_to,
                "mean": list(self.mean), "std": list(self.std), "upright": self.upright}


#: Named settings: ``"unit"`` stretches and maps pixels to [-1, 1] (the default, as the
#: synthetic tasks); ``"imagenet"`` is torchvision's evaluation transform for its pretrained
#: classifiers (shorter side to size / 0.875, centre crop, ImageNet mean and std).
IMAGE_PREPS = {
    "unit": ImagePrep(),
    "imagenet": ImagePrep(crop_fraction=0.875, mean=IMAGENET_MEAN, std=IMAGENET_STD),
}


def crop_geometry(height: int, width: int, size: int, shorter_side: int
                  ) -> tuple[int, int, int, int]:
    """``(new_height, new_width, top, left)``: resize an image of ``height`` x ``width`` so
    its shorter side is ``shorter_side`` (the longer side scaled and truncated, as
    torchvision's ``Resize(int)``), then the ``size`` x ``size`` centre square starts at
    ``(top, left)`` (offsets rounded half to even, as torchvision's ``CenterCrop``).

    Examples
    --------
    >>> crop_geometry(375, 500, 224, 256)
    (256, 341, 16, 58)
    """
    if shorter_side < size:
        raise ValueError(f"the shorter side ({shorter_side}) must be at least the crop "
                         f"({size})")
    if height <= width:
        new_h, new_w = shorter_side, int(shorter_side * width / height)
    else:
        new_h, new_w = int(shorter_side * height / width), shorter_side
    return new_h, new_w, int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
