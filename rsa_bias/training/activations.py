"""Forward hooks -> activations of named layers, labelled by stimulus.

Hook outputs are copied out (``detach().clone()``) inside the hook, so a later
in-place operation in the network (``ReLU(inplace=True)``, an optimiser step)
cannot overwrite what was recorded.

:func:`layer_activations` reads a model's layers on images as labelled
``activation(stimulus, unit)``. A conv layer's feature map becomes units by averaging
each channel over space (``readout="gap"``, the default: position-invariant, one unit per
channel), or by flattening every (channel, y, x) (``"flatten"``), optionally followed by a
seeded Gaussian random projection to ``n_components`` units (which preserves distances and
correlations approximately, Johnson-Lindenstrauss). With ``"gap"`` the ``pool`` layer equals
the last conv layer and is left out of the default layers. Photographs are resized to
``image_size`` pixels and scaled to [-1, 1] by :func:`rsa_bias.networks.prepare_images`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bias.networks import prepare_images, spatial_readout


@contextmanager
def recording(model: nn.Module, layers: dict[str, nn.Module]) -> Iterator[dict[str, list]]:
    """Record the outputs of ``layers`` (name -> module) while the block runs.

    Yields a dict ``name -> list of tensors`` (one per forward call, on CPU).
    """
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            store[name].append(output.detach().clone().cpu())
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in layers.items()]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def capture(model: nn.Module, inputs: torch.Tensor, layer_names: Sequence[str],
            *, batch_size: int = 8192) -> dict[str, np.ndarray]:
    """Activations ``(n_inputs, n_units)`` of the named layers, in evaluation mode.

    ``model.layer(name)`` must return the module for each name. The model's
    train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    layers = {name: model.layer(name) for name in layer_names}
    try:
        with recording(model, layers) as store:
            for start in range(0, len(inputs), batch_size):
                model(inputs[start:start + batch_size])
    finally:
        model.train(was_training)
    return {name: torch.cat(chunks).numpy() for name, chunks in store.items()}


def _default_layers(model: nn.Module, readout: str) -> list[str]:
    return [n for n in model.layer_names if not (readout == "gap" and n == "pool")]


def layer_activations(model: nn.Module, images: xr.DataArray | np.ndarray | torch.Tensor, *,
                      stimulus_ids: Sequence | None = None, layers: Sequence[str] | None = None,
                      image_size: int | None = 64, readout: str = "gap",
                      n_components: int | None = None, seed: int = 0,
                      batch_size: int = 128) -> dict[str, xr.DataArray]:
    """Read the named layers of ``model`` on ``images`` as labelled activations.

    The model runs in evaluation mode (its train/eval mode is restored afterwards) on its
    own device. A conv layer's feature map becomes units by averaging each channel over
    space (``readout="gap"``) or by flattening every (channel, y, x) (``"flatten"``),
    optionally followed by a seeded Gaussian random projection to ``n_components`` units
    (which preserves distances and correlations approximately, Johnson-Lindenstrauss).

    Parameters
    ----------
    model : torch.nn.Module
        A network with ``layer_names`` and ``layer(name)``, such as
        :class:`~rsa_bias.networks.CNN` or :class:`~rsa_bias.networks.MLP`.
    images : xarray.DataArray, numpy.ndarray or torch.Tensor
        uint8 ``image(stimulus, y, x, channel)`` DataArray (its ``stimulus`` coord gives
        the ids; ``stimulus_ids``, if given, must equal them), a uint8 array
        ``(n, y, x, 3)`` or a prepared float tensor ``(n, 3, y, x)`` (both need
        ``stimulus_ids``). Photographs are resized to ``image_size`` pixels and scaled to
        [-1, 1] by :func:`rsa_bias.networks.prepare_images`; a tensor is used as it is.
    stimulus_ids : sequence, optional
        One id per image, in the images' order (e.g. the brain dataset's ids).
    layers : sequence of str, optional
        The layers to read; default every layer (without ``pool`` under
        ``readout="gap"``, where it equals the last conv layer).
    image_size : int, default 64
        Side the photographs are resized to (ignored for a tensor); ``None`` keeps their
        size.
    readout : str, default "gap"
        ``"gap"`` (each channel's mean over space, position-invariant, one unit per
        channel) or ``"flatten"`` (every (channel, y, x) a unit).
    n_components : int, optional
        Project a layer with more units than this onto ``n_components`` Gaussian random
        directions (variance ``1 / n_components``); default no projection.
    seed : int, default 0
        The projections are drawn from ``numpy.random.default_rng(seed)``, one matrix per
        projected layer, in the order of ``layers``.
    batch_size : int, default 128
        Images per forward pass.

    Returns
    -------
    dict of str to xarray.DataArray
        ``{layer: activation}``, each float64 with dims ("stimulus", "unit") labelled with
        the stimulus ids, so every analysis aligns them with brain data by id; attrs
        ``readout`` and ``n_components`` (0: no projection).

    Raises
    ------
    ValueError
        When ``stimulus_ids`` are missing for unlabelled images, differ from a DataArray's
        own ids, or do not match the number of images.
    """
    if isinstance(images, xr.DataArray):
        own = images["stimulus"].values
        if stimulus_ids is not None and not np.array_equal(np.asarray(stimulus_ids), own):
            raise ValueError("stimulus_ids differ from the images' own stimulus coord; pass a "
                             "labelled DataArray without stimulus_ids (its ids are used)")
        stimulus_ids = own
    elif stimulus_ids is None:
        raise ValueError("stimulus_ids are required for unlabelled images; pass the brain "
                         "dataset's ids in the images' order")
    ids = np.asarray(stimulus_ids)
    x = images if isinstance(images, torch.Tensor) else prepare_images(images, size=image_size)
    if len(ids) != len(x):
        raise ValueError(f"{len(ids)} stimulus ids for {len(x)} images")
    layers = list(layers or _default_layers(model, readout))
    device = next(model.parameters()).device
    acts = capture(model, x.to(device), layers, batch_size=batch_size)
    rng = np.random.default_rng(seed)
    out = {}
    for name in layers:
        a = spatial_readout(acts[name], readout=readout).astype(np.float64)
        if n_components is not None and a.shape[1] > n_components:
            a = a @ rng.normal(0.0, 1.0 / np.sqrt(n_components), (a.shape[1], n_components))
        out[name] = xr.DataArray(a, dims=("stimulus", "unit"), name="activation",
                                 coords={"stimulus": ids, "unit": np.arange(a.shape[1])},
                                 attrs={"readout": readout,
                                        "n_components": n_components or 0})
    return out
