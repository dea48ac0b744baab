"""Macaque V4 spike counts to 640 images (Cowley et al. 2023, session 210325) as ``xr.Dataset``.

Files (``data/v4_cowley2023/``, provenance and licence (GPL-3.0) in ``data/README.md``):

* ``responses_raw_210325.npy`` — float64 (50 neurons, 640 images, 10 repeat slots), spike
  counts in 100 ms bins; unused repeat slots are NaN (6-10 repeats per image);
* ``responses_repeat_averaged_210325.npy`` — float64 (50, 640) = ``nanmean`` over repeats;
* ``images_210325.zip`` — ``image0001.jpg`` .. ``image0640.jpg``, 112x112 RGB;
  ``imageNNNN.jpg`` is index ``NNNN-1`` of the image axis.

Images are decoded straight from the zip (``zipfile`` + Pillow); nothing is extracted.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bias.brain._paths import dataset_file

FOLDER = "v4_cowley2023"
SESSION = "210325"
RAW = f"responses_raw_{SESSION}.npy"
AVERAGED = f"responses_repeat_averaged_{SESSION}.npy"
IMAGES = f"images_{SESSION}.zip"


def _load_npy(path: Path, ndim: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # ValueError / OSError / EOFError for damaged files
        raise ValueError(f"{path} could not be read as a .npy array ({err}); the file is "
                         "corrupt or not the shipped one (checksums in data/README.md)") from err
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{path} holds a {arr.dtype} array of shape {arr.shape}; expected a "
                         f"{ndim}-d float array")
    return arr


def _stimulus_ids(n: int) -> np.ndarray:
    return np.array([f"image{i:04d}" for i in range(1, n + 1)])


def _read_images(path: Path, ids: np.ndarray) -> np.ndarray:
    from PIL import Image  # optional-ish dependency, only needed for the images

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [f"{i}.jpg" for i in ids if f"{i}.jpg" not in names]
            if missing:
                raise ValueError(f"{path} lacks {len(missing)} image file(s), e.g. "
                                 f"{missing[:5]}")
            out = []
            for i in ids:
                with Image.open(io.BytesIO(zf.read(f"{i}.jpg"))) as im:
                    out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path} is not a readable zip file ({err}); corrupt or not the "
                         "shipped one (checksums in data/README.md)") from err
    except OSError as err:  # PIL.UnidentifiedImageError is an OSError
        raise ValueError(f"{path}: an image could not be decoded ({err})") from err
    shapes = {im.shape for im in out}
    if len(shapes) != 1:
        raise ValueError(f"{path}: images differ in shape ({sorted(shapes)})")
    return np.stack(out)


def load_v4(path: str | os.PathLike[str] | None = None, *, images: bool = True) -> xr.Dataset:
    """Load V4 session 210325 (monkey PE, 50 neurons, 640 images, 6-10 repeats).

    Cowley et al. (2023) macaque V4 spike counts, neuron x image x repeat, with the 640
    images (files, provenance and licence (GPL-3.0) in the module docstring and
    ``data/README.md``). Images are decoded straight from the zip; nothing is extracted.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Folder holding the three files; default ``<data>/v4_cowley2023``
        (``<data>`` = the repository's ``data/`` or ``$RSA_BIAS_DATA``).
    images : bool, default True
        Include the images (``image``, 112x112x3 uint8); ``False`` skips decoding.

    Returns
    -------
    xarray.Dataset with dims ("neuron", "stimulus", "repeat", ...)
        The variables and coords:

        * ``response(neuron, stimulus, repeat)`` float64 spike counts, NaN where an image has
          fewer than 10 repeats (the raw array, unchanged);
        * ``response_mean(neuron, stimulus)`` — the shipped repeat average (checked to equal the
          NaN-mean of ``response``);
        * ``image(stimulus, y, x, channel)`` uint8 (if ``images``);
        * coords ``stimulus`` = ``"image0001"`` .. ``"image0640"`` (the zip's file names without
          ``.jpg``), ``image_file``, ``n_repeats(stimulus)``, ``neuron`` 0..49, ``repeat`` 0..9.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    ValueError
        For a damaged or inconsistent file.
    """

    def find(name: str) -> Path:
        return dataset_file(FOLDER, name, path)

    raw_path, avg_path = find(RAW), find(AVERAGED)
    raw = _load_npy(raw_path, 3)
    avg = _load_npy(avg_path, 2)
    if avg.shape != raw.shape[:2]:
        raise ValueError(f"{avg_path} has shape {avg.shape}; expected {raw.shape[:2]} to match "
                         f"{raw_path.name} {raw.shape}")
    observed = ~np.isnan(raw)
    n_repeats = observed.sum(axis=2)
    if np.any(n_repeats == 0):
        raise ValueError(f"{raw_path}: some (neuron, image) pairs have no repeat at all")
    with np.errstate(invalid="ignore"):
        recomputed = np.nanmean(raw, axis=2)
    if not np.allclose(recomputed, avg, rtol=1e-10, atol=1e-10):
        bad = int(np.sum(~np.isclose(recomputed, avg, rtol=1e-10, atol=1e-10)))
        raise ValueError(f"{avg_path} disagrees with the NaN-mean of {raw_path.name} in {bad} "
                         "entries; the files do not belong together")
    if not np.all(n_repeats == n_repeats[:1]):
        raise ValueError(f"{raw_path}: neurons differ in their missing-repeat pattern")

    ids = _stimulus_ids(raw.shape[1])
    coords = {
        "neuron": np.arange(raw.shape[0]),
        "stimulus": ids,
        "repeat": np.arange(raw.shape[2]),
        "image_file": ("stimulus", np.array([f"{i}.jpg" for i in ids])),
        "n_repeats": ("stimulus", n_repeats[0].astype(np.int64)),
    }
    data_vars = {
        "response": (("neuron", "stimulus", "repeat"), raw),
        "response_mean": (("neuron", "stimulus"), avg),
    }
    if images:
        img_path = find(IMAGES)
        data_vars["image"] = (("stimulus", "y", "x", "channel"), _read_images(img_path, ids))
        coords["channel"] = np.array(["R", "G", "B"])
    ds = xr.Dataset(data_vars, coords=coords)
    ds["response"].attrs.update(units="spike count per 100 ms bin",
                                missing="NaN = unused repeat slot")
    ds["response_mean"].attrs.update(units="spike count per 100 ms bin",
                                     method="mean over observed repeats")
    ds.attrs.update(
        dataset="v4_cowley2023", session=SESSION, monkey="PE", area="V4",
        source="cowleygroup/V4_compact_models @ f4552ad9 (see data/README.md)",
        reference="Cowley, Stan, Pillow & Smith 2023, bioRxiv; images: Bashivan, Kar & "
                  "DiCarlo 2019, Science 364:eaav9436",
        licence="GPL-3.0 (LICENSE_V4_compact_models_GPL-3.0.txt); image copyright unstated",
        path=str(raw_path.parent),
    )
    return ds
