"""Timing and command-line helpers shared by the benchmark scripts."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeats: int = 3) -> tuple[float, object]:
    """Run ``fn`` ``repeats`` times; return the fastest wall time and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def int_options(description: str | None, **defaults: int) -> argparse.ArgumentParser:
    """A parser with one ``--name`` integer option per keyword (``units_x`` -> ``--units-x``);
    the script adds any other options before parsing."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in defaults.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    return p
