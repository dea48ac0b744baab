"""Activations of any ``torch.nn.Module``, its layers named by module path.

:func:`rsa_bias.training.layer_activations` reads the package's own networks through
``model.layer(name)``; the functions here read any module (torchvision, timm, your own) by
the paths ``model.named_modules()`` gives (``"layer4.1.relu"``), through forward hooks:

* :func:`module_layers` lists the paths;
* :func:`iter_module_activations` yields ``{path: (batch, units)}`` batch by batch, never
  holding more than one batch of outputs (for stimulus sets too large for memory);
* :func:`module_activations` concatenates them into labelled ``activation(stimulus, unit)``;
* :func:`extraction_provenance` gives the flat attrs that say how they were read.

Each batch runs under ``torch.no_grad()`` in eval mode, with the hooks in place only during
its forward pass: between batches (and after an error) the model has its own train/eval
modes and no hooks. Each hooked output is reduced to ``(batch, units)`` on the model's device
inside its hook and copied to the CPU as float32, so a later in-place operation (``ReLU(
inplace=True)``) cannot change what was recorded. A module called more than once in one
forward pass (torchvision's ``BasicBlock.relu``) gives its last call's output.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn
from torch.nn.parameter import is_lazy
from tqdm.auto import tqdm

from rsa_bias._api import choose
from rsa_bias._values import check_count, check_flag, check_names, check_seed
from rsa_bias.networks import ImagePrep
from rsa_bias.training._extract import (
    REDUCTIONS,
    Reducer,
    _as_input_array,
    batch_source,
    check_one_input,
    hooked_forward,
    input_ids,
    model_device,
    path_key,
    resolve_layers,
)

__all__ = ["module_layers", "iter_module_activations", "module_activations",
           "extraction_provenance"]


def is_image_input(inputs: Inputs) -> bool:
    """Whether ``inputs`` are uint8 images (fitted and normalised as ``image_size`` and
    ``image_prep`` say) rather than values used as they are."""
    return getattr(_as_input_array(inputs), "dtype", None) == np.uint8


def module_layers(model: nn.Module) -> list[str]:
    """The module paths of ``model`` that ``layers=`` accepts, as ``named_modules()`` gives
    them (the root module left out).

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    list of str
        Every submodule's dotted path (``"layer1.0.conv1"``), in definition order. A module
        defined but never called by ``forward`` is listed too; reading it is refused.

    Examples
    --------
    >>> module_layers(nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU())))
    ['0', '1', '1.0']
    """
    return [path for path, _ in model.named_modules() if path]


def _options(model: nn.Module, layers, *, batch_size, reduction, n_components, seed,
             channel_axis, output_index, progress) -> dict:
    """The checked options, ``modules`` the resolved layers."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    layers = check_names(layers, "layers")
    choose(dict.fromkeys(REDUCTIONS), reduction, "reduction")
    if (reduction == "random_projection") != (n_components is not None):
        raise ValueError("n_components is required with reduction='random_projection' and "
                         f"only then; got reduction={reduction!r}, n_components={n_components!r}")
    if n_components is not None:
        check_count(n_components, "n_components")
    if check_seed(seed) is None:
        raise ValueError("seed must be an integer in [0, 2**32); got None")
    for name, value in (("channel_axis", channel_axis), ("output_index", output_index)):
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, numbers.Integral)):
            raise ValueError(f"{name} must be an integer; got {value!r}")
    if output_index is None:
        raise ValueError("output_index must be an integer; got None")
    return {"modules": resolve_layers(model, layers),
            "batch_size": check_count(batch_size, "batch_size"),
            "progress": check_flag(progress, "progress")}


Inputs = torch.Tensor | np.ndarray | xr.DataArray | xr.Dataset


