"""The pieces of :mod:`rsa_bias.training.extract`: inputs as batches, a hooked module's output
as one tensor, reductions to ``(batch, units)``, the seeded projection matrices, and one
hooked forward pass that leaves the model as it found it."""

from __future__ import annotations

import difflib
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from rsa_bias.networks import ImagePrep, prepare_images

#: The reductions of outputs with more than two axes.
REDUCTIONS = ("mean", "max", "flatten", "random_projection")


def resolve_layers(model: nn.Module, layers: Sequence[str]) -> dict[str, nn.Module]:
    """``{path: module}`` for each path of ``layers``, refusing unknown, empty and repeated
    paths (an unknown one with its close matches)."""
    modules = dict(model.named_modules())
    modules.pop("", None)
    out: dict[str, nn.Module] = {}
    for path in layers:
        if not isinstance(path, str) or not path:
            raise ValueError(f"layer paths must be non-empty strings such as 'layer4.1.relu'; "
                             f"got {path!r}")
        if path in out:
            raise ValueError(f"layer {path!r} is named twice in layers; name each once")
        if path not in modules:
            close = difflib.get_close_matches(path, list(modules), n=5)
            hint = f"close matches: {close}" if close else "no close match"
            raise ValueError(f"{type(model).__name__} has no module {path!r} ({hint}); list "
                             f"the valid paths with rsa_bias.training.module_layers(model)")
        out[path] = modules[path]
    return out


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter, else of its first buffer, else the CPU."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _as_input_array(inputs) -> xr.DataArray | np.ndarray | torch.Tensor:
    """The network input of ``inputs``: a Dataset's ``inputs`` (else ``image``) variable, a
    DataArray with its ``stimulus`` dim first, an array or tensor as it is."""
    if isinstance(inputs, xr.Dataset):
        for var in ("inputs", "image"):
            if var in inputs.data_vars:
                return _as_input_array(inputs[var])
        raise ValueError(f"the Dataset has neither an 'inputs' nor an 'image' variable (it has "
                         f"{sorted(map(str, inputs.data_vars))}); pass the input DataArray")
    if isinstance(inputs, xr.DataArray):
        if "stimulus" in inputs.dims:
            inputs = inputs.transpose("stimulus", ...)
        return inputs
    if isinstance(inputs, torch.Tensor | np.ndarray):
        return inputs
    if all(hasattr(inputs, a) for a in ("shape", "dtype", "ndim", "__len__", "__getitem__")):
        return inputs  # an array read by slices (an image folder read batch by batch)
    raise TypeError(f"inputs must be a torch.Tensor, numpy array, xarray DataArray or a "
                    f"stimulus-set Dataset; got {type(inputs).__name__}")


def input_ids(inputs) -> np.ndarray | None:
    """The stimulus ids of labelled ``inputs`` (None for an array or tensor)."""
    arr = _as_input_array(inputs)
    if isinstance(arr, xr.DataArray) and "stimulus" in arr.coords:
        return np.asarray(arr["stimulus"].values)
    return None


class _Rows:
    """A DataArray read one slice of stimuli at a time: a Dask-backed or lazily loaded
    stimulus set is never read whole (a slice's values only when its batch runs)."""

    def __init__(self, da: xr.DataArray) -> None:
        self.da, self.shape, self.dtype, self.ndim = da, da.shape, da.dtype, da.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self.da[rows].values)


def batch_source(inputs, *, image_size: int | None, image_prep: ImagePrep | str | None = None
                 ) -> tuple[int, Callable[[int, int], torch.Tensor]]:
    """``(n, take)``: the number of inputs and ``take(start, stop)``, the tensor of that slice
    (uint8 images prepared slice by slice as ``image_prep`` says, so the whole set is never
    resized at once)."""
    prep = ImagePrep.named(image_prep)
    arr = _as_input_array(inputs)
    if isinstance(arr, xr.DataArray):
        if arr.dtype == np.uint8 and set(arr.dims) == {"stimulus", "y", "x", "channel"}:
            arr = arr.transpose("stimulus", "y", "x", "channel")
        arr = _Rows(arr)
    if getattr(arr, "ndim", 0) == 0 or len(arr) == 0:
        raise ValueError(f"inputs must hold at least one stimulus along their first axis; got "
                         f"shape {tuple(arr.shape)}")
    if isinstance(arr, torch.Tensor):
        return len(arr), lambda a, b: arr[a:b]
    if arr.dtype == np.uint8:
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"uint8 inputs are read as images (n, y, x, 3); got shape "
                             f"{arr.shape}; pass float inputs as float arrays")
        prep.check_size(image_size)
        return len(arr), lambda a, b: prepare_images(arr[a:b], size=image_size, prep=prep)
    if np.issubdtype(arr.dtype, np.floating):
        return len(arr), lambda a, b: torch.from_numpy(  # a copy: memory-mapped files are
            np.array(arr[a:b], dtype=np.float32))       # read-only, torch wants writable
    raise TypeError(f"numpy inputs must be float (used as float32) or uint8 images; got "
                    f"dtype {arr.dtype}; pass a torch.Tensor for other input types")


