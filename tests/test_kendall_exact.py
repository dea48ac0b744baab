"""Exact Kendall τ-a (integer pair counts) and the weighted bootstrap built on it.

References: a brute-force O(m²) count of concordant minus discordant pairs written
here (numpy broadcasting), rsatoolbox's ``compare_kendall_tau_a`` (which counts the
same integers, so the floats must be identical), and the package's own materialising
path (build each resampled RDM, as rsatoolbox, and compare it) kept as
``_resample._EXPLICIT``; the old scipy-τ_b-derived τ-a (``compare._kendall``) is the
reference for "results unchanged".
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from rsa_bias.analysis.rsa import _resample, compare
from rsa_bias.analysis.rsa._pair_counts import (
    concordance,
    dense_ranks,
    sorted_dense,
    tau_rows,
)
from rsa_bias.analysis.rsa._weighted_pairs import FixedPair, Weights
from rsa_bias.analysis.rsa.compare import compare_rdms
from rsa_bias.analysis.rsa.inference import evaluate_models, permutation_test

pytest.importorskip("rsatoolbox.rdm.compare")
# the module, not rsatoolbox.rdm.compare (the package re-exports a function of that name)
rt_compare = sys.modules["rsatoolbox.rdm.compare"].compare_kendall_tau_a


def brute_counts(a: np.ndarray, b: np.ndarray, w: np.ndarray | None = None) -> tuple[int, int]:
    """``C - D`` over pairs of copies (an entry of weight w is w copies) and all pairs."""
    w = np.ones(a.size, dtype=np.int64) if w is None else w.astype(np.int64)
    signs = np.sign(a[:, None] - a[None]) * np.sign(b[:, None] - b[None])
    num = int(np.sum(np.triu(signs, 1).astype(np.int64) * np.outer(w, w)))
    copies = int(w.sum())
    return num, copies * (copies - 1) // 2


def vectors(kind: str, rng: np.random.Generator, k: int, m: int) -> np.ndarray:
    if kind == "continuous":
        return rng.random((k, m))
    if kind == "tied":
        return rng.integers(0, 4, (k, m)).astype(float)
    if kind == "constant":
        return np.full((k, m), 0.7)
    return rng.integers(0, 2, (k, m)).astype(float)  # binary: a categorical model


KINDS = ["continuous", "tied", "constant", "binary"]


@pytest.mark.parametrize("kind_b", KINDS)
@pytest.mark.parametrize("kind_a", KINDS)
def test_tau_a_equals_brute_force_and_rsatoolbox_and_tau_b_scipy(kind_a: str, kind_b: str) -> None:
    rng = np.random.default_rng(KINDS.index(kind_a) * 4 + KINDS.index(kind_b))
    for m in (2, 3, 17, 300):
        x, y = vectors(kind_a, rng, 3, m), vectors(kind_b, rng, 2, m)
        ours = tau_rows(x, y)
        ref = rt_compare(x, y)  # rsatoolbox takes vectors as they are
        assert np.array_equal(ours, ref), (m, ours, ref)
        for i, j in np.ndindex(ours.shape):
            num, total = brute_counts(x[i], y[j])
            assert ours[i, j] == num / total
        tau_b = tau_rows(x, y, variant="b")  # scipy's τ-b, bit for bit, NaN where constant
        assert np.array_equal(tau_b, compare._kendall(x, y, variant_a=False), equal_nan=True)


def test_tau_a_of_constant_vectors_is_zero_and_m2_is_the_sign() -> None:
    assert tau_rows(np.ones((1, 5)), np.arange(5.0)[None])[0, 0] == 0.0
    assert tau_rows(np.array([[1.0, 2.0]]), np.array([[5.0, 3.0]]))[0, 0] == -1.0
    assert tau_rows(np.array([[1.0, 2.0]]), np.array([[3.0, 3.0]]))[0, 0] == 0.0


def test_compare_rdms_tau_a_equals_rsatoolbox_bit_for_bit() -> None:
    """Through compare_rdms on a stack; the old scipy-derived τ-a differs in the last bits."""
    rng = np.random.default_rng(5)
    x, y = rng.random((4, 190)), np.round(rng.random((3, 190)) * 6)
    ours = compare_rdms(x, y, method="kendall_tau_a").values
    assert np.array_equal(ours, rt_compare(x, y))
    old = compare._kendall(x, y, variant_a=True)
    np.testing.assert_allclose(ours, old, rtol=0, atol=1e-14)


def test_large_vectors_count_beyond_int32_pairs() -> None:
    """m = 70 000: 2.4e9 pairs, past int32; still equal to rsatoolbox."""
    rng = np.random.default_rng(6)
    a = rng.random((1, 70_000))
    b = np.round(a + rng.random((1, 70_000)), 2)
    assert np.array_equal(tau_rows(a, b), rt_compare(a, b))


@pytest.mark.parametrize("kind", KINDS)
def test_weighted_counts_equal_brute_force_and_expanded_vectors(kind: str) -> None:
    rng = np.random.default_rng(KINDS.index(kind))
    m = 40
    x, y = vectors(kind, rng, 4, m), vectors("tied", rng, 4, m)
    w = rng.integers(0, 4, (4, m))
    ox, rx = sorted_dense(x)
    num, total = concordance(ox, rx, dense_ranks(y), w)
    fixed = FixedPair.build(ox[0], rx[0], dense_ranks(y[0]))
    fixed_num = fixed.numerator(Weights(w.T))
    for r in range(4):
        assert (num[r], total[r]) == brute_counts(x[r], y[r], w[r])
        expanded = tau_rows(np.repeat(x[r], w[r])[None], np.repeat(y[r], w[r])[None])
        assert num[r] / total[r] == expanded[0, 0]
        assert fixed_num[r] == brute_counts(x[0], y[0], w[r])[0]


@pytest.mark.parametrize("high", [12, 70])
def test_narrow_and_packed_weights_count_the_same(high: int) -> None:
    """Packed 16-bit lanes (totals < 2**16) and narrow int16 / int32 counts (wider
    totals) equal per-column concordance counts in int64."""
    rng = np.random.default_rng(8)
    m = 2000
    x, y = np.round(rng.random(m) * 50), rng.random(m)
    w = rng.integers(0, high, (m, 6))  # totals ~11 000 (packed) or ~69 000 (not packed)
    w[:, 0] = 0  # an empty column
    wts = Weights(w)
    assert (wts.packed is None) == (high == 70)
    if high == 12:
        assert (wts.w.dtype, wts.product) == (np.int16, np.int32)
    ox, rx = sorted_dense(x)
    fixed = FixedPair.build(ox, rx, dense_ranks(y))
    num, _ = concordance(np.tile(ox, (6, 1)), np.tile(rx, (6, 1)),
                         np.tile(dense_ranks(y), (6, 1)), np.ascontiguousarray(w.T))
    assert np.array_equal(fixed.numerator(wts), num)


# ----------------------------------------------------------------- bootstrap replicates

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("method", ["kendall_tau_a", "kendall_tau_b", "spearman"])
def test_weighted_replicates_equal_resampled_rdms(method: str, seed: int) -> None:
    """Weighted counts / ranks equal building and comparing every resampled RDM."""
    rng = np.random.default_rng(seed)
    n = 7 + seed
    m = n * (n - 1) // 2
    x, y = rng.random((3, m)), rng.random((5, m))
    if seed % 2:  # ties: a categorical model, coarse data, a constant subject
        x[0], x[2], y[1] = rng.integers(0, 2, m), np.round(x[2] * 3), np.round(y[1] * 4)
        y[3] = 1.0
    p = _resample._problem(x, y, method, "exact")
    draws = rng.integers(0, n, (10, n))
    draws[0] = 0  # one distinct stimulus: NaN
    draws[1, :3] = draws[1, 3]  # duplicates
    w = _resample._counts(draws, n)
    v = _resample._counts(rng.integers(0, 5, (10, 5)), 5) if seed >= 3 else np.ones((10, 5))
    fast = _resample._replicates(p, w, v)
    slow = _resample._replicates(p, w, v, family=_resample._EXPLICIT)
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    if method == "kendall_tau_b" and seed % 2:  # subject 3 is constant: NaN where drawn
        assert np.array_equal(np.isnan(fast[0][:, 0]), (v[:, 3] > 0) | (np.arange(10) == 0))
    else:
        assert np.isnan(fast[0][0]).all() and np.isfinite(fast[0][2:]).all()


@pytest.mark.parametrize("method", ["kendall_tau_a", "kendall_tau_b"])
@pytest.mark.parametrize("subjects", [1, 4])
def test_full_data_counted_with_the_replicates_equals_the_direct_path(subjects: int,
                                                                      method: str) -> None:
    """With a bootstrap, τ-a's full-data scores and ceilings come out of the replicate
    counts (one more, all-ones replicate); they equal the direct path bit for bit."""
    rng = np.random.default_rng(13)
    m = 11 * 10 // 2
    models = np.stack([rng.random(m), rng.integers(0, 3, m).astype(float)])
    data = np.round(models[0] + rng.random((subjects, m)), 1)  # ties in the data
    direct = evaluate_models(models, data, method=method, bootstrap=None)
    boot = evaluate_models(models, data, method=method, bootstrap="stimulus",
                           n_boot=5, seed=0)
    for name in ("score", "score_subject", "noise_ceiling_lower", "noise_ceiling_upper",
                 "noise_ceiling_lower_subject", "noise_ceiling_upper_subject"):
        assert np.array_equal(boot[name].values, direct[name].values, equal_nan=True), name
    assert np.isnan(boot["noise_ceiling_lower"].values) == (subjects == 1)


def old_tau_a(x, y, keep, sigma_k):
    return compare._kendall(x, y, variant_a=True)


@pytest.mark.parametrize("bootstrap", ["stimulus", "both"])
@pytest.mark.parametrize("method", ["kendall_tau_a", "kendall_tau_b", "spearman"])
def test_evaluate_models_unchanged_from_the_materialising_path(monkeypatch, method: str,
                                                               bootstrap: str) -> None:
    rng = np.random.default_rng(11)
    m = 12 * 11 // 2
    models = np.stack([rng.random(m), rng.integers(0, 3, m).astype(float), rng.random(m)])
    data = models[0] + rng.random((4, m))
    new = evaluate_models(models, data, method=method, bootstrap=bootstrap, n_boot=30,
                          seed=2)
    monkeypatch.setitem(_resample._FAMILIES, method, _resample._EXPLICIT)
    if method == "kendall_tau_a":
        monkeypatch.setitem(compare._METHODS, method, old_tau_a)
    old = evaluate_models(models, data, method=method, bootstrap=bootstrap, n_boot=30, seed=2)
    for name in ("score", "score_bootstrap", "noise_ceiling_bootstrap", "standard_error",
                 "ci_low", "ci_high", "noise_ceiling_lower", "noise_ceiling_upper"):
        np.testing.assert_allclose(new[name].values, old[name].values, rtol=0, atol=1e-12,
                                   err_msg=name)


def test_permutation_test_tau_a_unchanged(monkeypatch) -> None:
    rng = np.random.default_rng(12)
    m = 10 * 9 // 2
    models = np.stack([rng.random(m), rng.integers(0, 2, m).astype(float)])
    data = models[0] + rng.random((3, m))
    new = permutation_test(models, data, method="kendall_tau_a", n_perm=25, seed=1)
    monkeypatch.setitem(compare._METHODS, "kendall_tau_a", old_tau_a)
    old = permutation_test(models, data, method="kendall_tau_a", n_perm=25, seed=1)
    np.testing.assert_allclose(new.null.values, old.null.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(new.score.values, old.score.values, rtol=0, atol=1e-12)
    assert np.array_equal(new.p_value.values, old.p_value.values)


def test_undefined_tau_b_replicates_stay_out_of_their_model_only() -> None:
    """τ-b is NaN where a drawn subject's RDM is constant: those replicates are left out
    (as rsatoolbox's, whose replicates are finite exactly where that subject was not
    drawn), not counted as too-few-stimuli replicates that blank the rest; a constant
    model's NaN does not blank the other model's interval."""
    from rsatoolbox.inference import eval_bootstrap_rdm
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(5)
    m = 12 * 11 // 2
    data = np.vstack([np.round(rng.random((5, m)), 1), np.full((1, m), 0.2)])
    models = data[:5].mean(0, keepdims=True) + rng.normal(0, 0.2, (1, m))
    state = np.random.RandomState(4)
    draws = np.array([state.randint(0, 6, size=6) for _ in range(20)])
    with pytest.warns(RuntimeWarning, match="undefined"):
        ours = evaluate_models(models, data, method="kendall_tau_b", bootstrap="subject",
                               indices={"subject": draws})
    np.random.seed(4)  # noqa: NPY002 - rsatoolbox draws from the global stream
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = eval_bootstrap_rdm([ModelFixed("m", RDMs(models))], RDMs(data),
                                 method="kendall", N=20).evaluations.ravel()
    got = ours.score_bootstrap.values.ravel()
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.array_equal(np.isnan(got), (draws == 5).any(axis=1))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert ours.attrs["n_invalid"] == 0 and np.isfinite(ours.ci_low.values).all()
    with_constant = np.vstack([models, np.full((1, m), 1.0)])
    with pytest.warns(RuntimeWarning, match=r"per model 1: 20\)"):
        both = evaluate_models(with_constant, data[:5], method="kendall_tau_b", n_boot=20)
    assert np.isfinite(both.ci_low.values[0]) and np.isnan(both.ci_low.values[1])
    assert both.attrs["n_invalid"] == 0