def iter_module_activations(model: nn.Module, inputs: Inputs, *, layers: Sequence[str],
                            batch_size: int = 64, reduction: str = "mean",
                            n_components: int | None = None, seed: int = 0,
                            channel_axis: int | None = None, output_index: int = 0,
                            image_size: int | None = None,
                            image_prep: ImagePrep | str | None = None, progress: bool = False,
                            ) -> Iterator[dict[str, np.ndarray]]:
    """Yield the activations of the named modules of ``model``, one batch of inputs at a time.

    Parameters
    ----------
    model : torch.nn.Module
        Any module whose ``forward`` takes one tensor (the inputs are moved to the device
        of its first parameter or buffer; the CPU for a module with neither).
    inputs : torch.Tensor, numpy.ndarray, xarray.DataArray or xarray.Dataset
        The stimuli along the first axis (a DataArray's ``stimulus`` dim): a tensor, used as
        it is; a float array, as float32; uint8 images ``(n, y, x, 3)``, prepared by
        :func:`rsa_bias.networks.prepare_images` (sized to ``image_size`` and normalised
        as ``image_prep`` says, by default stretched and scaled to [-1, 1]) batch by
        batch; a DataArray, by its values, read one batch at a time (a Dask-backed or lazily
        loaded one is never read whole); a stimulus-set Dataset, by its ``inputs`` variable,
        else its ``image`` variable.
    layers : sequence of str
        Module paths as :func:`module_layers` lists them (``"layer4.1.relu"``), each once.
    batch_size : int, default 64
        Inputs per forward pass.
    reduction : str, default "mean"
        How an output with more than two axes becomes units: ``"mean"`` or ``"max"`` over
        every axis but the batch and the channel axis (one unit per channel);
        ``"flatten"`` (every value a unit, in C order); ``"random_projection"`` (flattened,
        then multiplied by a Gaussian matrix ``(units, n_components)``). A 2-D output
        ``(batch, units)`` is used as it is under every reduction, except that
        ``"random_projection"`` projects any layer with more than ``n_components`` units.
    n_components : int, optional
        Units after ``"random_projection"`` (required with it, refused otherwise). The
        matrix has entries N(0, 1 / n_components), so distances and correlations are kept
        approximately (Johnson-Lindenstrauss). It is held on the model's device in float32
        for the whole run: ``units * n_components * 4`` bytes per layer (a 256 x 56 x 56
        feature map to 1000 components: 3.2 GB).
    seed : int, default 0
        A layer's projection matrix is drawn by a ``torch.Generator`` on the model's device
        seeded with ``numpy.random.SeedSequence([seed, zlib.crc32(path.encode())])`` (its
        first uint64), so it is the same for every batch size, run and choice of the other
        layers, and differs by layer. CPU
        and CUDA generators draw different numbers: the matrices depend on the device type.
    channel_axis : int, optional
        The channel axis kept by ``"mean"`` / ``"max"``; default 1 for outputs with four or
        more axes ``(N, C, H, W, ...)`` and -1 for three ``(N, T, D)``: sequence models with
        ``batch_first=True``.
    output_index : int, default 0
        Which element of a tuple or list output to read (``nn.MultiheadAttention`` returns
        ``(output, weights)``, ``nn.LSTM`` ``(output, (h, c))``), again in nested ones until
        a tensor.
    image_size : int, optional
        Side uint8 images are resized to; default their own size.
    image_prep : ImagePrep or {"unit", "imagenet"}, default "unit"
        How uint8 images are fitted to the square and normalised
        (:class:`~rsa_bias.networks.ImagePrep`): ``"unit"`` stretches and scales to [-1, 1];
        ``"imagenet"`` is torchvision's evaluation transform for its pretrained weights
        (shorter side to ``image_size / 0.875``, centre crop, ImageNet mean and std).
        Float inputs and tensors are used as they are.
    progress : bool, default False
        Show a progress bar over the batches.

    Yields
    ------
    dict of str to numpy.ndarray
        ``{path: float32 (batch, units)}`` for each batch, in input order.

    Raises
    ------
    ValueError
        For an unknown module path (with its close matches), a repeated or empty one, an
        unknown reduction (with the valid ones), ``n_components`` without
        ``"random_projection"`` or the reverse, a layer the forward pass never calls, or a
        layer whose output's first axis is not the batch.
    TypeError
        For a layer whose output is not a tensor (a dict, ...), or inputs of another type.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    >>> batches = iter_module_activations(net, torch.zeros(5, 3, 8, 8), layers=["1", "3"],
    ...                                   batch_size=2)
    >>> [(b["1"].shape, b["3"].shape) for b in batches]
    [((2, 4), (2, 2)), ((2, 4), (2, 2)), ((1, 4), (1, 2))]
    """
    opts = _options(model, layers, batch_size=batch_size, reduction=reduction,
                    n_components=n_components, seed=seed, channel_axis=channel_axis,
                    output_index=output_index, progress=progress)
    n, take = batch_source(inputs, image_size=image_size, image_prep=image_prep)
    return _batches(model, n, take, opts["modules"], batch_size=opts["batch_size"],
                    progress=opts["progress"], reduction=reduction, n_components=n_components,
                    seed=int(seed), channel_axis=channel_axis, output_index=int(output_index))