def pick_tensor(output, *, path: str, output_index: int) -> torch.Tensor:
    """The tensor of a module's ``output``: element ``output_index`` of a tuple or list, again
    and again through nested ones, until a tensor."""
    seen = output
    while isinstance(seen, tuple | list):
        if not -len(seen) <= output_index < len(seen):
            raise ValueError(f"layer {path!r} returns a {type(seen).__name__} of {len(seen)} "
                             f"elements; output_index={output_index} is out of range")
        seen = seen[output_index]
    if isinstance(seen, Mapping):
        raise TypeError(f"layer {path!r} returns a dict (keys {list(seen)[:8]}); hook one of "
                        f"its submodules that returns a tensor instead")
    if not isinstance(seen, torch.Tensor):
        raise TypeError(f"layer {path!r} returns {type(seen).__name__}, not a tensor; hook a "
                        f"submodule that returns a tensor")
    return seen


def default_channel_axis(ndim: int) -> int:
    """1 for ``(N, C, H, W, ...)`` outputs, -1 (the last) for ``(N, T, D)`` sequences."""
    return 1 if ndim >= 4 else -1


def channel_of(ndim: int, channel_axis: int | None, path: str) -> int:
    """The non-negative channel axis of an ``ndim``-axis output of layer ``path``."""
    axis = default_channel_axis(ndim) if channel_axis is None else channel_axis
    if not -ndim <= axis < ndim or axis % ndim == 0:
        raise ValueError(f"channel_axis={channel_axis} does not fit layer {path!r}, whose output "
                         f"has {ndim} axes (axis 0 is the batch); pass an axis in 1..{ndim - 1}")
    return axis % ndim


def path_key(path: str) -> int:
    """The number a layer's projection is seeded with: the CRC-32 of its module path."""
    return zlib.crc32(path.encode())


def projection_matrix(n_units: int, n_components: int, *, seed: int, index: int,
                      device: torch.device) -> torch.Tensor:
    """The float32 Gaussian matrix ``(n_units, n_components)``, entries N(0, 1/n_components),
    of the layer with key ``index`` (:func:`path_key`): drawn by a ``torch.Generator`` on
    ``device`` seeded with
    ``numpy.random.SeedSequence([seed, index]).generate_state(1, numpy.uint64)[0]``."""
    state = int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0])
    gen = torch.Generator(device=device)
    gen.manual_seed(state)
    m = torch.randn(n_units, n_components, generator=gen, device=device, dtype=torch.float32)
    return m / np.sqrt(n_components)


class Reducer:
    """Turns one layer's output into float32 ``(batch, units)`` on the model's device; the
    projection matrix is drawn on the first call (when the number of units is known)."""

    def __init__(self, path: str, index: int, *, reduction: str, n_components: int | None,
                 seed: int, channel_axis: int | None, device: torch.device) -> None:
        self.path, self.index, self.reduction = path, index, reduction
        self.n_components, self.seed, self.channel_axis = n_components, seed, channel_axis
        self.device = device
        self.matrix: torch.Tensor | None = None

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        t = t.detach().to(torch.float32)
        if t.ndim < 2:
            raise ValueError(f"layer {self.path!r} returns shape {tuple(t.shape)}; expected "
                             f"(batch, ...) with at least 2 axes")
        if t.ndim > 2 and self.reduction in ("mean", "max"):
            c = channel_of(t.ndim, self.channel_axis, self.path)
            axes = [a for a in range(1, t.ndim) if a != c]
            t = t.mean(dim=axes) if self.reduction == "mean" else t.amax(dim=axes)
        t = t.reshape(len(t), -1)
        if self.reduction == "random_projection" and t.shape[1] > self.n_components:
            if self.matrix is None:
                self.matrix = projection_matrix(t.shape[1], self.n_components, seed=self.seed,
                                                index=self.index, device=t.device)
            if self.matrix.shape[0] != t.shape[1]:
                raise ValueError(f"layer {self.path!r} gave {t.shape[1]} units and "
                                 f"{self.matrix.shape[0]} before; its output must have the "
                                 "same shape for every input and every call (a module called "
                                 "more than once in one forward, such as a shared nn.ReLU, "
                                 "differs between its calls here: read a module that is "
                                 "called once)")
            t = t @ self.matrix.to(t.device)
        return t


