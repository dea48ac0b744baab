"""Per-target ridge with cross-validated alphas: rsa_bias vs scikit-learn and himalaya.

Problem (default): 2000 stimuli x 1024 features -> 5000 targets, 10 alphas
(``np.logspace(-2, 6, 10)``), one alpha per target, intercept fitted, float64 data.
Two like-for-like comparisons, each reporting the best-of-``--repeats`` wall time,
the ratio and whether the chosen alphas agree:

* leave-one-out: ``RidgeEncoder(cv=None)`` vs ``sklearn.linear_model.RidgeCV(
  alpha_per_target=True)`` (its efficient generalised/LOO cross-validation);
* 5-fold: ``RidgeEncoder(cv=5)`` vs ``himalaya.ridge.RidgeCV(cv=5)`` on the numpy backend
  (both unshuffled ``KFold(5)``, both choosing by held-out squared error — himalaya's
  default ``l2_neg_loss`` averaged over equal folds).

``RidgeEncoder`` runs with its default ``search_dtype="float32"`` (float32 products
with a float64 re-check of near-ties) and with ``"float64"``.

Run: ``python benchmarks/bench_encoding.py [--samples 2000 --features 1024 --targets 5000]
[--repeats 2]``
"""

from __future__ import annotations

import warnings

import numpy as np
from _timing import best_of, int_options

from rsa_bias.analysis.encoding.ridge import RidgeEncoder

ALPHAS = np.logspace(-2, 6, 10)


def make_data(n: int, p: int, t: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Correlated features (decaying spectrum); targets with a wide range of SNR."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * np.logspace(0, -1.5, p)
    x = x @ np.linalg.qr(rng.normal(size=(p, p)))[0]
    w = rng.normal(size=(p, t)) / np.sqrt(p)
    y = x @ w * np.logspace(-1, 1, t) + rng.normal(size=(n, t))
    return x, y


def sklearn_loo(x, y):
    from sklearn.linear_model import RidgeCV

    return np.asarray(RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(x, y).alpha_)


def himalaya_kfold(x, y):
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    set_backend("numpy", on_error="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RidgeCV(alphas=ALPHAS, cv=5, fit_intercept=True).fit(x, y)
    return np.asarray(model.best_alphas_)


def ours(cv, search_dtype):
    def run(x, y):
        model = RidgeEncoder(ALPHAS, cv=cv, search_dtype=search_dtype).fit(x, y)
        return model.alpha_, model.n_rechecked_
    return run


def report(label: str, ref_name: str, t_ref: float, alpha_ref, rows) -> None:
    print(f"\n{label}")
    print(f"  {ref_name:<38s} {t_ref:7.2f} s")
    for name, (t, (alpha, n_rechecked)) in rows.items():
        same = np.isclose(alpha, alpha_ref, rtol=1e-6)
        print(f"  {name:<38s} {t:7.2f} s   {t_ref / t:4.2f}x faster   same alphas: "
              f"{same.sum()}/{same.size}   re-checked in float64: {n_rechecked}")


def main() -> None:
    p = int_options(__doc__, samples=2000, features=1024, targets=5000, repeats=2)
    p.add_argument("--skip", choices=["loo", "kfold"], default=None)
    args = p.parse_args()
    x, y = make_data(args.samples, args.features, args.targets)
    print(f"{args.samples} samples x {args.features} features -> {args.targets} targets, "
          f"{len(ALPHAS)} alphas, per-target alpha, best of {args.repeats}")
    if args.skip != "loo":
        t_ref, alpha_ref = best_of(lambda: sklearn_loo(x, y), args.repeats)
        rows = {f"rsa_bias RidgeEncoder(cv=None, {d})": best_of(
            lambda d=d: ours(None, d)(x, y), args.repeats) for d in ("float32", "float64")}
        report("Leave-one-out", "scikit-learn RidgeCV(alpha_per_target)", t_ref, alpha_ref,
               rows)
    if args.skip != "kfold":
        t_ref, alpha_ref = best_of(lambda: himalaya_kfold(x, y), args.repeats)
        rows = {f"rsa_bias RidgeEncoder(cv=5, {d})": best_of(
            lambda d=d: ours(5, d)(x, y), args.repeats) for d in ("float32", "float64")}
        report("5-fold", "himalaya RidgeCV(cv=5, numpy)", t_ref, alpha_ref, rows)


if __name__ == "__main__":
    main()
