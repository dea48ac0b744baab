"""Forward hooks -> labelled activations.

Hook outputs are copied out (``detach().clone()``) inside the hook, so a later
in-place operation in the network (``ReLU(inplace=True)``, an optimiser step)
cannot overwrite what was recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import xarray as xr
from torch import nn


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


def activation_tree(stimuli: xr.Dataset, layers: dict[str, np.ndarray], *,
                    seeds: Sequence[int] | None = None, steps: Sequence[int] | None = None,
                    attrs: dict[str, str] | None = None) -> xr.DataTree:
    """Assemble labelled activations into the DESIGN data model.

    Parameters
    ----------
    stimuli : xarray.Dataset with dim ``stimulus``
        Its coords (feature values, split) and ``inputs`` go to the root.
    layers : dict name -> array
        Each array has dims ``([seed,] [step,] stimulus, unit)``: ``seed`` is
        present iff ``seeds`` is given, ``step`` iff ``steps`` is given.
    attrs : provenance attrs for the root.

    Returns
    -------
    xarray.DataTree
        Root: stimulus coords and provenance; one child per layer holding
        ``activation``.
    """
    root = stimuli.copy()
    root.attrs = {**stimuli.attrs, **(attrs or {})}
    lead = {k: np.asarray(v) for k, v in (("seed", seeds), ("step", steps)) if v is not None}
    dims = (*lead, "stimulus", "unit")
    children = {}
    for name, arr in layers.items():
        if arr.ndim != len(dims):
            raise ValueError(f"layer {name!r} has {arr.ndim} dims, expected {dims}")
        if arr.shape[-2] != stimuli.sizes["stimulus"]:
            raise ValueError(f"layer {name!r} has {arr.shape[-2]} stimuli, the stimulus set "
                             f"{stimuli.sizes['stimulus']}")
        coords = {"unit": np.arange(arr.shape[-1]), **lead}
        children[name] = xr.Dataset({"activation": (dims, arr)}, coords=coords)
    return xr.DataTree.from_dict({"/": root, **{f"/{k}": v for k, v in children.items()}})
