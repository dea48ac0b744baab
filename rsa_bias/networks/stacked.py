"""Ensembles of same-shaped networks as one stacked computation.

:func:`stack_models` turns ``k`` networks of one architecture (each built and initialised
on its own, with its own seed and config values) into one module whose parameters carry a
leading member axis ``(k, ...)``; :meth:`StackedNetwork.member_state_dict` gives member
``i`` back as an ordinary ``state_dict``. Every member computes exactly what it would alone,
up to float32 rounding:

* linear layers are batched matrix products (``torch.baddbmm``) over ``(k, batch, unit)``;
* conv layers are one grouped convolution (``groups=k``) over ``(batch, k * channel, y, x)``,
  so batch and group normalisation keep per-member statistics and running averages (a
  ``BatchNorm2d`` of ``k * channel`` channels normalises each member's channels apart);
* dropout draws an independent mask for each member from that member's own generator, at
  that member's own rate.

A member's input is its own minibatch, ``x`` of shape ``(k, batch, ...)``; evaluation and
snapshots pass one shared ``(n, ...)`` input to every member (``shared=True``), which the
first layer broadcasts without copying it ``k`` times.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rsa_bias.networks.cnn import CNN, ConvBlock, GlobalAveragePool
from rsa_bias.networks.mlp import MLP, HiddenLayer


def _stack(tensors: Sequence[torch.Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.stack([t.detach() for t in tensors]).contiguous())


class _BatchedLinear(torch.autograd.Function):
    """``baddbmm(bias, x, weight^T)`` whose weight gradient is computed in the weight's own
    layout, ``grad^T @ x`` (the product autograd forms, ``(x^T @ grad)^T``, comes out
    transposed and is copied into place: a third of a small MLP's backward pass). Both sum
    the same products in the same order, so the bits are those of ``nn.Linear``'s."""

    @staticmethod
    def forward(x, weight, bias):
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, weight, _ = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, torch.bmm(grad.transpose(1, 2), x), grad.sum(dim=1)


class StackedLinear(nn.Module):
    """``k`` linear layers: weight ``(k, out, in)``, bias ``(k, out)``."""

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = _stack([m.weight for m in layers])
        self.bias = _stack([m.bias for m in layers])

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        """``(k, batch, in) -> (k, batch, out)``; ``shared``: one ``(batch, in)`` for all."""
        if shared:
            return torch.matmul(x, self.weight.transpose(1, 2)) + self.bias.unsqueeze(1)
        if self.weight.shape[1] == 1:  # one logit: the product nn.Linear's BLAS call makes
            return torch.bmm(self.weight, x.transpose(1, 2)).transpose(1, 2) + \
                self.bias.unsqueeze(1)
        return _BatchedLinear.apply(x, self.weight, self.bias)

    def member(self, i: int, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}weight": self.weight[i], f"{prefix}bias": self.bias[i]}


class StackedDropout(nn.Module):
    """Dropout of ``(k, ...)`` activations, member ``i`` at rate ``p[i]`` with mask draws
    from ``generators[i]`` (so its masks do not depend on the other members)."""

    def __init__(self, p: Sequence[float], generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.p = [float(v) for v in p]
        self.generators = list(generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not any(self.p):
            return x
        keep = torch.stack([
            (torch.rand(x.shape[1:], generator=g, device=x.device) >= p).to(x.dtype) / (1 - p)
            if p else torch.ones(x.shape[1:], dtype=x.dtype, device=x.device)
            for p, g in zip(self.p, self.generators, strict=True)])
        return x * keep


class StackedHidden(nn.Module):
    """``k`` :class:`~rsa_bias.networks.mlp.HiddenLayer` s: linear -> activation -> dropout."""

    def __init__(self, layers: Sequence[HiddenLayer], dropout: StackedDropout) -> None:
        super().__init__()
        self.linear = StackedLinear([m.linear for m in layers])
        self.act = layers[0].act
        self.dropout = dropout

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        return self.dropout(self.act(self.linear(x, shared)))

    def member(self, i: int, prefix: str) -> dict[str, torch.Tensor]:
        return self.linear.member(i, f"{prefix}linear.")


class StackedConv(nn.Module):
    """``k`` :class:`~rsa_bias.networks.cnn.ConvBlock` s on ``(batch, k * channel, y, x)``."""

    def __init__(self, blocks: Sequence[ConvBlock]) -> None:
        super().__init__()
        first = blocks[0]
        self.k = len(blocks)
        self.padding = first.conv.padding
        self.weight = _stack([b.conv.weight for b in blocks])  # (k, out, in, ky, kx)
        self.bias = _stack([b.conv.bias for b in blocks])
        self.norm_kind = type(first.norm).__name__
        if isinstance(first.norm, nn.BatchNorm2d):
            self.norm_weight = _stack([b.norm.weight for b in blocks])
            self.norm_bias = _stack([b.norm.bias for b in blocks])
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, torch.stack([getattr(b.norm, name) for b in blocks]))
            self.momentum, self.eps = first.norm.momentum, first.norm.eps
        elif isinstance(first.norm, nn.GroupNorm):
            self.norm_weight = _stack([b.norm.weight for b in blocks])
            self.norm_bias = _stack([b.norm.bias for b in blocks])
            self.groups, self.eps = first.norm.num_groups, first.norm.eps
        self.act = first.act
        self.pool = first.pool

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        k, c_out = self.weight.shape[:2]
        w = self.weight.reshape(k * c_out, *self.weight.shape[2:])
        x = F.conv2d(x, w, self.bias.reshape(-1), padding=self.padding,
                     groups=1 if shared else k)
        return self.pool(self.act(self._norm(x)))

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_kind == "BatchNorm2d":
            if self.training:
                self.num_batches_tracked.add_(1)
            return F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1),
                                self.norm_weight.reshape(-1), self.norm_bias.reshape(-1),
                                self.training, self.momentum, self.eps)
        if self.norm_kind == "GroupNorm":
            return F.group_norm(x, self.k * self.groups, self.norm_weight.reshape(-1),
                                self.norm_bias.reshape(-1), self.eps)
        return x

    def member(self, i: int, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}conv.weight": self.weight[i]}
        if self.bias is not None:  # a conv followed by a norm may have none (the ResNet's)
            out[f"{prefix}conv.bias"] = self.bias[i]
        if self.norm_kind in ("BatchNorm2d", "GroupNorm"):
            out[f"{prefix}norm.weight"] = self.norm_weight[i]
            out[f"{prefix}norm.bias"] = self.norm_bias[i]
        if self.norm_kind == "BatchNorm2d":
            out.update({f"{prefix}norm.{n}": getattr(self, n)[i]
                        for n in ("running_mean", "running_var", "num_batches_tracked")})
        return out


