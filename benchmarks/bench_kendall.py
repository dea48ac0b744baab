"""Kendall τ-a, τ-b and Spearman bootstraps, and one exact τ-a comparison: rsa_bias vs rsatoolbox.

1. Bootstrap evaluation over stimuli (with the bootstrapped noise ceiling), 5 model
   RDMs x 20 subjects x 100 stimuli, 100 resamples:
   ``rsa_bias.analysis.rsa.inference.evaluate_models(bootstrap="stimulus")`` vs
   ``rsatoolbox.inference.eval_bootstrap_pattern``, for ``kendall_tau_a`` (rsatoolbox
   ``"tau-a"``), ``kendall_tau_b`` (rsatoolbox ``"kendall"``) and ``spearman``. Both
   use the *same* resamples (rsatoolbox's draws from ``np.random`` after
   ``np.random.seed(seed)`` are replayed and passed as ``indices``),
   and the replicates are checked to agree. τ-a and τ-b are also timed on the
   package's previous path (every resampled RDM built and compared, with the
   scipy-derived τ-a or scipy's τ-b), kept privately for the tests.
2. One τ-a comparison of two vectors of 499 500 dissimilarities (1000 stimuli):
   ``compare_rdms(method="kendall_tau_a")`` (exact integer counts) vs rsatoolbox's
   ``compare_kendall_tau_a`` and vs the previous scipy-τ_b-derived τ-a, continuous and
   tied data.

Targets: each bootstrap >= 20x rsatoolbox, and our τ-a bootstrap <= 3x our Spearman one.
With numba installed (``pip install "rsa_bias[fast]"``) τ-a pairs are counted by a
compiled kernel; the τ-a bootstrap is then also timed on the NumPy route alone.

Run: ``python benchmarks/bench_kendall.py [--boot 100] [--rt-boot 100] [--repeats 3]``
(``--rt-boot`` below ``--boot`` runs rsatoolbox on that many resamples and scales its time).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from _timing import best_of, int_options
from bench_inference import make_rdms, replay, run_rsatoolbox

from rsa_bias.analysis.rsa import _resample, _tau_kernel, compare
from rsa_bias.analysis.rsa.compare import compare_rdms
from rsa_bias.analysis.rsa.inference import evaluate_models

METHODS = ("kendall_tau_a", "kendall_tau_b", "spearman")



#: The previous comparisons: scipy's τ-b per pair of vectors, and the τ-a derived from it.
PREVIOUS = {"kendall_tau_a": lambda x, y, keep, sigma_k: compare._kendall(x, y, variant_a=True),
            "kendall_tau_b": lambda x, y, keep, sigma_k: compare._kendall(x, y, variant_a=False)}


def run_previous(models: np.ndarray, data: np.ndarray, draws: np.ndarray, method: str):
    """The previous path: build every resampled RDM and compare it with scipy."""
    saved = _resample._FAMILIES[method], compare._METHODS[method]
    _resample._FAMILIES[method], compare._METHODS[method] = _resample._EXPLICIT, PREVIOUS[method]
    try:
        return evaluate_models(models, data, method=method, indices={"stimulus": draws})
    finally:
        _resample._FAMILIES[method], compare._METHODS[method] = saved


def load_counter() -> bool:
    """Load the compiled τ-a counters (numba) if installed, and say how long it took."""
    start = time.perf_counter()
    fn = _tau_kernel.kernel()
    if fn is None:
        print("numba not installed (or RSA_BIAS_NUMBA=0): the NumPy counting route only")
        return False
    one = np.zeros((1, 2), dtype=np.int64)
    _tau_kernel.count_rows(one, one, None, fn)
    _tau_kernel.count_columns(one[0], one[0], one.T + 1, fn)
    print(f"compiled tau-a counters (numba) loaded in {time.perf_counter() - start:.2f} s "
          "(once per process, from numba's cache after the first time; a bootstrap\n"
          "  counting >= 5e6 entries loads them itself)")
    return True


def bootstraps(args) -> dict[str, float]:
    models, data = make_rdms(args.stimuli, args.models, args.subjects)
    draws = replay(args.stimuli, args.boot, args.seed)
    rt_boot = min(args.rt_boot, args.boot)
    print(f"bootstrap evaluation: {args.models} models x {args.subjects} subjects, "
          f"{args.stimuli} stimuli, {args.boot} stimulus resamples + noise ceiling "
          "(same resamples for both tools)")
    compiled = load_counter()
    ours_t, rt_t = {}, {}
    for method in METHODS:
        t_ours, ours = best_of(lambda m=method: evaluate_models(
            models, data, method=m, indices={"stimulus": draws}), args.repeats)
        t_rt, (rt_evals, rt_nc) = best_of(lambda m=method: run_rsatoolbox(
            models, data, m, rt_boot, args.seed), 1)
        t_rt_full = t_rt * args.boot / rt_boot
        err = np.nanmax(np.abs(ours.score_bootstrap.values[:rt_boot] - rt_evals))
        err_nc = np.nanmax(np.abs(ours.noise_ceiling_bootstrap.values[:rt_boot].T - rt_nc))
        scaled = "" if rt_boot == args.boot else f" ({t_rt:.1f} s for {rt_boot}, scaled)"
        print(f"  {method:14s} rsa_bias {t_ours:7.3f} s (best of {args.repeats})   "
              f"rsatoolbox {t_rt_full:7.2f} s{scaled}   speed-up {t_rt_full / t_ours:6.1f}x   "
              f"max |diff| scores {err:.1e}, ceiling {err_nc:.1e}")
        if not (err < 1e-8 and err_nc < 1e-8):
            raise SystemExit(f"{method}: results disagree with rsatoolbox")
        ours_t[method], rt_t[method] = t_ours, t_rt_full
    if compiled:
        os.environ[_tau_kernel.ENV] = "0"
        try:
            t_np, _ = best_of(lambda: evaluate_models(
                models, data, method="kendall_tau_a", indices={"stimulus": draws}),
                args.repeats)
        finally:
            del os.environ[_tau_kernel.ENV]
        print(f"  kendall_tau_a without numba (NumPy counting route): {t_np:.3f} s, speed-up "
              f"{rt_t['kendall_tau_a'] / t_np:.1f}x")
    for method, how in (("kendall_tau_a", "scipy-derived"), ("kendall_tau_b", "scipy")):
        t_old, old = best_of(lambda m=method: run_previous(models, data, draws, m), 1)
        new = evaluate_models(models, data, method=method, indices={"stimulus": draws})
        diff = np.nanmax(np.abs(old.score_bootstrap.values - new.score_bootstrap.values))
        print(f"  {method} previous path (resampled RDMs built, {how}): {t_old:.2f} s "
              f"-> {t_old / ours_t[method]:.1f}x faster now (max |diff| {diff:.1e})")
    ratio = ours_t["kendall_tau_a"] / ours_t["spearman"]
    print(f"  our tau-a / our spearman bootstrap: {ratio:.2f}x (target <= 3)")
    return ours_t


def single_comparison(args) -> None:
    import importlib

    importlib.import_module("rsatoolbox.rdm.compare")
    rt_tau_a = sys.modules["rsatoolbox.rdm.compare"].compare_kendall_tau_a
    n = args.big_stimuli
    m = n * (n - 1) // 2
    rng = np.random.default_rng(args.seed)
    a = rng.random(m)
    b = a + rng.random(m)
    print(f"one tau-a comparison, {m} dissimilarities ({n} stimuli):")
    for label, (x, y) in {"continuous": (a, b),
                          "tied (2 decimals)": (np.round(a, 2), np.round(b, 2))}.items():
        t_ours, ours = best_of(lambda x=x, y=y: compare_rdms(x, y, method="kendall_tau_a"),
                               args.repeats)
        t_rt, ref = best_of(lambda x=x, y=y: rt_tau_a(x[None], y[None])[0, 0], args.repeats)
        t_old, old = best_of(lambda x=x, y=y: float(compare._kendall(
            x[None], y[None], variant_a=True)[0, 0]), args.repeats)
        print(f"  {label:18s} rsa_bias {t_ours:6.3f} s   rsatoolbox {t_rt:6.3f} s "
              f"({t_rt / t_ours:4.2f}x)   previous scipy-derived {t_old:6.3f} s "
              f"({t_old / t_ours:4.2f}x)   equal to rsatoolbox: {ours == ref} "
              f"(previous differs by {abs(old - ref):.1e})")
        if ours != ref:
            raise SystemExit("exact tau-a differs from rsatoolbox")


def main() -> None:
    p = int_options(__doc__, stimuli=100, models=5, subjects=20, boot=100, rt_boot=100,
                    repeats=3, seed=0, big_stimuli=1000)
    args = p.parse_args()
    bootstraps(args)
    single_comparison(args)


if __name__ == "__main__":
    main()
