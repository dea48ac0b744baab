"""Adam and SGD for stacked ensembles: each member its own learning rate, weight decay and
momentum, and its own optimiser state.

Parameters of a :class:`~rsa_bias.networks.stacked.StackedNetwork` carry the member on
their first axis. Members are split into runs of consecutive members with the same
settings; each run is updated by PyTorch's own functional optimisers
(``torch.optim.adam.adam``, ``torch.optim.sgd.sgd``) on views of its slice, with the
implementation ``torch.optim.Adam`` / ``SGD`` choose by default for the device (one tensor at
a time on the CPU, ``foreach`` on CUDA), so a member's update is the one those optimisers
give the network alone, to the bit on the CPU. ``training.fused = true`` runs Adam's fused
kernel instead, on both paths: faster, but it rounds differently from the default kernel,
and on a stacked parameter than on a single one, in the last bits, which training amplifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from rsa_bias.config import TrainingConfig

_BETAS, _EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, as the sequential loop uses


def _cpu_adam(params, grads, state: dict, s: _Settings) -> None:
    """One Adam step on the CPU: the operations of ``torch.optim.Adam``'s default CPU
    implementation (``_single_tensor_adam``), in the same order and so with the same
    rounding, but with the denominator written into a buffer kept between steps instead of
    two fresh tensors per parameter and step."""
    beta1, beta2 = _BETAS
    buffers = state.setdefault("denom", [torch.empty_like(p) for p in params])
    for i, param in enumerate(params):
        grad, exp_avg, exp_avg_sq, step_t = (grads[i], state["exp_avg"][i],
                                             state["exp_avg_sq"][i], state["step"][i])
        step_t += 1
        if s.weight_decay != 0:
            grad = grad.add(param, alpha=s.weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = step_t.item()
        step_size = s.lr / (1 - beta1**step)
        denom = torch.sqrt(exp_avg_sq, out=buffers[i])
        denom.div_((1 - beta2**step) ** 0.5).add_(_EPS)
        param.addcdiv_(exp_avg, denom, value=-step_size)


@dataclass(frozen=True)
class _Settings:
    lr: float
    weight_decay: float
    momentum: float
    fused: bool


def _runs(settings: Sequence[_Settings]) -> list[tuple[int, int, _Settings]]:
    """``(start, stop, settings)`` of each run of consecutive members with equal settings."""
    runs: list[tuple[int, int, _Settings]] = []
    for i, s in enumerate(settings):
        if runs and runs[-1][2] == s:
            runs[-1] = (runs[-1][0], i + 1, s)
        else:
            runs.append((i, i + 1, s))
    return runs


class StackedOptimizer:
    """The optimiser of an ensemble: member ``i`` follows ``configs[i]``.

    Parameters
    ----------
    params : sequence of torch.nn.Parameter
        The stacked parameters, each ``(n_members, ...)``.
    configs : sequence of TrainingConfig
        One per member: its ``optimizer`` (all the same), ``lr``, ``weight_decay`` and
        (SGD) ``momentum``.
    """

    def __init__(self, params: Sequence[torch.nn.Parameter],
                 configs: Sequence[TrainingConfig]) -> None:
        kinds = {c.optimizer for c in configs}
        if len(kinds) != 1:
            raise ValueError(f"an ensemble's members need one optimizer; got {sorted(kinds)}")
        self.params = list(params)
        self.kind = kinds.pop()
        self.runs = _runs([_Settings(c.lr, c.weight_decay, c.momentum, c.fused)
                           for c in configs])
        self.state: list[dict] = [self._fresh(a, b) for a, b, _ in self.runs]

    def _fresh(self, a: int, b: int) -> dict:
        if self.kind == "adam":
            return {"step": [torch.zeros((), dtype=torch.float32, device=p.device)
                             for p in self.params],
                    "exp_avg": [torch.zeros_like(p[a:b]) for p in self.params],
                    "exp_avg_sq": [torch.zeros_like(p[a:b]) for p in self.params]}
        return {"momentum_buffer": [None] * len(self.params)}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for (a, b, s), state in zip(self.runs, self.state, strict=True):
            params = [p[a:b] for p in self.params]
            grads = [p.grad[a:b] for p in self.params]
            if self.kind == "adam" and params[0].device.type == "cpu" and not s.fused:
                _cpu_adam(params, grads, state, s)
            elif self.kind == "adam":
                adam(params, grads, state["exp_avg"], state["exp_avg_sq"], [], state["step"],
                     amsgrad=False,
                     beta1=_BETAS[0], beta2=_BETAS[1], lr=s.lr, weight_decay=s.weight_decay,
                     eps=_EPS, maximize=False, fused=s.fused or None)
            else:
                sgd(params, grads, state["momentum_buffer"], weight_decay=s.weight_decay,
                    momentum=s.momentum, lr=s.lr, dampening=0.0, nesterov=False,
                    maximize=False)

    def state_dict(self) -> dict:
        """The optimiser state, as tensors and lists (checkpoints load it with
        ``weights_only=True``)."""
        return {"kind": self.kind, "runs": [[a, b] for a, b, _ in self.runs],
                "state": [{k: list(v) for k, v in st.items() if k != "denom"}
                          for st in self.state]}

    def load_state_dict(self, state: dict) -> None:
        if state["kind"] != self.kind or state["runs"] != [[a, b] for a, b, _ in self.runs]:
            raise ValueError("the checkpoint's optimiser belongs to another ensemble")
        device = self.params[0].device
        self.state = [{k: [None if t is None else t.to(device) for t in v]
                       for k, v in st.items()} for st in state["state"]]
