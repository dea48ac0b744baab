"""A user's own model on their own stimuli -> an activation file, at any size.

:func:`extract_to_file` reads the named modules of any ``torch.nn.Module``
(:func:`rsa_bias.training.extract.iter_module_activations`) and appends each batch to an
activation file (:class:`rsa_bias.store.stream.ActivationWriter`), so neither the stimuli of an
image folder nor the activations are ever all in memory. :func:`named_stimuli` gives the
shipped image sets (the 92 images of Kriegeskorte et al. 2008, the 640 V4 images) as stimulus
sets with feature labels; :func:`load_factory` imports a model factory named
``path/to/file.py:make_model`` or ``package.module:make_model`` (for ``rsa-bias extract``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bias._atomic import remove_stale_tmp
from rsa_bias.networks import ImagePrep
from rsa_bias.provenance import provenance_attrs
from rsa_bias.store.images import ImageFolderArray, image_folder_stimuli
from rsa_bias.store.stream import ActivationWriter
from rsa_bias.training.extract import (
    extraction_provenance,
    is_image_input,
    iter_module_activations,
)

#: The shipped image sets :func:`named_stimuli` knows, and the labels each carries.
NAMED_STIMULI = ("rsa92", "v4")
_RSA92_FEATURES = ("animate", "human", "face", "natural")


def named_stimuli(name: str) -> xr.Dataset:
    """A shipped image set as a stimulus set: ``image(stimulus, y, x, channel)`` uint8.

    Parameters
    ----------
    name : {"rsa92", "v4"}
        ``"rsa92"``: the 92 images (ids 1..92) with the binary features ``animate``,
        ``human``, ``face`` and ``natural`` of Kriegeskorte et al. (2008);
        ``"v4"``: the 640 images shown to the V4 neurons (no feature labels).

    Returns
    -------
    xarray.Dataset
        The stimulus set, ``attrs["feature_names"]`` listing its features.
    """
    from rsa_bias.brain import load_rsa92, load_v4

    if name == "rsa92":
        d = load_rsa92()
        coords = {f"feature_{f}": ("stimulus", d[f].values.astype(np.int64))
                  for f in _RSA92_FEATURES}
        return xr.Dataset({"image": d["image"]}, coords={"stimulus": d["stimulus"].values,
                                                         **coords},
                          attrs={"feature_names": list(_RSA92_FEATURES),
                                 "stimuli": "rsa92"})
    if name == "v4":
        d = load_v4()
        return xr.Dataset({"image": d["image"]}, coords={"stimulus": d["stimulus"].values},
                          attrs={"feature_names": [], "stimuli": "v4"})
    raise ValueError(f"unknown stimulus set {name!r}; the shipped ones are "
                     f"{list(NAMED_STIMULI)}, or give an image folder or a .npy file")


def load_factory(spec: str) -> Callable[[], nn.Module]:
    """The callable named by ``"path/to/file.py:name"`` or ``"package.module:name"``.

    Parameters
    ----------
    spec : str
        A Python file (or importable module) and the name of a callable in it that returns
        the ``torch.nn.Module`` to read, joined by ``:``. The file's folder is put on
        ``sys.path``, so it may import modules next to it.

    Returns
    -------
    callable
        The factory (not yet called).

    Raises
    ------
    ValueError
        No ``:``, a file or module that cannot be found, or no callable of that name.
    """
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ValueError(f"model {spec!r} must be FILE.py:FACTORY or module:FACTORY, e.g. "
                         "my_models.py:make_resnet")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ValueError(f"model file {path} does not exist")
        mod_name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules \
            else f"rsa_bias_user_{abs(hash(path.resolve()))}"  # never shadow a loaded module
        folder = str(path.resolve().parent)  # so the file can import its own helper modules
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec_ = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec_)
        sys.modules[mod_name] = module
        spec_.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise ValueError(f"cannot import module {where!r} ({exc}); give a .py file or a "
                             "module on the Python path") from exc
    factory = getattr(module, name, None)
    if not callable(factory):
        found = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ValueError(f"{where} has no callable {name!r}; its callables: {found[:20]}")
    return factory


#: The side a folder's images are fitted to when no ``image_size`` is given.
FOLDER_IMAGE_SIZE = 224


def _sources(stimuli, stimulus_ids, read_batch: int, image_size: int | None, prep: ImagePrep,
             read_workers: int | None = None) -> tuple[xr.Dataset, object, ImagePrep]:
    """The stimulus set to write at the root, the inputs and what is left of ``prep`` to
    apply to them (a folder's images are fitted to the square as they are read)."""
    if isinstance(stimuli, str | Path) and Path(stimuli).is_dir():
        folder = Path(stimuli)
        st = image_folder_stimuli(folder)
        ids = st["stimulus"].values
        images = ImageFolderArray(folder, ids, size=image_size or FOLDER_IMAGE_SIZE,
                                  block=read_batch, prep=prep, workers=read_workers)
        return st, images, prep.without_geometry()
    if isinstance(stimuli, str | Path):
        raise ValueError(f"stimuli {stimuli} is not a folder; pass a folder of images, a "
                         "stimulus-set Dataset or an array")
    if isinstance(stimuli, xr.Dataset):
        if stimulus_ids is not None:
            raise ValueError("stimulus_ids are taken from the Dataset's stimulus coord; do "
                             "not pass them too")
        st = stimuli.drop_vars(list(stimuli.data_vars))
        if "feature_names" not in st.attrs:
            st.attrs["feature_names"] = [str(c)[8:] for c in st.coords
                                         if str(c).startswith("feature_")]
        return st, stimuli, prep
    n = len(stimuli)
    if stimulus_ids is None:
        raise ValueError("stimulus_ids are required for an unlabelled array or tensor; pass "
                         "one id per stimulus in its order (e.g. numpy.arange(n))")
    ids = np.asarray(stimulus_ids)
    if ids.shape != (n,) or len(np.unique(ids)) != n:
        raise ValueError(f"stimulus_ids must be {n} distinct ids, one per stimulus; got "
                         f"shape {ids.shape} with {len(np.unique(ids))} distinct")
    st = xr.Dataset(coords={"stimulus": ids}, attrs={"feature_names": []})
    return st, stimuli, prep


def _describe(stimuli) -> str:
    """What the stimuli were, for the file's provenance."""
    if isinstance(stimuli, str | Path):
        return f"image folder {Path(stimuli).resolve()}"
    if isinstance(stimuli, xr.Dataset):
        return str(stimuli.attrs.get("stimuli", stimuli.attrs.get("source", "stimulus set")))
    if isinstance(stimuli, np.memmap) and stimuli.filename:
        return f"array file {stimuli.filename}"
    return f"{type(stimuli).__name__} {tuple(stimuli.shape)}"


def extract_to_file(model: nn.Module, stimuli, path: str | Path, *, layers: Sequence[str],
                    stimulus_ids: Sequence | None = None, batch_size: int = 64,
                    reduction: str = "mean", n_components: int | None = None, seed: int = 0,
                    channel_axis: int | None = None, output_index: int = 0,
                    image_size: int | None = None, image_prep: ImagePrep | str | None = None,
                    read_batch: int = 1024, read_workers: int | None = None,
                    dtype: str = "float32", compression: int = 0,
                    progress: bool = False, source: str | None = None) -> Path:
    """Read the named modules of ``model`` on ``stimuli`` into an activation file, batch by
    batch.

    Parameters
    ----------
    model : torch.nn.Module
        Any module whose ``forward`` takes one tensor; it runs in evaluation mode on its own
        device (its mode is restored afterwards).
    stimuli : xarray.Dataset, numpy.ndarray, torch.Tensor, str or pathlib.Path
        A stimulus set (``inputs`` or ``image`` variable, ``feature_<name>`` coords kept in
        the file), an array or tensor (with ``stimulus_ids``), or a folder of images (read
        ``read_batch`` at a time, resized to ``image_size``, default 224; ids are the paths
        relative to the folder, subfolders a ``folder`` feature).
    path : str or pathlib.Path
        The activation file to write (written under a temporary name, renamed when done).
    layers : sequence of str
        Module paths, as :func:`rsa_bias.training.extract.module_layers` lists them.
    stimulus_ids : sequence, optional
        One id per stimulus of an array or tensor.
    batch_size, reduction, n_components, seed, channel_axis, output_index, image_size
        As in :func:`rsa_bias.training.extract.iter_module_activations` (``image_size``
        also sets the size images of a folder are read at).
    image_prep : ImagePrep or {"unit", "imagenet"}, default "unit"
        How images are fitted to the square and normalised
        (:class:`~rsa_bias.networks.ImagePrep`): ``"unit"`` stretches and scales to [-1, 1];
        ``"imagenet"`` resizes the shorter side to ``image_size / 0.875`` (a folder's files
        with Pillow's bilinear filter, arrays with torch's antialiased one, as torchvision
        does on each), cuts the centre square and applies the ImageNet mean and std. Float
        inputs and tensors are used as they are (``config_json`` then records
        ``image_prep: null``); a folder's record holds the size its images were read at.
    read_batch : int, default 1024
        Images of a folder read from disk at a time.
    read_workers : int, optional
        Threads that decode a folder's images, default ``min(4, os.cpu_count())``; the next
        ``read_batch`` images are read ahead while the model runs on these. 0: one thread,
        no reading ahead (:class:`~rsa_bias.store.images.ImageFolderArray`).
    dtype : {"float32", "float64"}, default "float32"
        How the activations are stored.
    compression : int, default 0
        zlib level of the stored activations.
    progress : bool, default False
        Show a progress bar over the batches.
    source : str, optional
        Where the model came from (``"my_models.py:make_resnet"``), recorded as
        ``model_source``.

    Returns
    -------
    pathlib.Path
        ``path``: root attrs hold the provenance (``rsa_bias_version``, ``git_sha``, the
        settings as ``config_json``) and :func:`~rsa_bias.training.extract.
        extraction_provenance` (``model_class``, ``layer_paths``, ``reduction``, ...).
    """
    remove_stale_tmp(Path(path).parent)  # of extractions killed before they could clean up
    prep = ImagePrep.named(image_prep)
    st, inputs, rest = _sources(stimuli, stimulus_ids, read_batch, image_size, prep,
                                read_workers)
    options = dict(layers=list(layers), batch_size=batch_size, reduction=reduction,
                   n_components=n_components, seed=seed, channel_axis=channel_axis,
                   output_index=output_index, image_size=image_size)
    images = is_image_input(inputs)  # floats and tensors are used as they are
    settings = {**{k: v for k, v in options.items() if k != "batch_size"},
                "image_size": inputs.size if isinstance(inputs, ImageFolderArray)
                else image_size,
                "image_prep": prep.to_dict() if images else None}
    attrs = {**provenance_attrs(settings, seed=seed, method="extract"),
             "stimuli_source": _describe(stimuli), "model_source": source or "",
             "torch_version": torch.__version__,
             **extraction_provenance(model, layers=list(layers), reduction=reduction,
                                     n_components=n_components, seed=seed,
                                     channel_axis=channel_axis, output_index=output_index)}
    try:
        with ActivationWriter(path, st, attrs=attrs, dtype=dtype,
                              compression=compression) as w:
            for batch in iter_module_activations(model, inputs, progress=progress,
                                                 image_prep=rest, **options):
                w.append(batch)
    finally:
        if isinstance(inputs, ImageFolderArray):
            inputs.close()  # its reading threads
    return Path(path)


__all__ = ["extract_to_file", "named_stimuli", "load_factory", "NAMED_STIMULI"]