def _batches(model, n, take, modules, *, batch_size, progress, output_index,
             **reduce) -> Iterator[dict[str, np.ndarray]]:
    """The generator behind :func:`iter_module_activations` (its options checked)."""
    device = model_device(model)
    # each layer's projection is seeded by its path, so adding a layer changes no other one
    reducers = {p: Reducer(p, path_key(p), device=device, **reduce) for p in modules}
    bar = tqdm(total=-(-n // batch_size), desc="batches", disable=not progress, leave=False,
               dynamic_ncols=True)
    try:
        for start in range(0, n, batch_size):
            x = take(start, min(start + batch_size, n)).to(device)
            got = hooked_forward(model, x, modules, reducers, output_index=output_index)
            if start == 0 and len(x) > 1:
                check_one_input(model, x, got, modules, reducers, output_index=output_index)
            yield got
            bar.update()
    finally:
        bar.close()


def module_activations(model: nn.Module, inputs: Inputs, *, stimulus_ids: Sequence | None = None,
                       layers: Sequence[str], batch_size: int = 64, reduction: str = "mean",
                       n_components: int | None = None, seed: int = 0,
                       channel_axis: int | None = None, output_index: int = 0,
                       image_size: int | None = None,
                       image_prep: ImagePrep | str | None = None, progress: bool = False,
                       ) -> dict[str, xr.DataArray]:
    """The activations of the named modules of ``model`` on ``inputs``, labelled by stimulus.

    The batches of :func:`iter_module_activations` (see there for every option), joined in
    memory.

    Parameters
    ----------
    model : torch.nn.Module
        Any module whose ``forward`` takes one tensor.
    inputs : torch.Tensor, numpy.ndarray, xarray.DataArray or xarray.Dataset
        The stimuli along the first axis, as for :func:`iter_module_activations`.
    stimulus_ids : sequence, optional
        One id per stimulus, in order: required for a tensor or array (and a DataArray
        without a ``stimulus`` coord); for labelled inputs it must equal their own ids.
    layers : sequence of str
        Module paths as :func:`module_layers` lists them.
    batch_size : int, default 64
        Inputs per forward pass.
    reduction : str, default "mean"
        ``"mean"``, ``"max"``, ``"flatten"`` or ``"random_projection"``.
    n_components : int, optional
        Units after ``"random_projection"`` (required with it only).
    seed : int, default 0
        Seeds the projection matrices (one per layer, by its position in ``layers``).
    channel_axis : int, optional
        The axis ``"mean"`` / ``"max"`` keep; default 1 for ``(N, C, H, W, ...)``, -1 for
        ``(N, T, D)``.
    output_index : int, default 0
        The element of a tuple output to read.
    image_size : int, optional
        Side uint8 images are resized to; default their own size.
    image_prep : ImagePrep or {"unit", "imagenet"}, default "unit"
        How uint8 images are fitted and normalised (see :func:`iter_module_activations`).
    progress : bool, default False
        Show a progress bar over the batches.

    Returns
    -------
    dict of str to xarray.DataArray
        ``{path: activation}``, each float32 with dims ("stimulus", "unit") labelled by the
        stimulus ids; attrs ``reduction``, ``n_components`` (0: none), ``seed`` and
        ``layer_path``.

    Raises
    ------
    ValueError
        When ids are missing for unlabelled inputs, differ from labelled inputs' own ids,
        are repeated or do not match the number of stimuli; and as
        :func:`iter_module_activations`.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    >>> acts = module_activations(net, np.eye(3), stimulus_ids=["a", "b", "c"], layers=["0"])
    >>> x = torch.eye(3) @ net[0].weight.T + net[0].bias
    >>> bool(np.allclose(acts["0"].sel(stimulus="b"), x[1].detach().numpy()))
    True
    """
    ids = _stimulus_ids(inputs, stimulus_ids)
    batches = iter_module_activations(
        model, inputs, layers=layers, batch_size=batch_size, reduction=reduction,
        n_components=n_components, seed=seed, channel_axis=channel_axis,
        output_index=output_index, image_size=image_size, image_prep=image_prep,
        progress=progress)
    if len(ids) != _n_inputs(inputs):
        raise ValueError(f"{len(ids)} stimulus ids for {_n_inputs(inputs)} stimuli; pass one "
                         f"id per stimulus, in order")
    parts: dict[str, list[np.ndarray]] = {p: [] for p in layers}
    for batch in batches:
        for path, a in batch.items():
            parts[path].append(a)
    out = {}
    for path, chunks in parts.items():
        a = np.concatenate(chunks)
        out[path] = xr.DataArray(
            a, dims=("stimulus", "unit"), name="activation",
            coords={"stimulus": ids, "unit": np.arange(a.shape[1])},
            attrs={"reduction": reduction, "n_components": int(n_components or 0),
                   "seed": int(seed), "layer_path": path})
    return out


def _n_inputs(inputs) -> int:
    return batch_source(inputs, image_size=None)[0]


def _stimulus_ids(inputs, stimulus_ids) -> np.ndarray:
    """The ids of ``inputs``: their own (``stimulus_ids`` must equal them) or the given ones."""
    own = input_ids(inputs)
    if own is not None:
        if stimulus_ids is not None and not np.array_equal(np.asarray(stimulus_ids), own):
            raise ValueError("stimulus_ids differ from the inputs' own stimulus coord; pass "
                             "the labelled inputs without stimulus_ids (their ids are used)")
        ids = own
    elif stimulus_ids is None:
        raise ValueError("stimulus_ids are required for unlabelled inputs (a tensor or "
                         "array); pass one id per stimulus in order, or a labelled DataArray")
    else:
        ids = np.asarray(stimulus_ids)
    if ids.ndim != 1:
        raise ValueError(f"stimulus_ids must be one-dimensional; got shape {ids.shape}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("stimulus ids are repeated; give each stimulus its own id")
    return ids


def extraction_provenance(model: nn.Module, *, layers: Sequence[str], reduction: str,
                          n_components: int | None, seed: int, channel_axis: int | None,
                          output_index: int) -> dict[str, str | int]:
    """Flat, netCDF-safe attrs that say how activations of ``model`` were read.

    Parameters
    ----------
    model : torch.nn.Module
        The module read.
    layers : sequence of str
        The module paths read.
    reduction : str
        The reduction used.
    n_components : int or None
        Units of the random projection (None: no projection, recorded as 0).
    seed : int
        The projection seed.
    channel_axis : int or None
        The channel axis given (None: the default by output shape, recorded as
        ``"default"``).
    output_index : int
        The element of tuple outputs read.

    Returns
    -------
    dict of str to str or int
        ``model_class`` (module and qualified name of the model's class), ``layer_paths``
        (comma-joined), ``reduction``, ``n_components``, ``projection_seed``,
        ``channel_axis``, ``output_index``, ``n_parameters`` (not counting uninitialised lazy
        parameters).

    Examples
    --------
    >>> attrs = extraction_provenance(nn.Linear(2, 3), layers=["a", "b"], reduction="mean",
    ...                               n_components=None, seed=0, channel_axis=None,
    ...                               output_index=0)
    >>> attrs["model_class"], attrs["layer_paths"], attrs["n_parameters"]
    ('torch.nn.modules.linear.Linear', 'a,b', 9)
    """
    layers = check_names(layers, "layers")
    if any("," in p for p in layers):
        raise ValueError(f"layer paths with a comma cannot be comma-joined: {layers}")
    cls = type(model)
    return {"model_class": f"{cls.__module__}.{cls.__qualname__}",
            "layer_paths": ",".join(layers), "reduction": str(reduction),
            "n_components": int(n_components or 0), "projection_seed": int(seed),
            "channel_axis": "default" if channel_axis is None else int(channel_axis),
            "output_index": int(output_index),
            "n_parameters": int(sum(p.numel() for p in model.parameters() if not is_lazy(p)))}
