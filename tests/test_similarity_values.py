"""The similarity family refuses bad values at the boundary, with an error that names the
problem, and its seeded results do not follow the row order of labelled input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bias.analysis.similarity import (
    canonical_correlations,
    cca_similarity,
    cka,
    cka_bootstrap,
    cka_matrix,
    cka_permutation,
    hsic,
    minibatch_cka,
    procrustes_distance,
    svcca,
)


def related(seed: int, n: int, p: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    return x, x @ rng.normal(size=(p, q)) + rng.normal(size=(n, q))


def labelled(values: np.ndarray, ids) -> xr.DataArray:
    return xr.DataArray(values, dims=("stimulus", "unit"), coords={"stimulus": list(ids)})


# --- 1. magnitudes: scale-invariant measures give the same value at 1e±200 ----------------------

FACTORS = [1e200, 1e-200, 2.0**900, 2.0**-900]
FACTOR_IDS = ["1e200", "1e-200", "2^900", "2^-900"]
SHAPES = [(30, 4, 3), (8, 20, 12)]  # feature-space form / Gram form


@pytest.mark.parametrize("factor", FACTORS, ids=FACTOR_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=["features", "gram"])
@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_cka_is_scale_invariant_at_extreme_magnitudes(factor, shape, kernel, estimator):
    x, y = related(0, *shape)
    want = cka(x, y, kernel=kernel, hsic=estimator)
    for xs, ys in ((x * factor, y), (x, y * factor), (x * factor, y / factor)):
        assert cka(xs, ys, kernel=kernel, hsic=estimator) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_cka_near_the_rescaling_threshold(estimator):
    """±1 data just below the magnitude from which degree-4 products alone would overflow:
    HSIC sums n²·p·q of them, so the inputs must already be rescaled there."""
    x = np.sign(np.random.default_rng(0).normal(size=(100, 10)))
    for factor in (5e75, 1e76, 1e-69, 1e-60):
        assert cka(x * factor, x * factor, hsic=estimator) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=["features", "gram"])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_hsic_is_computed_rescaled_and_multiplied_back(shape, estimator):
    x, y = related(1, *shape)
    want = hsic(x, y, hsic=estimator)
    for c in (1e200, 1e-200, 1e150):
        assert hsic(x * c, y / c, hsic=estimator) == pytest.approx(want, rel=1e-12)
    assert hsic(x * 1e150, y, hsic=estimator) == pytest.approx(want * 1e300, rel=1e-12)
    assert hsic(x * 1e-150, y, hsic=estimator) == pytest.approx(want * 1e-300, rel=1e-12)
    assert hsic(x * 1e200, y * 1e-300, hsic=estimator) == pytest.approx(want * 1e-200,
                                                                        rel=1e-12)
    with pytest.raises(ValueError, match="overflow"):
        hsic(x * 1e100, y * 1e100, hsic=estimator)  # the result itself is ~1e400
    with pytest.raises(ValueError, match="underflow"):
        hsic(x * 1e-100, y * 1e-100, hsic=estimator)  # ~1e-400
    rbf = hsic(x, y, kernel="rbf", hsic=estimator)  # the RBF kernel is scale-free
    assert hsic(x * 1e200, y * 1e-200, kernel="rbf", hsic=estimator) == pytest.approx(
        rbf, rel=1e-12)


@pytest.mark.parametrize("factor", [1e200, 1e-200])
def test_cka_matrix_minibatch_and_inference_are_scale_invariant(factor):
    x, y = related(2, 40, 4, 3)
    want = cka_matrix({"a": x, "b": y}).values
    got = cka_matrix({"a": x * factor, "b": y / factor}).values
    np.testing.assert_allclose(got, want, rtol=1e-12)
    got = cka_matrix({"a": x * factor}, {"b": y, "c": y * factor}).values
    np.testing.assert_allclose(got, want[:1, [1, 1]], rtol=1e-12)
    assert minibatch_cka(x * factor, y, batch_size=10) == pytest.approx(
        minibatch_cka(x, y, batch_size=10), rel=1e-12)
    # batches of different magnitudes are combined in common units
    spread = [(x[i:i + 10] * 3.0**i, y[i:i + 10]) for i in range(0, 40, 10)]
    assert minibatch_cka([(a * factor, b) for a, b in spread]) == pytest.approx(
        minibatch_cka(spread), rel=1e-12)
    for estimator in ("biased", "unbiased"):
        boot, boot_s = (cka_bootstrap(a, y, n_boot=20, seed=1, hsic=estimator)
                        for a in (x, x * factor))
        np.testing.assert_allclose(boot_s.bootstrap, boot.bootstrap, rtol=1e-12)
        perm, perm_s = (cka_permutation(a, y, n_perm=20, seed=1, hsic=estimator)
                        for a in (x, x * factor))
        np.testing.assert_allclose(perm_s.null, perm.null, rtol=1e-12)
        assert float(perm_s.p_value) == float(perm.p_value)


@pytest.mark.parametrize("factor", [1e200, 1e-200, 1e300])
def test_shape_metrics_are_scale_invariant(factor):
    x, y = related(3, 50, 6, 4)
    for xs, ys in ((x * factor, y), (x, y * factor)):
        assert procrustes_distance(xs, ys) == pytest.approx(procrustes_distance(x, y),
                                                            rel=1e-12)
        assert procrustes_distance(xs, ys, method="angular") == pytest.approx(
            procrustes_distance(x, y, method="angular"), rel=1e-12)
        np.testing.assert_allclose(canonical_correlations(xs, ys),
                                   canonical_correlations(x, y), rtol=1e-12)
        assert cca_similarity(xs, ys) == pytest.approx(cca_similarity(x, y), rel=1e-12)
        assert svcca(xs, ys, keep=0.9) == pytest.approx(svcca(x, y, keep=0.9), rel=1e-12)


def test_truly_constant_inputs_are_still_called_constant():
    x, _ = related(4, 30, 4, 3)
    for const in (np.full((30, 2), 0.1), np.full((30, 2), 1e200), np.full((30, 2), 3e-300)):
        for estimator in ("biased", "unbiased"):
            with pytest.raises(ValueError, match="y is constant"):
                cka(x, const, hsic=estimator)
            with pytest.raises(ValueError, match="y is constant"):
                cka(x, const, kernel="rbf", hsic=estimator)
        with pytest.raises(ValueError, match="y is constant"):
            procrustes_distance(x, const)


# --- 2. counts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda x, y: cka_bootstrap(x, y, n_boot=-5), "n_boot must be at least 1"),
    (lambda x, y: cka_bootstrap(x, y, n_boot=0), "n_boot must be at least 1"),
    (lambda x, y: cka_bootstrap(x, y, n_boot=10.0), "n_boot must be an integer"),
    (lambda x, y: cka_bootstrap(x, y, n_boot=True), "n_boot must be an integer"),
    (lambda x, y: cka_bootstrap(x, y, n_boot="10"), "n_boot must be an integer"),
    (lambda x, y: cka_permutation(x, y, n_perm=0), "n_perm must be at least 1"),
    (lambda x, y: cka_permutation(x, y, n_perm=-1), "n_perm must be at least 1"),
    (lambda x, y: cka_permutation(x, y, n_perm=99.5), "n_perm must be an integer"),
    (lambda x, y: minibatch_cka(x, y, batch_size=0), "batch_size must be at least 1"),
    (lambda x, y: minibatch_cka(x, y, batch_size=-3), "batch_size must be at least 1"),
    (lambda x, y: minibatch_cka(x, y, batch_size=7.5), "batch_size must be an integer"),
    (lambda x, y: cca_similarity(x, y, n_components=1.5), "n_components must be an integer"),
    (lambda x, y: svcca(x, y, n_components=True), "n_components must be an integer"),
])
def test_counts_are_refused_unless_positive_integers(call, match):
    x, y = related(5, 30, 4, 3)
    with pytest.raises(ValueError, match=match):
        call(x, y)


# --- 3. RBF bandwidths that under- or overflow the kernel -----------------------------------------


@pytest.mark.parametrize("bandwidth", [1e-300, 1e-3, 1e300, np.inf, 0.0, -1.0, np.nan])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_degenerate_bandwidths_are_named_not_called_constant(bandwidth, estimator):
    x, y = related(6, 30, 4, 3)
    calls = [lambda: cka(x, y, kernel="rbf", bandwidth=bandwidth, hsic=estimator),
             lambda: hsic(x, y, kernel="rbf", bandwidth=bandwidth, hsic=estimator),
             lambda: minibatch_cka(x, y, batch_size=10, kernel="rbf", bandwidth=bandwidth,
                                   hsic=estimator),
             lambda: cka_matrix({"a": x}, kernel="rbf", bandwidth=bandwidth, hsic=estimator)]
    for call in calls:
        with pytest.raises(ValueError, match="bandwidth") as err:
            call()
        assert "constant" not in str(err.value)
        if bandwidth in (1e-300, 1e-3):
            assert "every off-diagonal RBF kernel value 0" in str(err.value)


def test_ordinary_bandwidths_still_work():
    x, y = related(7, 30, 4, 3)
    for bandwidth in (0.1, 0.5, 1.0, 10.0, 1e4):
        assert np.isfinite(cka(x, y, kernel="rbf", bandwidth=bandwidth))


# --- 4. batches of different lengths -------------------------------------------------------------


def test_minibatch_refuses_iterables_of_different_lengths():
    x, y = related(8, 60, 4, 3)
    xs = [x[i:i + 10] for i in range(0, 60, 10)]
    ys = [y[i:i + 10] for i in range(0, 60, 10)]
    with pytest.raises(ValueError, match=r"x has 6 batches but y has 4"):
        minibatch_cka(xs, ys[:4])
    with pytest.raises(ValueError, match=r"y gave more batches than x \(at least 4\).*x gave 3"):
        minibatch_cka(iter(xs[:3]), (b for b in ys))
    assert minibatch_cka(iter(xs), (b for b in ys)) == pytest.approx(minibatch_cka(
        list(zip(xs, ys, strict=True))), abs=1e-15)


# --- 5. complex, empty and NaN/inf values --------------------------------------------------------

CALLS = {
    "cka": lambda x, y: cka(x, y),
    "cka_rbf": lambda x, y: cka(x, y, kernel="rbf"),
    "hsic": lambda x, y: hsic(x, y),
    "cka_bootstrap": lambda x, y: cka_bootstrap(x, y, n_boot=3),
    "cka_permutation": lambda x, y: cka_permutation(x, y, n_perm=3),
    "minibatch_arrays": lambda x, y: minibatch_cka(x, y, batch_size=10),
    "minibatch_pairs": lambda x, y: minibatch_cka([(x, y)]),
    "minibatch_zipped": lambda x, y: minibatch_cka([x], [y]),
    "cka_matrix": lambda x, y: cka_matrix({"x": x}, {"y": y}),
    "cka_matrix_self": lambda x, y: cka_matrix({"y": y, "x": x}),
    "procrustes": lambda x, y: procrustes_distance(x, y),
    "canonical_correlations": lambda x, y: canonical_correlations(x, y),
    "cca_similarity": lambda x, y: cca_similarity(x, y),
    "svcca": lambda x, y: svcca(x, y),
}


def _bad(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "complex":
        return x + 1j
    if kind == "empty":
        return x[:0]
    out = x.copy()
    out[3, 1] = np.nan if kind == "nan" else np.inf
    return out


@pytest.mark.parametrize("labelled_input", [False, True], ids=["numpy", "DataArray"])
@pytest.mark.parametrize("kind, match", [("complex", "Complex data not supported"),
                                         ("empty", "is empty"), ("nan", "NaN/inf"),
                                         ("inf", "NaN/inf")])
@pytest.mark.parametrize("name", list(CALLS))
def test_bad_values_are_refused_by_every_function(name, kind, match, labelled_input):
    x, y = related(9, 30, 4, 3)
    bad = _bad(kind, x)
    if labelled_input:
        bad = labelled(bad, range(bad.shape[0]))
        y = labelled(y[:bad.shape[0]] if kind == "empty" else y, range(bad.shape[0]))
    elif kind == "empty":
        y = y[:0]
    with pytest.raises(ValueError, match=match):
        CALLS[name](bad, y)


# --- 6. seeded results do not follow the row order of labelled input -----------------------------


@pytest.fixture(scope="module")
def shuffled():
    x, y = related(10, 30, 4, 3)
    ids = [f"s{i:02d}" for i in np.random.default_rng(1).permutation(30)]
    perm = np.random.default_rng(2).permutation(30)
    xa, ya = labelled(x, ids), labelled(y, ids)
    return xa, ya, [(xa.isel(stimulus=perm), ya.isel(stimulus=perm)),
                    (xa, ya.isel(stimulus=perm)), (xa.isel(stimulus=perm), ya)]


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_bootstrap_and_permutation_do_not_follow_the_row_order(shuffled, estimator):
    xa, ya, variants = shuffled
    boot = cka_bootstrap(xa, ya, n_boot=50, seed=4, hsic=estimator)
    perm = cka_permutation(xa, ya, n_perm=50, seed=4, hsic=estimator)
    for xp, yp in variants:
        other = cka_bootstrap(xp, yp, n_boot=50, seed=4, hsic=estimator)
        np.testing.assert_array_equal(other.bootstrap, boot.bootstrap)
        for key in ("estimate", "ci_low", "ci_high", "standard_error"):
            assert float(other[key]) == float(boot[key])
        other = cka_permutation(xp, yp, n_perm=50, seed=4, hsic=estimator)
        np.testing.assert_array_equal(other.null, perm.null)
        assert float(other.p_value) == float(perm.p_value)


def test_numpy_inputs_resample_in_their_own_order():
    x, y = related(11, 25, 3, 4)
    res = cka_bootstrap(x, y, n_boot=10, seed=2)
    rng = np.random.default_rng(2)
    want = [cka(x[i], y[i]) for i in (rng.integers(0, 25, 25) for _ in range(10))]
    np.testing.assert_allclose(res.bootstrap.values, want, atol=1e-12)
    ids = np.arange(25)  # labelled with ids 0..n-1: the same as numpy
    np.testing.assert_array_equal(cka_bootstrap(labelled(x, ids), labelled(y, ids), n_boot=10,
                                                seed=2).bootstrap, res.bootstrap)


@pytest.mark.parametrize("seed", [None, 3])
def test_minibatches_do_not_follow_the_row_order(shuffled, seed):
    xa, ya, variants = shuffled
    want = minibatch_cka(xa, ya, batch_size=10, seed=seed)
    for xp, yp in variants:
        assert minibatch_cka(xp, yp, batch_size=10, seed=seed) == want


# --- 7. ids of different types -------------------------------------------------------------------


def test_ids_of_different_types_are_refused():
    x, y = related(12, 20, 3, 3)
    xa, ya = labelled(x, [str(i) for i in range(20)]), labelled(y, range(20))
    for call in (cka, lambda a, b: cka_bootstrap(a, b, n_boot=5),
                 lambda a, b: cka_permutation(a, b, n_perm=5)):
        with pytest.raises(ValueError, match="different types"):
            call(xa, ya)


# --- ties in the permutation null ----------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_permutation_counts_null_values_tied_with_the_observed(kernel, estimator):
    """x and y categorical (3 categories of 2 stimuli): a permutation that maps categories
    onto categories gives the observed CKA exactly in exact arithmetic, however it is
    rounded; each such draw counts as reaching the observed value."""
    cats = np.repeat(np.arange(3), 2)
    y = np.eye(3)[cats]
    x = y * np.array([1.0, 2.0, 3.0])
    res = cka_permutation(x, y, n_perm=300, seed=0, kernel=kernel, hsic=estimator)
    rng = np.random.default_rng(0)
    ties = sum(not np.ptp(cats[p].reshape(3, 2), axis=1).any()  # pairs stay together
               for p in (rng.permutation(6) for _ in range(300)))
    assert ties > 5
    assert float(res.p_value) == pytest.approx((1 + ties) / 301, abs=1e-15)
