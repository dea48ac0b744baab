"""Random (untrained) MLPs evaluated on a grid, thousands at once (Teney et al. 2024).

A random MLP maps a point of [-1, 1]^d to one number: ``depth`` hidden layers of ``width``
units, then a linear output. Hidden layer ``l`` computes ``a(W_l h + b_l)``; with
``layer_norm`` the pre-activation is layer-normalised first (no learned gain or bias),
``a(LN(W_l h + b_l))``; with ``residual`` every hidden layer after the first (which changes
the width) adds its input, ``h + a(...)``. Every weight and bias is drawn by ``init`` at
``scale`` A:

* ``"uniform"``: U(-A, A) (the Neural Redshift paper's family);
* ``"normal"``: N(0, A²);
* ``"scaled_normal"``: N(0, A² / fan_in), biases too.

The networks of one call are one batched computation (a leading network axis on every
weight; GPU when ``device`` is one), chunked over networks to bound memory. The draws are
paired: the hidden layers and the output layer come from two streams seeded from ``seed``,
and the scale multiplies fixed standard draws, so the same seed gives networks that differ
between calls only in what the arguments change (a deeper network shares the shallower
one's first layers and its output layer).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from rsa_bias._api import choose
from rsa_bias.networks.mlp import activation as activation_module

#: Initialisation families of :func:`random_mlp_outputs`.
INITS = ("uniform", "normal", "scaled_normal")


def grid_points(n: int, *, ndim: int = 2) -> np.ndarray:
    """The ``n**ndim`` points of an evenly spaced grid over [-1, 1]^ndim, in raster order.

    Parameters
    ----------
    n : int
        Points per axis (``numpy.linspace(-1, 1, n)``).
    ndim : {2, 1}, default 2
        Number of grid axes.

    Returns
    -------
    numpy.ndarray
        ``(n**ndim, ndim)`` float64; column ``j`` is the coordinate along grid axis ``j``
        (``(y, x)`` in 2-D), the last axis varying fastest, so that outputs reshaped to
        ``(n, n)`` are the function as an image.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (points per grid axis); got {n!r}")
    if ndim not in (1, 2):
        raise ValueError(f"unknown ndim {ndim!r}; valid: [1, 2]")
    axis = np.linspace(-1.0, 1.0, int(n))
    mesh = np.meshgrid(*([axis] * ndim), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _streams(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Two independent CPU generators (hidden layers, output layer) derived from ``seed``."""
    states = np.random.SeedSequence(int(seed)).spawn(2)
    return tuple(torch.Generator().manual_seed(int(s.generate_state(1, np.uint64)[0] >> 1))
                 for s in states)


def _draw(gen: torch.Generator, shape: tuple[int, ...], init: str, scale: float,
          fan_in: int) -> torch.Tensor:
    """Standard draws of ``init`` times its scale (paired across scales)."""
    if init == "uniform":
        base = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1
        return base * scale
    base = torch.randn(shape, generator=gen, dtype=torch.float64)
    return base * (scale / math.sqrt(fan_in) if init == "scaled_normal" else scale)


def random_mlp_parameters(*, n_networks: int, in_features: int, depth: int, width: int,
                          scale: float, init: str = "uniform", seed: int = 0
                          ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The weights and biases of ``n_networks`` random MLPs, layer by layer.

    Parameters
    ----------
    n_networks : int
        Number of networks.
    in_features : int
        Input dimension.
    depth : int
        Hidden layers (0: a linear function).
    width : int
        Units per hidden layer.
    scale : float
        The scale A of ``init``.
    init : {"uniform", "normal", "scaled_normal"}, default "uniform"
        The family (module docstring).
    seed : int, default 0
        Seeds both streams.

    Returns
    -------
    list of (torch.Tensor, torch.Tensor)
        ``depth + 1`` pairs ``(W (n_networks, out, in), b (n_networks, out))`` in float64
        on the CPU, the output layer last.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {list(INITS)}")
    for name, value, low in (("n_networks", n_networks, 1), ("in_features", in_features, 1),
                             ("depth", depth, 0), ("width", width, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0 (the A of U(-A, A)); got {scale!r}")
    hidden, output = _streams(seed)
    layers, fan_in = [], in_features
    for _ in range(depth):
        w = _draw(hidden, (n_networks, width, fan_in), init, scale, fan_in)
        b = _draw(hidden, (n_networks, width), init, scale, fan_in)
        layers.append((w, b))
        fan_in = width
    # the output layer's draws do not depend on the depth: the widest case, cut to fan_in
    w = _draw(output, (n_networks, 1, max(width, in_features)), init, scale, fan_in)
    b = _draw(output, (n_networks, 1), init, scale, fan_in)
    layers.append((w[:, :, :fan_in].contiguous(), b))
    return layers


def random_mlp_outputs(points: np.ndarray | torch.Tensor, *, n_networks: int, activation: str,
                       depth: int, width: int = 64, scale: float = 1.0, init: str = "uniform",
                       residual: bool = False, layer_norm: bool = False, seed: int = 0,
                       device: str = "cpu", chunk: int | None = None,
                       dtype: str = "float32") -> torch.Tensor:
    """The outputs of ``n_networks`` random MLPs at ``points``, as one batched computation.

    Parameters
    ----------
    points : array-like, shape (n_points, in_features)
        The inputs, e.g. :func:`grid_points`.
    n_networks : int
        Number of networks.
    activation : str
        Activation name (:func:`rsa_bias.networks.mlp.activation`: relu, gelu, silu, selu,
        tanh, sigmoid, gaussian, sine, ...).
    depth : int
        Hidden layers (0: a linear function).
    width : int, default 64
        Units per hidden layer.
    scale : float, default 1.0
        The scale A of ``init``.
    init : {"uniform", "normal", "scaled_normal"}, default "uniform"
        The family (module docstring).
    residual : bool, default False
        Add each hidden layer's input to its output (all but the first hidden layer).
    layer_norm : bool, default False
        Layer-normalise every pre-activation (no learned gain or bias).
    seed : int, default 0
        Seeds the draws (:func:`random_mlp_parameters`).
    device : str, default "cpu"
        Where to compute ("cuda" on a GPU).
    chunk : int, optional
        Networks computed at once. Default: as many as keep one hidden layer's activations
        near 8 MB on a CPU (in cache: on a 64 x 64 grid at width 64, 8 networks; larger
        chunks are up to 4x slower there) and near 512 MB on a GPU.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the computation. A network that is nearly constant (deep sigmoid or
        Gaussian networks at small weight scales vary by 1e-6 of their value) is, in
        float32, a few rounding steps: complexity measures then measure the rounding.
        float64 takes about twice as long on a CPU.

    Returns
    -------
    torch.Tensor
        ``(n_networks, n_points)`` of ``dtype`` on ``device``.
    """
    act = activation_module(activation)
    tdtype = choose({"float32": torch.float32, "float64": torch.float64}, dtype, "dtype")
    x = torch.as_tensor(np.asarray(points, dtype=dtype), device=device)
    if x.ndim != 2:
        raise ValueError(f"points must be (n_points, in_features); got shape {tuple(x.shape)}")
    layers = random_mlp_parameters(n_networks=n_networks, in_features=x.shape[1], depth=depth,
                                   width=width, scale=scale, init=init, seed=seed)
    layers = [(w.to(device, tdtype), b.to(device, tdtype)) for w, b in layers]
    if chunk is None:
        budget = 2**27 if torch.device(device).type == "cuda" else 2**21
        budget //= x.element_size() // 4  # the same bytes in float64
        chunk = max(1, budget // (x.shape[0] * max(width, 1)))
    out = torch.empty(n_networks, x.shape[0], device=device, dtype=tdtype)
    with torch.no_grad():
        for start in range(0, n_networks, chunk):
            part = slice(start, start + chunk)
            h = x.expand(layers[-1][0][part].shape[0], -1, -1)
            for i, (w, b) in enumerate(layers[:-1]):
                pre = torch.baddbmm(b[part].unsqueeze(1), h, w[part].transpose(1, 2))
                if layer_norm:
                    pre = F.layer_norm(pre, (pre.shape[-1],))
                h = h + act(pre) if residual and i > 0 else act(pre)
            w, b = layers[-1]
            out[part] = torch.baddbmm(b[part].unsqueeze(1), h, w[part].transpose(1, 2))[..., 0]
    return out

