"""Batched ensembles: rsa_bias.training.train_ensemble vs the sequential loop over seeds.

``--seeds`` seeds (default 16 on the CPU, 64 on CUDA) of the experiment's network (default
``models/complexity_bias.toml``: MLP of depth 2, width 256, 12 inputs, 2 binary heads, batch
128, Adam) train for ``--steps`` steps, with the config's evaluations and snapshots at step 0
and the last step, two ways:

* sequentially: ``rsa_bias.training.train(stimuli, model_cfg, cfg, seed=s)`` once per seed,
* batched: one ``train_ensemble(stimuli, seed_members(model_cfg, cfg, seeds))``.

Both run on the same device at the same thread count, after an untimed warm-up of a few
steps; each is timed once (on CUDA the clock is read after ``torch.cuda.synchronize()``).
The script checks that every member ends with the parameters (and learning curves) of its
sequential run -- bit for bit on the CPU -- and prints both times, ms per step per model,
the ratio, the batched run's achieved GFLOP/s and the machine's float32 GEMM rate
(``torch.mm`` of square matrices, best of ``--gemm-repeats``) at the same thread count.

FLOPs counted per model and training step, over the linear layers (heads included), with
B the batch size: forward 2 B n_in n_out per layer; backward 2 B n_in n_out for the weight
gradient of every layer and 2 B n_in n_out for the input gradient of every layer but the
first. Not counted: biases, activations, the loss, Adam, minibatch gathering, evaluations
and snapshots (their share is printed); the GFLOP/s are thus a lower bound.

Run: ``python benchmarks/bench_ensemble.py [--seeds 16] [--steps 1000] [--threads N]
[--device auto|cpu|cuda] [--quick]``  (``--quick``: 200 steps, fewer GEMM repeats)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _timing import int_options
from torch import nn

from rsa_bias.config import load_config
from rsa_bias.tasks import make_task
from rsa_bias.training import resolve_device, seed_members, train, train_ensemble
from rsa_bias.training.loop import EVAL_SPLITS

CONFIG = Path(__file__).resolve().parent.parent / "models" / "complexity_bias.toml"


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    """Wall time of one call of ``fn`` (synchronising CUDA before each clock read)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, result


def gemm_rate(n: int, repeats: int, device: torch.device) -> tuple[float, float]:
    """Best-of-``repeats`` time of an ``n x n`` float32 ``torch.mm``, and its GFLOP/s."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    timed(lambda: torch.mm(a, b), device)  # warm-up
    best = min(timed(lambda: torch.mm(a, b), device)[0] for _ in range(repeats))
    return best, 2 * n**3 / best / 1e9


def linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    """``(n_in, n_out)`` of the model's linear layers, in order (hidden layers, then heads)."""
    return [(m.in_features, m.out_features) for m in model.modules()
            if isinstance(m, nn.Linear)]


def step_flops(shapes: list[tuple[int, int]], batch: int) -> tuple[int, int]:
    """Forward and forward+backward FLOPs of one training step of one model (see module doc);
    the first layer needs no input gradient."""
    macs = sum(i * o for i, o in shapes)
    forward = 2 * batch * macs
    backward = 2 * batch * macs + 2 * batch * (macs - shapes[0][0] * shapes[0][1])
    return forward, forward + backward


def max_param_diff(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        raise SystemExit(f"state_dict keys differ: {sorted(sa)} vs {sorted(sb)}")
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)


