"""The compiled τ-a counter (numba) and the NumPy radix route count the same integers.

Reference: the brute-force O(m²) count of ``test_kendall_exact`` (pairs of copies of
weighted entries); each route is forced explicitly, since which one a call takes
otherwise depends on whether an earlier call in the process loaded the kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_kendall_exact import brute_counts, vectors

from rsa_bias.analysis.rsa import _tau_kernel, _weighted_pairs
from rsa_bias.analysis.rsa._pair_counts import concordance, dense_ranks, sorted_dense
from rsa_bias.analysis.rsa.inference import evaluate_models

pytest.importorskip("numba")
KINDS = ["continuous", "tied", "constant", "binary"]


def brute_ties(v: np.ndarray, w: np.ndarray | None) -> int:
    """Pairs of copies tied in ``v`` (the copies of one entry are tied with each other)."""
    w = np.ones(v.size, dtype=np.int64) if w is None else w.astype(np.int64)
    same = np.triu(v[:, None] == v[None], 1)
    return int(np.sum(same * np.outer(w, w)) + np.sum(w * (w - 1) // 2))


def counts(route: str, monkeypatch: pytest.MonkeyPatch, a, b, w):
    monkeypatch.setenv(_tau_kernel.ENV, "1" if route == "compiled" else "0")
    order, ranks = sorted_dense(a)
    return concordance(order, ranks, dense_ranks(b), w, load_kernel=True, with_ties=True)


@pytest.mark.parametrize("route", ["compiled", "numpy"])
@pytest.mark.parametrize("kind_b", KINDS)
@pytest.mark.parametrize("kind_a", KINDS)
def test_both_routes_equal_brute_force(route: str, kind_a: str, kind_b: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(KINDS.index(kind_a) * 4 + KINDS.index(kind_b))
    for m in (2, 3, 19, 150):
        a, b = vectors(kind_a, rng, 3, m), vectors(kind_b, rng, 3, m)
        for w in (None, rng.integers(0, 4, (3, m))):  # copies, some entries not drawn
            num, total, tied_a, tied_b = counts(route, monkeypatch, a, b, w)
            wr = [None if w is None else w[r] for r in range(3)]
            ref = [brute_counts(a[r], b[r], wr[r]) for r in range(3)]
            assert num.tolist() == [n for n, _ in ref]
            assert total.tolist() == [t for _, t in ref]
            assert tied_a.tolist() == [brute_ties(a[r], wr[r]) for r in range(3)]
            assert tied_b.tolist() == [brute_ties(b[r], wr[r]) for r in range(3)]


@pytest.mark.parametrize("kind_b", KINDS)
@pytest.mark.parametrize("kind_a", KINDS)
def test_columns_kernel_equals_brute_force(kind_a: str, kind_b: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """One pair of rows, many weight vectors (the bootstrap's model scores)."""
    monkeypatch.setenv(_tau_kernel.ENV, "1")
    fn = _tau_kernel.kernel()
    rng = np.random.default_rng(16 + KINDS.index(kind_a) * 4 + KINDS.index(kind_b))
    for m in (2, 3, 19, 150):
        a, b = vectors(kind_a, rng, 1, m)[0], vectors(kind_b, rng, 1, m)[0]
        order, ranks = sorted_dense(a[None])
        b_sorted = dense_ranks(b[None])[0][order[0]]
        for high in (4, 1000):  # int32 counts, and int64 ones (>= 46 000 copies)
            w = rng.integers(0, high, (m, 5))
            num, total, tied_a, tied_b = _tau_kernel.count_columns(ranks[0], b_sorted,
                                                                   w[order[0]], fn)
            ref = [brute_counts(a, b, w[:, c]) for c in range(5)]
            assert num.tolist() == [n for n, _ in ref]
            assert total.tolist() == [t for _, t in ref]
            assert tied_a.tolist() == [brute_ties(a, w[:, c]) for c in range(5)]
            assert tied_b.tolist() == [brute_ties(b, w[:, c]) for c in range(5)]


def test_routes_agree_on_large_weighted_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    a = np.round(rng.random((4, 5000)), 3)  # many ties
    b = a + np.round(rng.random((4, 5000)), 2)
    w = rng.integers(0, 5, (4, 5000))
    got = counts("compiled", monkeypatch, a, b, w)
    ref = counts("numpy", monkeypatch, a, b, w)
    assert [x.tolist() for x in got] == [x.tolist() for x in ref]


@pytest.mark.parametrize("method", ["kendall_tau_a", "kendall_tau_b"])
def test_bootstrap_replicates_identical_on_both_routes(monkeypatch: pytest.MonkeyPatch,
                                                       method: str) -> None:
    rng = np.random.default_rng(3)
    data = np.round(rng.random((6, 190)), 2)  # 20 stimuli, tied entries
    models = np.stack([data.mean(0) + rng.normal(0, s, 190) for s in (0.05, 0.3)])
    results = {}
    for route in ("compiled", "numpy"):
        monkeypatch.setenv(_tau_kernel.ENV, "1" if route == "compiled" else "0")
        monkeypatch.setattr(_weighted_pairs, "KERNEL_ENTRIES", 0)  # load at any size
        results[route] = evaluate_models(models, data, method=method,
                                         bootstrap="stimulus", n_boot=40, seed=1)
    for name in ("score_bootstrap", "noise_ceiling_bootstrap"):
        got, ref = results["compiled"][name].values, results["numpy"][name].values
        np.testing.assert_array_equal(got, ref)
    assert np.ptp(results["compiled"]["noise_ceiling_bootstrap"].values) > 0


def test_kernel_loads_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_tau_kernel.ENV, raising=False)
    _tau_kernel._compiled.cache_clear()
    assert _tau_kernel.kernel(load=False) is None  # small jobs do not pay for loading
    fn = _tau_kernel.kernel()
    assert callable(fn.rows) and callable(fn.columns)
    assert _tau_kernel.kernel(load=False) is fn
    monkeypatch.setenv(_tau_kernel.ENV, "0")
    assert _tau_kernel.kernel() is None
