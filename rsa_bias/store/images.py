"""A folder of images as a stimulus set, read a batch at a time (Pillow reads the files).

:func:`image_folder_stimuli` lists the images of a folder as a stimulus set without reading
their pixels: the stimulus ids are the paths relative to the folder (``"faces/001.png"``), and
when the images sit in subfolders, the first folder of each path is a feature
(``feature_folder``), as in class-per-folder layouts. :func:`read_images` then reads the pixels
of any batch of those ids, so a set of any size is read without holding it all in memory.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bias._image_prep import ImagePrep, crop_geometry
from rsa_bias.store.schema import StoreError

#: Pillow modes read as 8-bit images (converted to RGB); 16-bit and float images are refused,
#: since converting them would clip or binarise their values.
EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "RGBa", "La", "CMYK",
                   "YCbCr", "LAB", "HSV")

#: The EXIF tag of an image's orientation (1: as stored).
ORIENTATION = 0x0112

#: File endings read as images (what Pillow reads without extra plug-ins).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def image_folder_stimuli(folder: str | Path) -> xr.Dataset:
    """The images under ``folder`` (searched recursively, in sorted path order) as a stimulus
    set without pixels.

    Parameters
    ----------
    folder : str or pathlib.Path
        A folder holding image files (endings :data:`IMAGE_SUFFIXES`, any case), directly or
        in subfolders; other files are ignored.

    Returns
    -------
    xarray.Dataset
        Dim ``stimulus`` with the paths relative to ``folder`` as ids (``/``-separated);
        ``feature_folder`` (the first folder of each path) and ``attrs["feature_names"] ==
        ["folder"]`` when every image sits in a subfolder, else no features; ``attrs
        ["image_folder"]`` the folder's absolute path.

    Raises
    ------
    StoreError
        When ``folder`` is not a folder or holds no images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a folder; give the folder that holds the images")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise StoreError(f"{folder} holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    ids = np.array(files, dtype=str)
    coords: dict = {"stimulus": ids}
    names: list[str] = []
    if all("/" in f for f in files):
        coords["feature_folder"] = ("stimulus", np.array([f.split("/")[0] for f in files]))
        names = ["folder"]
    return xr.Dataset(coords=coords, attrs={"feature_names": names,
                                            "image_folder": str(folder.resolve())})


def read_images(folder: str | Path, stimulus_ids: Sequence[str], *,
                size: int | None = None, prep: ImagePrep | str | None = None) -> np.ndarray:
    """The pixels of some images of a folder, as uint8 ``(n, y, x, 3)`` RGB.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder of :func:`image_folder_stimuli`.
    stimulus_ids : sequence of str
        Paths relative to ``folder`` (ids of :func:`image_folder_stimuli`), in the order
        wanted.
    size : int, optional
        Resize every image to ``size`` x ``size`` pixels; default keep their size, which
        must then be the same for all.
    prep : ImagePrep or {"unit", "imagenet"}, optional
        Its geometry (:class:`~rsa_bias.networks.ImagePrep`; the normalisation is left to
        :func:`~rsa_bias.networks.prepare_images`): stretch to the square (bicubic, the
        default), or resize the shorter side keeping the aspect ratio (bilinear, as
        torchvision's ``Resize`` on Pillow images) and cut the centre square
        (:func:`rsa_bias._image_prep.crop_geometry`); ``upright`` applies EXIF orientation
        tags first.

    Returns
    -------
    numpy.ndarray of uint8, shape (n, y, x, 3)
        Greyscale and palette images converted to RGB, an alpha channel dropped.

    Raises
    ------
    StoreError
        An image that is missing or cannot be decoded (named), or images of different sizes
        without ``size``.

    Warns
    -----
    UserWarning
        When images carry an EXIF orientation tag and ``prep.upright`` is off (they are read
        as stored, as torchvision's loader and PsychoPy do).
    """
    prep = ImagePrep.named(prep)
    prep.check_size(size)
    pixels, tagged = _stacked(Path(folder), stimulus_ids, size, prep)
    _warn_tagged(tagged, len(pixels), prep)
    return pixels


