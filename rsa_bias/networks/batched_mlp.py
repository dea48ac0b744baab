"""Independent ReLU MLPs trained as one batched computation.

:class:`BatchedMLP` holds ``R`` same-shaped fully connected ReLU networks whose parameters
carry a leading repeat axis (weights ``(R, out, in)``, biases ``(R, out)``); every layer is
one ``torch.baddbmm`` over ``(R, n, units)``. Repeat ``r`` starts from exactly the
parameters :func:`relu_mlp` builds with ``seeds[r]`` (PyTorch's default ``nn.Linear``
initialisation), and because Adam updates every parameter element on its own, one Adam over
the stacked parameters trains each repeat as it would be trained alone, up to float32
rounding (summing the repeats' losses keeps each repeat's gradient its own).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def relu_mlp(seed: int, *, depth: int, width: int, in_features: int = 1,
             out_features: int = 1) -> nn.Sequential:
    """One ReLU MLP with PyTorch's default initialisation, drawn from its own seed.

    The layers are built inside :func:`torch.random.fork_rng` seeded with ``seed``, so the
    global generator is left as it was and equal seeds give equal networks.

    Parameters
    ----------
    seed : int
        Seeds the initialisation.
    depth : int
        Number of hidden layers (each ``Linear`` then ``ReLU``).
    width : int
        Units per hidden layer.
    in_features : int, default 1
        Input dimension.
    out_features : int, default 1
        Output dimension (a linear read-out).

    Returns
    -------
    torch.nn.Sequential
        ``depth + 1`` linear layers with a ReLU after each but the last.
    """
    sizes = [in_features] + [width] * depth + [out_features]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out))
            if i < depth:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BatchedMLP(nn.Module):
    """``R`` ReLU MLPs as one module with parameters ``(R, out, in)`` and ``(R, out)``.

    Parameters
    ----------
    seeds : sequence of int
        One initialisation seed per repeat (repeats may share a seed: they then start
        equal); repeat ``r`` starts as ``relu_mlp(seeds[r], ...)``.
    depth : int
        Number of hidden layers.
    width : int
        Units per hidden layer.
    in_features : int, default 1
        Input dimension.
    out_features : int, default 1
        Output dimension.
    """

    def __init__(self, seeds: Sequence[int], *, depth: int, width: int, in_features: int = 1,
                 out_features: int = 1) -> None:
        super().__init__()
        if not seeds:
            raise ValueError("BatchedMLP needs at least one seed (one per repeat)")
        nets = [relu_mlp(s, depth=depth, width=width, in_features=in_features,
                         out_features=out_features) for s in seeds]
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([layers[j].weight.detach() for layers in linears]))
            for j in range(depth + 1))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[j].bias.detach() for layers in linears]))
            for j in range(depth + 1))

    @property
    def n_repeats(self) -> int:
        """The number of networks ``R``.

        Returns
        -------
        int
            The length of the leading repeat axis of every parameter.
        """
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every repeat's output on its inputs.

        Parameters
        ----------
        x : torch.Tensor
            ``(R, n, in)`` inputs, one batch per repeat, or ``(n, in)`` shared by all.

        Returns
        -------
        torch.Tensor
            ``(R, n, out)``: repeat ``r``'s network applied to its batch.
        """
        if x.dim() not in (2, 3) or x.shape[-1] != self.weights[0].shape[2]:
            raise ValueError(f"BatchedMLP takes (n, {self.weights[0].shape[2]}) or "
                             f"({self.n_repeats}, n, {self.weights[0].shape[2]}) inputs, got "
                             f"shape {tuple(x.shape)}")
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_repeats, -1, -1)
        last = len(self.weights) - 1
        for j, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            if j < last:
                x = torch.relu(x)
        return x

    def member(self, r: int) -> nn.Sequential:
        """Repeat ``r`` as an ordinary, independent ``nn.Sequential`` copy.

        Parameters
        ----------
        r : int
            The repeat, ``0 <= r < n_repeats``.

        Returns
        -------
        torch.nn.Sequential
            The same layers as :func:`relu_mlp` builds, holding copies of repeat ``r``'s
            current parameters (on their device): changing one leaves the other alone.
        """
        if not 0 <= r < self.n_repeats:
            raise IndexError(f"repeat {r} out of range for {self.n_repeats} repeats")
        depth = len(self.weights) - 1
        layers: list[nn.Module] = []
        for j, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            lin = nn.utils.skip_init(nn.Linear, w.shape[2], w.shape[1], device=w.device,
                                     dtype=w.dtype)
            with torch.no_grad():
                lin.weight.copy_(w[r])
                lin.bias.copy_(b[r])
            layers.append(lin)
            if j < depth:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)
