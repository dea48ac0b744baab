"""Linear CKA: rsa_bias vs the Gram-matrix HSIC a user would write, and vs its three GEMMs.

On ``--stimuli`` stimuli with ``--units-x`` and ``--units-y`` units we time

* ``rsa_bias.analysis.similarity._hsic`` (biased and unbiased HSIC; feature space),
* the Gram-matrix CKA users write by hand from the formula
  (K = XX', L = YY', centred with H, then <HKH, HLH> / (||HKH|| ||HLH||)),
* the three GEMMs the feature-space form cannot avoid: X'X, Y'Y and Y'X, each
  timed separately on pre-centred data,

check that the numbers agree, and print the ratios. Every timing is the best of
``--repeats`` runs (the machine may be shared).

Run: ``python benchmarks/bench_cka.py [--stimuli 10000] [--units-x 1024] [--units-y 512]``
"""

from __future__ import annotations

import numpy as np
from _timing import best_of, int_options

from rsa_bias.analysis.similarity._hsic import cka


def gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    """The hand-written Gram-matrix version: n x n kernels, centred, Frobenius inner products."""
    k, l = x @ x.T, y @ y.T
    for g in (k, l):                       # H G H, in place
        means = g.mean(axis=0)
        g -= means[:, None]
        g -= means[None, :]
        g += means.mean()
    return float(np.vdot(k, l) / (np.linalg.norm(k) * np.linalg.norm(l)))


def main() -> None:
    args = int_options(__doc__, stimuli=10_000, units_x=1024, units_y=512,
                       repeats=5).parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.stimuli, args.units_x))
    y = np.tanh(x[:, : args.units_y]) + rng.normal(size=(args.stimuli, args.units_y))
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    r = args.repeats

    t_ours, ours = best_of(lambda: cka(x, y), r)
    t_unb, unb = best_of(lambda: cka(x, y, hsic="unbiased"), r)
    t_gemm = [best_of(fn, r)[0] for fn in (lambda: xc.T @ xc, lambda: yc.T @ yc,
                                           lambda: yc.T @ xc)]
    t_gram, ref = best_of(lambda: gram_cka(x, y), max(1, r // 2))

    print(f"linear CKA, {args.stimuli} stimuli, {args.units_x} vs {args.units_y} units, "
          f"float64, best of {r}")
    print(f"rsa_bias cka (biased HSIC):       {t_ours:8.3f} s   CKA = {ours:.10f}")
    print(f"rsa_bias cka (unbiased HSIC):     {t_unb:8.3f} s   CKA = {unb:.10f}")
    print(f"hand-written Gram-matrix CKA:     {t_gram:8.3f} s   CKA = {ref:.10f}")
    print(f"GEMMs X'X / Y'Y / Y'X:            {t_gemm[0]:.3f} + {t_gemm[1]:.3f} + "
          f"{t_gemm[2]:.3f} = {sum(t_gemm):.3f} s")
    print(f"speed-up vs Gram-matrix CKA:      {t_gram / t_ours:8.1f}x   (target >= 5x)")
    print(f"rsa_bias / three GEMMs:           {t_ours / sum(t_gemm):8.2f}    (target <= 1.5)")
    print(f"unbiased / three GEMMs:           {t_unb / sum(t_gemm):8.2f}")
    print(f"|rsa_bias - Gram-matrix CKA|:     {abs(ours - ref):.1e}")


if __name__ == "__main__":
    main()