def _warn_tagged(tagged: list[str], n: int, prep: ImagePrep, what: str = "of {n} images"
                 ) -> None:
    if tagged and not prep.upright:
        warnings.warn(f"{len(tagged)} {what.format(n=n)} carry an EXIF orientation tag (e.g. "
                      f"{tagged[0]}); they are read as stored, as torchvision's loader and "
                      "PsychoPy show them; pass ImagePrep(upright=True) (--upright) to turn "
                      "them upright first", stacklevel=3)


def _stacked(folder: Path, stimulus_ids: Sequence[str], size: int | None, prep: ImagePrep,
             pool: ThreadPoolExecutor | None = None) -> tuple[np.ndarray, list[str]]:
    out, tagged = _read(folder, stimulus_ids, size, prep, pool)
    shapes = {a.shape for a in out}
    if len(shapes) > 1:
        raise StoreError(f"the images have different sizes {sorted(shapes)[:3]}; pass size= "
                         "to resize them all to one")
    return (np.stack(out) if out else np.zeros((0, size or 0, size or 0, 3), np.uint8)), tagged


def _read_one(path: Path, folder: Path, size: int | None, prep: ImagePrep
              ) -> tuple[np.ndarray, bool]:
    """The fitted pixels of one image file, and whether it has an EXIF orientation tag."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode not in EIGHT_BIT_MODES:
                raise StoreError(f"image {path} has mode {img.mode!r} (more than 8 bits per "
                                 "channel, or floats); convert it to 8-bit RGB first, scaling "
                                 "its range as your model expects")
            tagged = img.getexif().get(ORIENTATION, 1) != 1
            return np.asarray(_fitted(img, size, prep), dtype=np.uint8), tagged
    except FileNotFoundError as exc:
        raise StoreError(f"image {path} does not exist; the stimulus ids must be paths "
                         f"relative to {folder}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise StoreError(f"image {path} cannot be decoded ({exc}); remove or replace it") \
            from exc


def _read(folder: Path, stimulus_ids: Sequence[str], size: int | None, prep: ImagePrep,
          pool: ThreadPoolExecutor | None = None) -> tuple[list[np.ndarray], list[str]]:
    """The fitted pixels of each image (decoded by ``pool``'s threads when given: Pillow
    releases the GIL while it decodes and resizes), and the ids of those with an EXIF
    orientation tag."""
    ids = [str(sid) for sid in stimulus_ids]

    def read(sid):
        return _read_one(folder / sid, folder, size, prep)

    got = list(pool.map(read, ids) if pool is not None else map(read, ids))
    return [pixels for pixels, _ in got], [sid for sid, (_, t) in zip(ids, got, strict=True) if t]


def _fitted(img, size: int | None, prep: ImagePrep):
    """The Pillow image ``img`` in RGB (upright if asked), stretched or resized and
    centre-cropped."""
    from PIL import Image, ImageOps

    if prep.upright:
        img = ImageOps.exif_transpose(img)
    img = img.convert("RGB")
    if size is None:
        return img
    if not prep.crops:
        return img.resize((int(size), int(size)), Image.Resampling.BICUBIC)
    new_h, new_w, top, left = crop_geometry(img.height, img.width, int(size),
                                            prep.shorter_side(int(size)))
    if (new_h, new_w) != (img.height, img.width):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    return img.crop((left, top, left + int(size), top + int(size)))


class ImageFolderArray:
    """The images of a folder as a read-only uint8 array ``(n, size, size, 3)`` that reads
    its pixels only when sliced, ``block`` images from disk at a time (for extraction, which
    slices it batch by batch). Each block is decoded by ``workers`` threads, and the block
    after it is read ahead in the background while the caller works on this one (as a
    DataLoader's workers do), so at most two blocks are in memory.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder of :func:`image_folder_stimuli`.
    stimulus_ids : sequence of str
        Paths relative to ``folder``, in the array's order.
    size : int
        Side every image is resized to.
    block : int, default 1024
        Images read from disk at once (the slices asked for are served from that block).
    prep : ImagePrep or {"unit", "imagenet"}, optional
        Its geometry, as in :func:`read_images` (stretch by default).
    workers : int, optional
        Threads that decode images; default ``min(4, os.cpu_count())``. 0 reads in the
        calling thread, one block at a time, without reading ahead.

    Notes
    -----
    Call :meth:`close` (or use it as a context manager) to stop the threads early; they also
    end with the interpreter.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, folder: str | Path, stimulus_ids: Sequence[str], *, size: int,
                 block: int = 1024, prep: ImagePrep | str | None = None,
                 workers: int | None = None) -> None:
        self.folder, self.ids, self.size = Path(folder), list(stimulus_ids), int(size)
        self.prep, self._tagged = ImagePrep.named(prep), 0
        self.block = max(1, int(block))
        self.workers = min(4, os.cpu_count() or 1) if workers is None else int(workers)
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0: read in the calling thread), got "
                             f"{workers}")
        self.shape = (len(self.ids), self.size, self.size, 3)
        self._start, self._pixels = 0, np.zeros((0, self.size, self.size, 3), np.uint8)
        self._pool = self._ahead = None
        self._next: tuple[int, int, Future] | None = None  # (start, stop, the read ahead)

    def __len__(self) -> int:
        return len(self.ids)

    def __enter__(self) -> ImageFolderArray:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the reading threads: a read ahead in progress is dropped (its queued images
        cancelled, the ones being decoded finished) and every thread has ended on return."""
        pool, ahead = self._pool, self._ahead
        self._pool = self._ahead = self._next = None
        if pool is not None:  # first: a read ahead waiting on its images stops at once
            pool.shutdown(wait=False, cancel_futures=True)
        for executor in (ahead, pool):
            if executor is not None:
                executor.shutdown(wait=True)

    def _read(self, start: int, stop: int, pool: ThreadPoolExecutor | None
              ) -> tuple[np.ndarray, list[str]]:
        return _stacked(self.folder, self.ids[start:stop], self.size, self.prep, pool)

    def _decoders(self) -> ThreadPoolExecutor | None:
        if self.workers and self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="rsa_bias-images")
        return self._pool

    def _block(self, start: int, stop: int) -> tuple[np.ndarray, list[str]]:
        """Images ``start:stop``: the block read ahead when it is that one, else read now
        (after a read ahead of another block has ended, so at most two blocks are held);
        then the following block is read ahead."""
        ahead, self._next = self._next, None
        if ahead is not None and ahead[0] == start and ahead[1] >= stop:
            got = ahead[2].result()
        else:
            if ahead is not None and not ahead[2].cancel():
                with contextlib.suppress(Exception):  # not wanted: its errors do not matter
                    ahead[2].result()
            got = self._read(start, stop, self._decoders())
        following = start + len(got[0])
        if self.workers and following < len(self):
            if self._ahead is None:
                self._ahead = ThreadPoolExecutor(1, thread_name_prefix="rsa_bias-read-ahead")
            end = min(len(self), following + len(got[0]))
            self._next = (following, end,
                          self._ahead.submit(self._read, following, end, self._decoders()))
        return got

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("an ImageFolderArray is read by contiguous slices, a[start:stop]")
        start, stop, _ = index.indices(len(self))
        end = self._start + len(self._pixels)
        if not (self._start <= start and stop <= end):  # outside the block read last
            self._start = start
            self._pixels, tagged = self._block(start, min(len(self),
                                                          max(stop, start + self.block)))
            self._tagged += len(tagged)
            if tagged and self._tagged == len(tagged):  # once, at the first tagged block
                _warn_tagged(tagged, start + len(self._pixels), self.prep,
                             what="of the first {n} images read")
        return self._pixels[start - self._start:stop - self._start]


def read_array_stimuli(path: str | Path) -> np.ndarray:
    """The stimuli of a ``.npy`` file (images ``(n, y, x, 3)`` uint8 or inputs ``(n, ...)``),
    memory-mapped, so a file larger than memory is read a batch at a time.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.npy`` file written by ``numpy.save``; its first axis is the stimuli.

    Returns
    -------
    numpy.memmap or numpy.ndarray
        The array, read-only.

    Raises
    ------
    StoreError
        A missing file, one that is not a ``.npy`` array (object arrays too), or a 0-d array.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path} does not exist")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path} is not a readable .npy array ({exc}); write it with "
                         "numpy.save") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim < 1:
        raise StoreError(f"{path} holds no array with a stimulus axis")
    return arr