def main() -> None:
    p = int_options(__doc__, steps=1000, threads=torch.get_num_threads(), gemm_repeats=5)
    p.add_argument("--seeds", type=int, default=None,
                   help="ensemble size (default 16 on the CPU, 64 on CUDA)")
    p.add_argument("--gemm-size", type=int, default=None,
                   help="side of the square GEMM (default 2048 on the CPU, 8192 on CUDA)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--config", default=str(CONFIG), help="experiment config (TOML)")
    p.add_argument("--quick", action="store_true", help="200 steps, 2 GEMM repeats")
    p.add_argument("--fused", action="store_true",
                   help="training.fused = true on both sides (Adam's fused kernel)")
    args = p.parse_args()
    if args.quick:
        args.steps, args.gemm_repeats = 200, 2
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    k = args.seeds or (64 if device.type == "cuda" else 16)
    gemm_n = args.gemm_size or (8192 if device.type == "cuda" else 2048)
    seeds = list(range(k))

    def config(steps: int):
        return load_config(args.config, [f"training.steps={steps}", "training.snapshot_steps=[0]",
                                         f"training.device={device.type}",
                                         f"training.fused={str(args.fused).lower()}"])

    exp = config(args.steps)
    model_cfg, cfg = exp.model, exp.training
    stimuli = make_task(exp.task)

    warm = config(5)  # untimed: lazy initialisation of kernels, allocator, generators
    train(stimuli, warm.model, warm.training, seed=0, progress=False)
    train_ensemble(stimuli, seed_members(warm.model, warm.training, seeds[:2]), progress=False)

    t_seq, seq = timed(lambda: [train(stimuli, model_cfg, cfg, seed=s, progress=False)
                                for s in seeds], device)
    t_bat, bat = timed(lambda: train_ensemble(stimuli, seed_members(model_cfg, cfg, seeds),
                                              progress=False), device)
    t_mm, mm_rate = gemm_rate(gemm_n, args.gemm_repeats, device)

    diff = max(max_param_diff(a.model, b.model) for a, b in zip(seq, bat, strict=True))
    scale = max(float(v.abs().max()) for r in seq for v in r.model.state_dict().values())
    same_curves = all(a.history == b.history and a.eval_steps == b.eval_steps
                      for a, b in zip(seq, bat, strict=True))
    snap_diff = max(float(np.max(np.abs(a.snapshots[s][n] - b.snapshots[s][n])))
                    for a, b in zip(seq, bat, strict=True) for s in a.snapshots
                    for n in a.snapshots[s])

    shapes = linear_shapes(seq[0].model)
    fwd, per_step = step_flops(shapes, cfg.batch_size)
    flops = per_step * k * args.steps
    n_eval_stim = int(np.isin(stimuli.split.values, EVAL_SPLITS).sum())
    n_evals = len(seq[0].eval_steps) + len(seq[0].snapshots)
    extra = n_evals * fwd / cfg.batch_size * n_eval_stim * k  # forward passes, upper bound
    gflops = flops / t_bat / 1e9
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} threads")
    load = os.getloadavg()[0]
    arch = " -> ".join(str(i) for i, _ in shapes[: model_cfg.depth + 1])
    heads = len(shapes) - model_cfg.depth

    print(f"ensemble training, {k} seeds x {args.steps} steps, MLP {arch} + {heads} heads, "
          f"batch {cfg.batch_size}, {cfg.optimizer}, eval every {cfg.eval_every} "
          f"({n_eval_stim} stimuli), snapshots at {list(cfg.all_snapshot_steps)}; "
          f"{where}; torch {torch.__version__}; one timed run each; load average {load:.2f}")
    print(f"sequential train() x {k}:     {t_seq:8.2f} s   "
          f"{1e3 * t_seq / (k * args.steps):.3f} ms per step per model")
    print(f"batched train_ensemble:       {t_bat:8.2f} s   "
          f"{1e3 * t_bat / (k * args.steps):.3f} ms per step per model")
    print(f"speed-up sequential/batched:  {t_seq / t_bat:8.2f}x   "
          f"(target >= 20x with 64 seeds on the GPU)")
    print(f"max |param diff| vs sequential: {diff:.1e}  (largest |param| {scale:.2f}); "
          f"learning curves identical: {same_curves}; max |snapshot diff| {snap_diff:.1e}")
    print(f"FLOPs per model per step:     {per_step / 1e6:.2f} M (forward {fwd / 1e6:.2f} M; "
          f"evaluations + snapshots would add <= {100 * extra / flops:.1f}%)")
    print(f"batched achieved:             {gflops:8.2f} GFLOP/s")
    print(f"float32 torch.mm {gemm_n}x{gemm_n}:   {mm_rate:8.2f} GFLOP/s  "
          f"(best of {args.gemm_repeats}, {1e3 * t_mm:.1f} ms)")
    print(f"fraction of the GEMM rate:    {gflops / mm_rate:8.3f}")
    if args.fused:  # the fused kernel falls differently on stacked parameters (the docs)
        print("(--fused: not expected to be bit for bit; training amplifies the last bits)")
    elif device.type == "cpu" and (diff != 0.0 or not same_curves or snap_diff != 0.0):
        raise SystemExit("the batched run does not reproduce the sequential runs bit for bit "
                         "on the CPU")


if __name__ == "__main__":
    main()
