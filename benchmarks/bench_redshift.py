"""Random networks on a grid: one batched computation vs the Python loop a user would write.

For ``--networks`` random tanh MLPs (weights and biases U(-1, 1), ``--width`` units) on a
``--grid`` x ``--grid`` grid over [-1, 1]², at each depth of ``--depths``, we time

* ``rsa_bias.networks.random_mlp.random_mlp_outputs`` (all networks as batched matrix
  products, chunked to stay in cache on a CPU),
* the loop a user writes with plain torch: per network an ``nn.Sequential`` of
  ``nn.Linear`` layers re-initialised with ``nn.init.uniform_``, then one forward pass,
* a lean loop over the same draws as rsa_bias (one ``torch.addmm`` per layer, no modules),
  the fastest a per-network loop gets,

check that the lean loop gives the batched outputs, and print the ratios; then the three
complexity measures of all functions at once (rsa_bias.analysis.complexity) vs a loop that
fits each function on its own (``numpy.fft.fftn``, ``numpy.linalg.lstsq`` on the Legendre
basis), and the two end to end. Every timing is the best of ``--repeats`` runs (the
measures: of one run).

Run: ``python benchmarks/bench_redshift.py [--networks 1000] [--grid 64] [--width 64]``
"""

from __future__ import annotations

import os

import numpy as np
import torch
from _timing import best_of, int_options
from numpy.polynomial import legendre
from torch import nn

from rsa_bias.analysis.complexity import fourier_frequency, polynomial_order
from rsa_bias.networks.random_mlp import grid_points, random_mlp_outputs, random_mlp_parameters


def module_loop(points: torch.Tensor, n: int, depth: int, width: int) -> torch.Tensor:
    """The hand-written loop: build, re-initialise and evaluate one network at a time."""
    out = torch.empty(n, len(points))
    for i in range(n):
        torch.manual_seed(i)
        layers: list[nn.Module] = []
        fan_in = points.shape[1]
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.Tanh()]
            fan_in = width
        layers.append(nn.Linear(fan_in, 1))
        net = nn.Sequential(*layers)
        with torch.no_grad():
            for p in net.parameters():
                nn.init.uniform_(p, -1.0, 1.0)
            out[i] = net(points)[:, 0]
    return out


def lean_loop(points: torch.Tensor, params: list, n: int) -> torch.Tensor:
    """The same draws as rsa_bias, one network at a time with ``torch.addmm``."""
    out = torch.empty(n, len(points))
    with torch.no_grad():
        for i in range(n):
            h = points
            for w, b in params[:-1]:
                h = torch.tanh(torch.addmm(b[i], h, w[i].T))
            w, b = params[-1]
            out[i] = torch.addmm(b[i], h, w[i].T)[:, 0]
    return out


def looped_measures(values: np.ndarray, max_order: int) -> tuple[np.ndarray, np.ndarray]:
    """Fourier mean frequency and Legendre order per function, one function at a time."""
    n = values.shape[-1]
    k = np.fft.fftfreq(n) * n
    radius = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij")))
    top = radius.max()
    vander = legendre.legvander(np.linspace(-1, 1, n), max_order)
    basis = np.einsum("yi,xj->yxij", vander, vander).reshape(n * n, -1)
    total = np.add.outer(np.arange(max_order + 1), np.arange(max_order + 1)).ravel()
    freq, order = np.empty(len(values)), np.empty(len(values))
    for i, f in enumerate(values):
        mag = np.abs(np.fft.fftn(f))
        mag[0, 0] = 0.0
        freq[i] = (mag * radius).sum() / mag.sum() / top
        coef = np.abs(np.linalg.lstsq(basis, f.ravel(), rcond=None)[0])
        coef[0] = 0.0
        order[i] = coef @ total / coef.sum() / total[-1]
    return freq, order


def main() -> None:
    parser = int_options(__doc__, networks=1000, grid=64, width=64, repeats=3, max_order=10)
    parser.add_argument("--depths", default="1,3,7")
    args = parser.parse_args()
    n, width = args.networks, args.width
    points_np = grid_points(args.grid, ndim=2)
    points = torch.as_tensor(points_np, dtype=torch.float32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.2f}; {n} networks, {args.grid}x{args.grid} grid, "
          f"width {width}")
    values, evaluation = None, {}
    for depth in map(int, args.depths.split(",")):
        t_batch, values = best_of(lambda d=depth: random_mlp_outputs(
            points_np, n_networks=n, activation="tanh", depth=d, width=width,
            scale=1.0), args.repeats)
        params = [(w.float(), b.float()) for w, b in random_mlp_parameters(
            n_networks=n, in_features=2, depth=depth, width=width, scale=1.0)]
        t_lean, lean = best_of(lambda p=params: lean_loop(points, p, n), args.repeats)
        t_module, _ = best_of(lambda d=depth: module_loop(points, n, d, width), args.repeats)
        diff = float((lean - values).abs().max() / values.abs().max())
        evaluation[depth] = (t_batch, t_module)
        print(f"depth {depth}: batched {t_batch:.3f} s | module loop {t_module:.3f} s "
              f"({t_module / t_batch:.1f}x) | lean loop {t_lean:.3f} s "
              f"({t_lean / t_batch:.1f}x) | max rel diff lean vs batched {diff:.1e}")
    funcs = values.double().numpy().reshape(n, args.grid, args.grid)
    t_vec, (f_vec, p_vec) = best_of(lambda: (
        fourier_frequency(funcs), polynomial_order(funcs, max_order=args.max_order)), 1)
    t_loop, (f_loop, p_loop) = best_of(lambda: looped_measures(funcs, args.max_order), 1)
    print(f"Fourier + Legendre measures of {n} functions: vectorised {t_vec:.3f} s | "
          f"per-function loop {t_loop:.3f} s ({t_loop / t_vec:.1f}x) | max diff "
          f"{max(np.abs(f_vec - f_loop).max(), np.abs(p_vec - p_loop).max()):.1e}")
    for depth, (t_batch, t_module) in evaluation.items():
        print(f"end to end, depth {depth} (evaluate + both measures): rsa_bias "
              f"{t_batch + t_vec:.3f} s | module loop + per-function fits "
              f"{t_module + t_loop:.3f} s ({(t_module + t_loop) / (t_batch + t_vec):.1f}x)")


if __name__ == "__main__":
    main()
