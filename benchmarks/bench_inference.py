"""Bootstrap evaluation of model RDMs: rsa_bias evaluate_models vs rsatoolbox.

5 model RDMs are evaluated against 20 subjects' RDMs over 100 stimuli with a
bootstrap over stimuli (1000 resamples), including the bootstrapped noise
ceiling: ``rsatoolbox.inference.eval_bootstrap_pattern`` vs
``rsa_bias.analysis.rsa.inference.evaluate_models(bootstrap="stimulus")``.

Both runs use the *same* resamples: rsatoolbox draws them from the global
``np.random`` stream after ``np.random.seed(seed)``; that stream is replayed and
handed to rsa_bias as ``indices``, so the replicates must agree to rounding error
(checked below, along with the mean and standard error of each model's score).
rsatoolbox is slow, so by default it runs on the first ``--rt-boot`` resamples
only and its time is scaled to the full count (its cost is linear in the number
of resamples); pass ``--rt-boot 1000`` for the full run.

The default comparison is ``pearson`` (rsatoolbox ``"corr"``): rsatoolbox 0.3.2's
``corr_cov``/``cosine_cov`` crash on resampled RDMs with 100 or more stimuli
(its sparse int8 indicator matrix cannot be divided in place), so compare those
with ``--method corr_cov --stimuli 99``.

Run: ``python benchmarks/bench_inference.py [--method pearson] [--boot 1000]
[--rt-boot 100] [--repeats 3]``
"""

from __future__ import annotations

import warnings

import numpy as np
from _timing import best_of, int_options

from rsa_bias.analysis.rsa.inference import evaluate_models

RSATOOLBOX_NAMES = {"pearson": "corr", "spearman": "spearman", "rho_a": "rho-a",
                    "cosine": "cosine", "cosine_cov": "cosine_cov", "corr_cov": "corr_cov",
                    "kendall_tau_a": "tau-a", "kendall_tau_b": "kendall"}


def make_rdms(n_stim: int, n_models: int, n_subjects: int,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Condensed Euclidean RDMs of noisy copies of one 20-d embedding (models noisier)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_stim, 20))
    i, j = np.triu_indices(n_stim, 1)

    def rdm(noise: float) -> np.ndarray:
        e = base + noise * rng.normal(size=base.shape)
        return np.sqrt(np.sum((e[i] - e[j]) ** 2, axis=1))

    models = np.stack([rdm(0.5 + k) for k in range(n_models)])
    data = np.stack([rdm(1.0) for _ in range(n_subjects)])
    return models, data


def replay(n_stim: int, n_boot: int, seed: int) -> np.ndarray:
    """The stimulus draws of ``eval_bootstrap_pattern`` after ``np.random.seed(seed)``."""
    state = np.random.RandomState(seed)
    return np.array([state.randint(0, n_stim, size=n_stim) for _ in range(n_boot)])


def run_rsatoolbox(models: np.ndarray, data: np.ndarray, method: str, n_boot: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    rt_models = [ModelFixed(f"m{k}", RDMs(v[None])) for k, v in enumerate(models)]
    np.random.seed(seed)  # noqa: NPY002 - rsatoolbox draws from the global stream
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = eval_bootstrap_pattern(rt_models, RDMs(data), method=RSATOOLBOX_NAMES[method],
                                     N=n_boot)
    return res.evaluations, res.noise_ceiling


def main() -> None:
    p = int_options(__doc__, stimuli=100, models=5, subjects=20, boot=1000, rt_boot=100,
                    repeats=3, seed=0)
    p.add_argument("--method", default="pearson", choices=sorted(RSATOOLBOX_NAMES))
    args = p.parse_args()
    models, data = make_rdms(args.stimuli, args.models, args.subjects)
    draws = replay(args.stimuli, args.boot, args.seed)

    t_ours, ours = best_of(lambda: evaluate_models(
        models, data, method=args.method, indices={"stimulus": draws}), args.repeats)
    rt_boot = min(args.rt_boot, args.boot)
    t_rt, (rt_evals, rt_nc) = best_of(lambda: run_rsatoolbox(
        models, data, args.method, rt_boot, args.seed), 1)
    t_rt_full = t_rt * args.boot / rt_boot

    mine = ours.score_bootstrap.values[:rt_boot]
    err = np.nanmax(np.abs(mine - rt_evals))
    err_nc = np.nanmax(np.abs(ours.noise_ceiling_bootstrap.values[:rt_boot].T - rt_nc))
    mean_diff = np.abs(np.nanmean(mine, 0) - np.nanmean(rt_evals, 0)).max()
    se_diff = np.abs(np.nanstd(mine, 0, ddof=1) - np.nanstd(rt_evals, 0, ddof=1)).max()

    print(f"bootstrap evaluation ({args.method}): {args.models} models x {args.subjects} "
          f"subjects, {args.stimuli} stimuli, {args.boot} stimulus resamples + noise ceiling")
    print(f"  rsa_bias evaluate_models      : {t_ours:8.3f} s (best of {args.repeats})")
    scaled = "" if rt_boot == args.boot else f" ({t_rt:.1f} s for {rt_boot}, scaled)"
    print(f"  rsatoolbox eval_bootstrap_pattern: {t_rt_full:8.3f} s{scaled}")
    print(f"  speed-up                      : {t_rt_full / t_ours:8.1f}x")
    print(f"  same resamples: max |replicate diff| {err:.1e}, noise ceiling {err_nc:.1e}, "
          f"mean {mean_diff:.1e}, SE {se_diff:.1e}")
    if not (err < 1e-8 and err_nc < 1e-8):
        raise SystemExit("results disagree")


if __name__ == "__main__":
    main()