class StackedNetwork(nn.Module):
    """``k`` same-shaped networks with named layers, as one module.

    ``forward(x)`` takes ``(k, batch, ...)`` (each member its own minibatch) or, with
    ``shared=True``, one ``(batch, ...)`` input for all, and returns ``{head: logits}`` of
    shape ``(k, batch)`` for a binary head and ``(k, batch, n_values)`` otherwise.
    :meth:`forward_layers` also returns the named layers' outputs, ``(k, batch, ...)``.
    """

    n_members: int
    layer_names: list[str]

    def forward(self, x: torch.Tensor, shared: bool = False) -> dict[str, torch.Tensor]:
        return self.forward_layers(x, shared)[0]

    def forward_layers(self, x: torch.Tensor, shared: bool = False):
        raise NotImplementedError

    def _heads(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, head in self.heads.items():
            logits = head(x)
            out[name] = logits.squeeze(-1) if self.n_values[name] == 2 else logits
        return out

    def member_state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Member ``i``'s parameters and buffers, keyed as its own ``state_dict`` is."""
        state = {}
        for name, module in self.layers.items():
            state.update(module.member(i, f"{self.prefixes[name]}{name}."))
        for name, head in self.heads.items():
            state.update(head.member(i, f"heads.{name}."))
        return {k: v.detach().clone() for k, v in state.items()}


class StackedMLP(StackedNetwork):
    """``k`` :class:`~rsa_bias.networks.mlp.MLP` s (see :class:`StackedNetwork`)."""

    def __init__(self, members: Sequence[MLP], dropout: StackedDropout) -> None:
        super().__init__()
        self.n_members = len(members)
        self.layer_names = members[0].layer_names
        self.layers = nn.ModuleDict({
            name: StackedHidden([m.hidden[name] for m in members], dropout)
            for name in self.layer_names})
        self.prefixes = dict.fromkeys(self.layer_names, "hidden.")
        self.n_values = dict.fromkeys(members[0].heads, 2)
        self.heads = nn.ModuleDict({h: StackedLinear([m.heads[h] for m in members])
                                    for h in members[0].heads})

    def forward_layers(self, x: torch.Tensor, shared: bool = False):
        seen = {}
        for name, layer in self.layers.items():
            x = layer(x, shared)
            shared = False
            seen[name] = x
        return self._heads(x), seen


class StackedCNN(StackedNetwork):
    """``k`` :class:`~rsa_bias.networks.cnn.CNN` s (see :class:`StackedNetwork`).

    The conv blocks run on ``(batch, k * channel, y, x)``; the global average pool returns
    to ``(k, batch, channel)`` for the fc layers and heads. Recorded conv outputs are given
    back as ``(k, batch, channel, y, x)``.
    """

    def __init__(self, members: Sequence[CNN], dropout: StackedDropout) -> None:
        super().__init__()
        first = members[0]
        self.n_members = len(members)
        self.layer_names = first.layer_names
        self.layers = nn.ModuleDict(
            {name: StackedConv([m.conv[name] for m in members]) for name in first.conv}
            | {name: StackedHidden([m.fc[name] for m in members], dropout)
               for name in first.fc})
        self.prefixes = {name: "conv." if name in first.conv else "fc." for name in self.layers}
        self.conv_names, self.fc_names = list(first.conv), list(first.fc)
        self.n_values = dict(first.n_values)
        self.heads = nn.ModuleDict({h: StackedLinear([m.heads[h] for m in members])
                                    for h in first.heads})

    def forward_layers(self, x: torch.Tensor, shared: bool = False):
        k = self.n_members
        if not shared:  # (k, batch, c, y, x) -> (batch, k * c, y, x)
            x = x.transpose(0, 1).reshape(x.shape[1], -1, *x.shape[3:])
        seen = {}
        for name in self.conv_names:
            x = self.layers[name](x, shared)
            shared = False
            seen[name] = x.reshape(x.shape[0], k, -1, *x.shape[2:]).transpose(0, 1)
        x = GlobalAveragePool()(x).reshape(x.shape[0], k, -1).transpose(0, 1)
        seen["pool"] = x
        for name in self.fc_names:
            x = self.layers[name](x)
            seen[name] = x
        return self._heads(x), seen


_STACKED = {MLP: StackedMLP, CNN: StackedCNN}


def _registry() -> dict[type, type]:
    """``_STACKED``, with the stacked versions kept in modules of their own registered (they
    import this module, so they are imported here, on first use)."""
    from rsa_bias.networks import stacked_resnet  # noqa: F401  (adds ResNet)

    return _STACKED


def stack_models(models: Sequence[nn.Module], *, dropout: Sequence[float] | None = None,
                 generators: Sequence[torch.Generator] | None = None) -> StackedNetwork:
    """One :class:`StackedNetwork` holding copies of ``models``' parameters and buffers.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Networks of one architecture and shape (:class:`~rsa_bias.networks.MLP`,
        :class:`~rsa_bias.networks.CNN` or :class:`~rsa_bias.networks.ResNet`; see
        :func:`has_stacked`), e.g. each built by
        :func:`~rsa_bias.networks.build_model` after seeding torch with its seed; they may
        differ in parameter values and dropout rate.
    dropout : sequence of float, optional
        Each member's dropout rate (default: read from the models).
    generators : sequence of torch.Generator, optional
        Each member's generator of dropout masks (default: seeded 0, 1, ...).

    Returns
    -------
    StackedNetwork
        The ensemble; ``member_state_dict(i)`` loads into ``models[i]``.

    Raises
    ------
    ValueError
        For no models, models of different types or shapes, or an architecture without a
        stacked version.
    """
    if not models:
        raise ValueError("stack_models needs at least one model")
    kind = type(models[0])
    if kind not in _registry():
        raise ValueError(f"no batched (stacked) version of {kind.__name__}; valid: "
                         f"{sorted(c.__name__ for c in _registry())} (train it sequentially)")
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in models]
    odd = [i for i, (m, s) in enumerate(zip(models, shapes, strict=True))
           if type(m) is not kind or s != shapes[0]]
    if odd:
        raise ValueError(f"models {odd} differ in type or shape from model 0; an ensemble "
                         "needs one architecture (only values may differ)")
    if dropout is None:
        dropout = [_dropout_rate(m) for m in models]
    if generators is None:
        generators = [torch.Generator().manual_seed(i) for i in range(len(models))]
    device = next(models[0].parameters()).device
    return _STACKED[kind](models, StackedDropout(dropout, generators)).to(device)


def has_stacked(model: nn.Module) -> bool:
    """Whether :func:`stack_models` has a batched version of ``model``'s architecture.

    Parameters
    ----------
    model : torch.nn.Module
        A network.

    Returns
    -------
    bool
        True for the architectures registered with a :class:`StackedNetwork`.
    """
    return type(model) in _registry()


def _dropout_rate(model: nn.Module) -> float:
    rates = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    return rates.pop() if rates else 0.0