def hooked_forward(model: nn.Module, x: torch.Tensor, modules: Mapping[str, nn.Module],
                   reducers: Mapping[str, Reducer], *, output_index: int
                   ) -> dict[str, np.ndarray]:
    """One forward pass of ``x`` under ``no_grad`` in eval mode, ``{path: reduced output}`` of
    the hooked modules (a module called several times keeps its last call); every module's
    train/eval mode is restored and the hooks removed, also when the forward fails."""
    got: dict[str, torch.Tensor] = {}

    def hook_for(path: str):
        def hook(_module: nn.Module, _args: tuple, output) -> None:
            t = pick_tensor(output, path=path, output_index=output_index)
            # reduced at once and copied: a later in-place op in the forward cannot touch it
            got[path] = reducers[path](t).to("cpu", copy=True)
        return hook

    modes = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        handles = [m.register_forward_hook(hook_for(p)) for p, m in modules.items()]
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode
    missing = [p for p in modules if p not in got]
    if missing:
        raise ValueError(f"layers {missing} were not called by the model's forward pass; pick "
                         f"modules the forward uses (rsa_bias.training.module_layers(model) "
                         f"lists every module, used or not)")
    for path, a in got.items():
        if a.shape[0] != len(x):
            raise BatchAxisError(f"layer {path!r} gave {a.shape[0]} rows for a batch of {len(x)} "
                                 f"inputs; its first axis must be the batch (batch_first=True "
                                 f"for sequence models)")
    return {p: got[p].numpy() for p in modules}


class BatchAxisError(ValueError):
    """A hooked output whose first axis is not the batch."""


def check_one_input(model: nn.Module, x: torch.Tensor, got: Mapping[str, np.ndarray],
                    modules: Mapping[str, nn.Module], reducers: Mapping[str, Reducer], *,
                    output_index: int) -> None:
    """Run the model on the last input of the first batch alone and check what the batch
    gave for it (the last: a module recurring over the batch has seen all the others).

    An output whose first axis is not 1 there is refused (:class:`BatchAxisError`): a
    sequence-first module ``(T, N, D)`` whose ``T`` equals the batch size passes the row
    count of a batch. A row that differs from the batch's warns: the model mixes
    the inputs of a batch (a sequence-first module recurring over the batch, batch
    statistics in a normalisation, randomness in ``forward``), so its activations depend on
    the batch size. The random-number state and every buffer are restored afterwards, so
    the check changes no later batch; a model that cannot take a single input is not
    checked (a warning says so).
    """
    def rows_first(reduce: Reducer):
        return lambda t: reduce(t) if t.dim() and t.shape[0] == 1 else t.new_zeros(
            (t.shape[0] if t.dim() else 0, 0))

    saved = [(m, key, b, b.detach().clone()) for m in model.modules()
             for key, b in m._buffers.items() if b is not None]
    devices = [x.device] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            one = hooked_forward(model, x[-1:], modules,
                                 {p: rows_first(r) for p, r in reducers.items()},
                                 output_index=output_index)
    except BatchAxisError:
        raise
    except Exception as err:  # the model's own limits (a fixed batch size, ...)
        warnings.warn(f"the model could not run on a single input ({type(err).__name__}: "
                      f"{err}), so the batch axis of its layers and whether it mixes the "
                      f"inputs of a batch were not checked", RuntimeWarning, stacklevel=4)
        return
    finally:
        with torch.no_grad():
            for m, key, original, copy in saved:
                original.copy_(copy)
                m._buffers[key] = original
    for path in modules:
        batch, alone = got[path][-1], one[path][0]
        scale = float(np.abs(batch).max(initial=0.0))
        diff = float(np.abs(batch - alone).max(initial=0.0))
        if diff > 1e-3 * scale + 1e-6:
            warnings.warn(f"layer {path!r}: an input's activations differ between a "
                          f"batch of {len(x)} and the input alone (largest difference {diff:.3g}, "
                          f"largest value {scale:.3g}); the model mixes the inputs of a batch "
                          f"(a sequence-first module recurring over the batch, batch statistics "
                          f"in a normalisation, or randomness in forward), so its activations "
                          f"depend on batch_size", RuntimeWarning, stacklevel=4)
