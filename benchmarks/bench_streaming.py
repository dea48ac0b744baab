"""Activations larger than memory: write, CKA and feature variance explained with bounded memory.

A generated activation file (default 500 000 stimuli x 4 000 units of float32 = 8.0 GB for the
layer ``big``, plus a second layer ``small`` of 500 units) goes through

1. extraction-style writing: :class:`rsa_bias.store.stream.ActivationWriter`, one batch of
   stimuli at a time (as ``rsa-bias extract`` writes a model's layers),
2. linear CKA (biased HSIC) between the two layers, streamed over Dask chunks
   (``read_activations(path, chunks=...)`` and :func:`rsa_bias.cka`),
3. feature variance explained of ``big`` (two binary features, fitted on the ``val`` stimuli,
   measured on the ``test`` ones), streamed likewise,

and the script prints each stage's time and the process's peak resident memory
(``resource.getrusage``). Beside it, a child process runs the in-memory path (numpy arrays
in memory, the same calls) on a smaller size (``--small`` stimuli) and prints its peak, and the
streamed path is checked against it on that size. The files are deleted afterwards.

The activations are a random linear read-out of the features plus noise, drawn batch by batch
from ``numpy.random.default_rng([seed, batch])``, so any size is reproducible and the small
in-memory run sees exactly the first rows of the large one.

Run: ``python benchmarks/bench_streaming.py [--stimuli 500000] [--units 4000] [--folder /tmp]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from rsa_bias import cka, feature_variance_explained
from rsa_bias.store import layer_activation, read_activations
from rsa_bias.store.stream import ActivationWriter

BATCH = 5000


def peak_gb() -> float:
    """Peak resident memory of this process so far (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def stimuli(n: int) -> xr.Dataset:
    i = np.arange(n)
    return xr.Dataset(coords={"stimulus": i, "feature_a": ("stimulus", i % 2),
                              "feature_b": ("stimulus", (i // 2) % 2),
                              "split": ("stimulus", np.where(i % 3 == 0, "test", "val"))},
                      attrs={"feature_names": ["a", "b"]})


def batch(start: int, stop: int, units: int, units_b: int, seed: int = 0) -> dict:
    """Rows ``start:stop`` (``start`` a multiple of BATCH) of both layers."""
    w = np.random.default_rng([seed, 10**9]).normal(size=(2, units + units_b))
    i = np.arange(start, stop)
    f = np.stack([2.0 * (i % 2) - 1, 2.0 * ((i // 2) % 2) - 1], axis=1)
    rng = np.random.default_rng([seed, start // BATCH])
    phi = (f @ w + rng.normal(size=(len(i), units + units_b))).astype(np.float32)
    return {"big": phi[:, :units], "small": phi[:, units:]}


def generated(n: int, units: int, units_b: int) -> dict:
    parts = [batch(s, min(n, s + BATCH), units, units_b) for s in range(0, n, BATCH)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def measures(x, y) -> dict:
    t0 = time.perf_counter()
    c = float(cka(x, y, kernel="linear", hsic="biased"))
    t1 = time.perf_counter()
    ve = feature_variance_explained(x)
    t2 = time.perf_counter()
    return {"cka": c, "r2": ve["r2"].values.tolist(), "r2_joint": float(ve["r2_joint"]),
            "cka_s": t1 - t0, "ve_s": t2 - t1}


def in_memory(n: int, units: int, units_b: int) -> dict:
    data, st = generated(n, units, units_b), stimuli(n)
    coords = {k: v for k, v in st.coords.items()}
    x = xr.DataArray(data["big"].astype(np.float64), dims=("stimulus", "unit"), coords=coords,
                     attrs={"feature_names": ["a", "b"]})
    y = xr.DataArray(data["small"].astype(np.float64), dims=("stimulus", "unit"),
                     coords=coords, attrs={"feature_names": ["a", "b"]})
    return {**measures(x, y), "peak_gb": peak_gb(), "data_gb": data["big"].nbytes / 2**30}


def streamed(path: Path, n: int, units: int, units_b: int, chunk: int) -> dict:
    t0 = time.perf_counter()
    with ActivationWriter(path, stimuli(n), attrs={"model_class": "bench"}) as w:
        for s in range(0, n, BATCH):
            w.append(batch(s, min(n, s + BATCH), units, units_b))
    write_s, write_peak = time.perf_counter() - t0, peak_gb()
    tree = read_activations(path, chunks={"stimulus": chunk})
    try:
        out = measures(layer_activation(tree, "big"), layer_activation(tree, "small"))
    finally:
        tree.close()
    return {**out, "write_s": write_s, "write_peak_gb": write_peak, "peak_gb": peak_gb(),
            "file_gb": path.stat().st_size / 2**30}


def child(args: argparse.Namespace, n: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--units", str(args.units),
           "--units-b", str(args.units_b)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True
                                     ).stdout.splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stimuli", type=int, default=500_000)
    p.add_argument("--units", type=int, default=4000)
    p.add_argument("--units-b", type=int, default=500)
    p.add_argument("--small", type=int, default=30_000)
    p.add_argument("--chunk", type=int, default=2500, help="stimuli per Dask chunk")
    p.add_argument("--folder", default=tempfile.gettempdir())
    p.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(in_memory(args.child, args.units, args.units_b)))
        return
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs")
    mem = child(args, args.small)
    small_path = Path(args.folder) / f"bench_streaming_small_{os.getpid()}.nc"
    big_path = Path(args.folder) / f"bench_streaming_{os.getpid()}.nc"
    try:
        check = streamed(small_path, args.small, args.units, args.units_b, args.chunk)
        small_path.unlink()
        diff = max(abs(check["cka"] - mem["cka"]),
                   *np.abs(np.subtract(check["r2"], mem["r2"])).tolist(),
                   abs(check["r2_joint"] - mem["r2_joint"]))
        print(f"in memory, {args.small} x {args.units}: {mem['data_gb']:.2f} GB of float32, "
              f"peak RSS {mem['peak_gb']:.2f} GB; CKA {mem['cka_s']:.1f} s, variance "
              f"explained {mem['ve_s']:.1f} s")
        print(f"streamed = in memory on that size: max |difference| {diff:.1e} "
              "(the file is float32, the in-memory arrays float64 of the same values)")
        big = streamed(big_path, args.stimuli, args.units, args.units_b, args.chunk)
    finally:
        small_path.unlink(missing_ok=True)
        big_path.unlink(missing_ok=True)
    print(f"streamed, {args.stimuli} x {args.units} (+{args.units_b} units): file "
          f"{big['file_gb']:.2f} GB written in {big['write_s']:.0f} s (peak RSS "
          f"{big['write_peak_gb']:.2f} GB); CKA {big['cka_s']:.0f} s (CKA = {big['cka']:.4f}); "
          f"variance explained {big['ve_s']:.0f} s (R² a, b = "
          f"{big['r2'][0]:.4f}, {big['r2'][1]:.4f})")
    print(f"peak RSS of the whole streamed run: {big['peak_gb']:.2f} GB (target <= 2 GB); the "
          f"in-memory path would hold >= {2 * big['file_gb']:.1f} GB (float64 copy of one "
          "layer)")


if __name__ == "__main__":
    main()
