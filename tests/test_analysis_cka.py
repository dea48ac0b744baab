"""CKA: agrees with plain Gram-matrix formulas, has CKA's invariances, infers correctly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from scipy.stats import ortho_group

from rsa_bias.analysis.similarity import cka, hsic
from rsa_bias.analysis.similarity._hsic import _cka_arrays, _prepared_pair
from rsa_bias.analysis.similarity.cka_batches import cka_matrix, minibatch_cka
from rsa_bias.analysis.similarity.cka_inference import (
    _weighted_unbiased_hsic,
    cka_bootstrap,
    cka_permutation,
)

# --- independent references, written from the formulas -----------------------------------------


def ref_hsic(k: np.ndarray, l: np.ndarray, estimator: str) -> float:
    """Biased: tr(KHLH)/(n-1)^2 (Gretton 2005). Unbiased: Song et al. (2012), eq. 5."""
    n = k.shape[0]
    if estimator == "biased":
        h = np.eye(n) - np.ones((n, n)) / n
        return float(np.trace(k @ h @ l @ h)) / (n - 1) ** 2
    kt, lt = k.copy(), l.copy()
    for i in range(n):          # explicit zeroing of the diagonal
        kt[i, i] = 0.0
        lt[i, i] = 0.0
    one = np.ones(n)
    return float(np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
                 - 2.0 / (n - 2) * (one @ kt @ lt @ one)) / (n * (n - 3))


def ref_cka(k: np.ndarray, l: np.ndarray, estimator: str) -> float:
    return ref_hsic(k, l, estimator) / np.sqrt(ref_hsic(k, k, estimator)
                                               * ref_hsic(l, l, estimator))


def ref_rbf(x: np.ndarray, bandwidth: float) -> np.ndarray:
    d2 = cdist(x, x, "sqeuclidean")
    sigma2 = bandwidth**2 * np.median(d2)        # median over all n^2 entries
    return np.exp(-d2 / (2 * sigma2))


def brute_unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Mean of h(i,j,q,r) = K_ij L_ij + K_ij L_qr - 2 K_ij L_iq over distinct 4-tuples."""
    vals = [k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
            for i, j, q, r in itertools.permutations(range(k.shape[0]), 4)]
    return float(np.mean(vals))


def related(seed: int, n: int, p: int, q: int, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + 3.0          # non-zero mean: centring must be handled
    y = np.tanh(x @ rng.normal(size=(p, q))) + noise * rng.normal(size=(n, q))
    return x, y


ESTIMATORS = ["biased", "unbiased"]


# --- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize(("n", "p", "q"), [(60, 5, 8), (12, 30, 20), (25, 25, 3)])
def test_linear_matches_gram_reference(estimator, n, p, q):
    x, y = related(n + p, n, p, q)
    k, l = x @ x.T, y @ y.T
    assert hsic(x, y, hsic=estimator) == pytest.approx(ref_hsic(k, l, estimator), rel=1e-9)
    assert cka(x, y, hsic=estimator) == pytest.approx(ref_cka(k, l, estimator), abs=1e-10)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("seed", range(3))
def test_feature_space_equals_gram_form(estimator, seed):
    x, y = related(seed, 40, 6, 9)
    feats = _cka_arrays(x, y, hsic=estimator, form="features")
    gram = _cka_arrays(x, y, hsic=estimator, form="gram")
    assert feats == pytest.approx(gram, abs=1e-10)
    assert feats != pytest.approx(_cka_arrays(x, y[::-1], hsic=estimator), abs=1e-3)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("bandwidth", [0.5, 1.0, 2.0])
def test_rbf_matches_direct_construction(estimator, bandwidth):
    x, y = related(7, 30, 4, 5)
    want = ref_cka(ref_rbf(x, bandwidth), ref_rbf(y, bandwidth), estimator)
    got = cka(x, y, kernel="rbf", hsic=estimator, bandwidth=bandwidth)
    assert got == pytest.approx(want, abs=1e-10)
    assert got != pytest.approx(cka(x, y, hsic=estimator), abs=1e-3)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_unbiased_hsic_matches_triple_sum(kernel):
    x, y = related(3, 7, 3, 2)
    k = x @ x.T if kernel == "linear" else ref_rbf(x, 0.5)
    l = y @ y.T if kernel == "linear" else ref_rbf(y, 0.5)
    want = brute_unbiased_hsic(k, l)
    assert hsic(x, y, kernel=kernel, hsic="unbiased") == pytest.approx(want, rel=1e-9)
    assert ref_hsic(k, l, "unbiased") == pytest.approx(want, rel=1e-9)


# --- properties (Hypothesis) --------------------------------------------------------------------

shapes = st.tuples(st.integers(0, 2**31), st.integers(8, 30), st.integers(1, 8),
                   st.integers(1, 8))
kinds = st.sampled_from([("linear", "biased"), ("linear", "unbiased"), ("rbf", "biased"),
                         ("rbf", "unbiased")])


@settings(max_examples=30, deadline=None)
@given(shape=shapes, kind=kinds)
def test_self_similarity_is_one(shape, kind):
    seed, n, p, _ = shape
    x = np.random.default_rng(seed).normal(size=(n, p))
    assert cka(x, x, kernel=kind[0], hsic=kind[1]) == pytest.approx(1.0, abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, kind=kinds, scale=st.floats(0.01, 100.0), which=st.sampled_from("xy"))
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(shape, kind, scale, which):
    seed, n, p, q = shape
    x, y = related(seed, n, p, q)
    before = cka(x, y, kernel=kind[0], hsic=kind[1])
    rng = np.random.default_rng(seed + 1)
    if which == "x":
        x = scale * x @ (ortho_group.rvs(p, random_state=rng) if p > 1 else -np.eye(1))
    else:
        y = scale * y @ (ortho_group.rvs(q, random_state=rng) if q > 1 else -np.eye(1))
    assert cka(x, y, kernel=kind[0], hsic=kind[1]) == pytest.approx(before, abs=1e-8)


def test_independent_noise_unbiased_near_zero_biased_positive():
    # For independent isotropic Gaussians, HSIC_u(X, Y) ≈ ||C_xy||² − E||C_xy||² with
    # sd ≈ sqrt(2 p q) / n, and HSIC(X, X) ≈ p, HSIC(Y, Y) ≈ q: sd(CKA_u) ≈ sqrt(2) / n.
    # The biased estimator keeps E||C_xy||² ≈ p q / n: CKA_b ≈ sqrt(p q) / (n (1 + p / n)).
    n, p, seeds = 50, 10, 200
    unbiased, biased = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(n, p)), rng.normal(size=(n, p))
        unbiased.append(cka(x, y, hsic="unbiased"))
        biased.append(cka(x, y, hsic="biased"))
    sd_mean = np.sqrt(2) / n / np.sqrt(seeds)
    assert abs(np.mean(unbiased)) < 5 * sd_mean
    assert np.std(unbiased) == pytest.approx(np.sqrt(2) / n, rel=0.3)
    assert min(biased) > 0
    assert np.mean(biased) == pytest.approx(p / n / (1 + p / n), rel=0.1)


# --- guards -------------------------------------------------------------------------------------


def test_negative_unbiased_cka_is_returned_not_nan():
    values = [cka(*np.random.default_rng(s).normal(size=(2, 12, 3)), hsic="unbiased")
              for s in range(20)]
    assert all(np.isfinite(values)) and min(values) < 0
    x, y = np.random.default_rng(int(np.argmin(values))).normal(size=(2, 12, 3))
    assert min(values) == pytest.approx(ref_cka(x @ x.T, y @ y.T, "unbiased"), abs=1e-10)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kernel": "cosine"}, r"unknown kernel 'cosine'; valid: \['linear', 'rbf'\]"),
    ({"hsic": "debiased"}, r"unknown hsic estimator 'debiased'; valid: \['biased', 'unbiased'\]"),
])
def test_unknown_names_list_valid_ones(kwargs, match):
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match=match):
        cka(x, x, **kwargs)


def test_guards():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="at least 4 stimuli"):
        cka(x[:3], x[:3], hsic="unbiased")
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cka(bad, x)
    with pytest.raises(ValueError, match=r"HSIC\(y, y\) = 0 is not positive"):
        cka(x, np.ones((10, 2)))
    with pytest.raises(ValueError, match="not positive"):
        cka(x, np.ones((10, 2)), hsic="unbiased")
    with pytest.raises(ValueError, match="median squared distance"):
        cka(np.r_[np.zeros((8, 2)), np.ones((2, 2))], x, kernel="rbf")


def labelled(values: np.ndarray, ids) -> xr.DataArray:
    return xr.DataArray(values, dims=("stimulus", "unit"), coords={"stimulus": list(ids)})


def test_labelled_inputs_aligned_and_mismatch_refused():
    x, y = related(1, 20, 4, 3)
    ids = [f"s{i:02d}" for i in range(20)]
    order = np.random.default_rng(0).permutation(20)
    shuffled = labelled(y[order], [ids[i] for i in order])
    assert cka(labelled(x, ids), shuffled) == pytest.approx(cka(x, y), abs=1e-12)
    with pytest.raises(ValueError, match=r"stimuli differ: .*'s19'"):
        cka(labelled(x, ids), labelled(y[:19], ids[:19]))
    voxels = xr.DataArray(y, dims=("stimulus", "voxel"), coords={"stimulus": ids})
    assert cka(labelled(x, ids), voxels) == pytest.approx(cka(x, y), abs=1e-12)


# --- minibatch CKA ------------------------------------------------------------------------------


def definition_minibatch(batches) -> float:
    h = np.array([[ref_hsic(x @ x.T, y @ y.T, "unbiased"), ref_hsic(x @ x.T, x @ x.T, "unbiased"),
                   ref_hsic(y @ y.T, y @ y.T, "unbiased")] for x, y in batches]).mean(axis=0)
    return h[0] / np.sqrt(h[1] * h[2])


def test_minibatch_matches_definition():
    x, y = related(2, 90, 5, 12)
    batches = [(x[i:i + 30], y[i:i + 30]) for i in range(0, 90, 30)]
    want = definition_minibatch(batches)
    assert minibatch_cka(batches) == pytest.approx(want, abs=1e-10)
    assert minibatch_cka([b[0] for b in batches], [b[1] for b in batches]) == pytest.approx(
        want, abs=1e-10)
    assert minibatch_cka(x, y, batch_size=30) == pytest.approx(want, abs=1e-10)
    assert want != pytest.approx(cka(x, y, hsic="unbiased"), abs=1e-4)


def test_minibatch_one_batch_is_unbiased_cka_and_shuffles_with_seed():
    x, y = related(4, 40, 5, 50)
    assert minibatch_cka([(x, y)]) == pytest.approx(cka(x, y, hsic="unbiased"), abs=1e-12)
    assert minibatch_cka([(x, y)], kernel="rbf") == pytest.approx(
        cka(x, y, kernel="rbf", hsic="unbiased"), abs=1e-12)
    perm = np.random.default_rng(3).permutation(40)
    want = definition_minibatch([(x[i], y[i]) for i in np.array_split(perm, 4)])
    assert minibatch_cka(x, y, batch_size=10, seed=3) == pytest.approx(want, abs=1e-10)


def test_minibatch_streams_without_an_n_by_n_matrix():
    """10 000 stimuli in 40 batches (an n x n float64 matrix would take 800 MB): the streamed
    value equals the definition on the same batches, and the peak memory stays far below."""
    import tracemalloc

    def stream():
        rng = np.random.default_rng(0)
        for _ in range(40):
            x = rng.normal(size=(250, 4))
            yield x, x @ rng.normal(size=(4, 6)) + rng.normal(size=(250, 6))
    want = definition_minibatch(list(stream()))
    tracemalloc.start()
    try:
        got = minibatch_cka(stream())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == pytest.approx(want, abs=1e-10)
    assert peak < 20e6, f"peak {peak / 1e6:.1f} MB"


def test_minibatch_guards():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_cka(x, x)
    with pytest.raises(ValueError, match="at least 4 stimuli"):
        minibatch_cka(x, x, batch_size=3)
    with pytest.raises(ValueError, match="no batches"):
        minibatch_cka([])


# --- CKA matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_cka_matrix_matches_pairwise(estimator):
    rng = np.random.default_rng(0)
    ids = np.arange(30)
    base = rng.normal(size=(30, 4))
    layers = {"small": base, "wide": np.tanh(base @ rng.normal(size=(4, 50))),
              "noise": rng.normal(size=(30, 6))}
    la = {k: labelled(v, ids) for k, v in layers.items()}
    order = rng.permutation(30)
    lb = {"shuffled": labelled(layers["wide"][order] + 0.1, ids[order]), "base": la["small"]}
    mat = cka_matrix(la, lb, hsic=estimator)
    assert mat.dims == ("layer_a", "layer_b")
    assert list(mat.layer_a.values) == ["small", "wide", "noise"]
    for a, b in itertools.product(la, lb):
        want = cka(la[a], lb[b], hsic=estimator)
        assert float(mat.sel(layer_a=a, layer_b=b)) == pytest.approx(want, abs=1e-10)
    square = cka_matrix(la, hsic=estimator)
    np.testing.assert_allclose(square.values, square.values.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(square.values), 1.0, atol=1e-10)


def test_cka_matrix_refuses_mismatched_stimuli():
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="stimuli differ"):
        cka_matrix({"a": labelled(x, range(10))}, {"b": labelled(x, range(1, 11))})


# --- inference ----------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_permutation_null_is_cka_of_permuted_y(estimator):
    x, y = related(5, 30, 3, 40)
    res = cka_permutation(x, y, n_perm=20, seed=11, hsic=estimator)
    rng = np.random.default_rng(11)
    want = [cka(x, y[rng.permutation(30)], hsic=estimator) for _ in range(20)]
    np.testing.assert_allclose(res.null.values, want, atol=1e-10)
    assert float(res.estimate) == pytest.approx(cka(x, y, hsic=estimator), abs=1e-12)
    assert float(res.p_value) == pytest.approx(1 / 21)


def test_permutation_p_value_uniform_under_null_and_small_under_dependence():
    """Under the null (independent x, y) p is uniform on {1/40, ..., 40/40}: over 200 seeds
    the mean is near 1/2 and about 10% fall at or below 0.1 (binomial 99.9% bounds); with y
    a noisy linear map of x, every p is the smallest possible, 1/40."""
    null = np.array([float(cka_permutation(*np.random.default_rng(s).normal(size=(2, 20, 3)),
                                           n_perm=39, seed=s, hsic="unbiased").p_value)
                     for s in range(200)])
    assert 0.44 < null.mean() < 0.58
    assert 0.04 <= np.mean(null <= 0.1) <= 0.17
    dependent = []
    for s in range(10):
        rng = np.random.default_rng(s)
        x = rng.normal(size=(20, 3))
        y = x @ rng.normal(size=(3, 3)) + 0.3 * rng.normal(size=(20, 3))
        dependent.append(float(cka_permutation(x, y, n_perm=39, seed=s).p_value))
    np.testing.assert_allclose(dependent, 1 / 40)


def test_bootstrap_biased_replicates_are_resampled_cka():
    x, y = related(6, 25, 3, 4)
    res = cka_bootstrap(x, y, n_boot=15, seed=2, ci=0.9)
    rng = np.random.default_rng(2)
    want = [cka(x[i], y[i]) for i in (rng.integers(0, 25, 25) for _ in range(15))]
    np.testing.assert_allclose(res.bootstrap.values, want, atol=1e-10)
    np.testing.assert_allclose([float(res.ci_low), float(res.ci_high)],
                               np.quantile(want, [0.05, 0.95]))
    assert float(res.standard_error) == pytest.approx(np.std(want, ddof=1))
    assert res.attrs["method"] == "cka_bootstrap"


def brute_resampled_unbiased(k: np.ndarray, l: np.ndarray, idx: np.ndarray) -> float:
    """U-statistic over resampled positions whose original stimuli are distinct."""
    kr, lr = k[np.ix_(idx, idx)], l[np.ix_(idx, idx)]
    vals = [kr[i, j] * lr[i, j] + kr[i, j] * lr[q, r] - 2 * kr[i, j] * lr[i, q]
            for i, j, q, r in itertools.permutations(range(len(idx)), 4)
            if len(set(idx[[i, j, q, r]])) == 4]
    return float(np.mean(vals))


@pytest.mark.parametrize("form", ["features", "gram"])
def test_bootstrap_unbiased_excludes_pairs_of_copies(form):
    x, y = related(8, 7, 3, 2)
    a, b = _prepared_pair(x, y, kernel="linear", hsic="unbiased", bandwidth=0.5, form=form)
    idx = np.array([0, 0, 1, 3, 3, 3, 5])
    w = np.bincount(idx, minlength=7).astype(float)
    want = brute_resampled_unbiased(x @ x.T, y @ y.T, idx)
    assert _weighted_unbiased_hsic(a, b, w) == pytest.approx(want, rel=1e-9)
    assert _weighted_unbiased_hsic(a, b, np.ones(7)) == pytest.approx(
        ref_hsic(x @ x.T, y @ y.T, "unbiased"), rel=1e-9)
    # the naive recomputation on the resample counts copies as pairs and differs
    assert hsic(x[idx], y[idx], hsic="unbiased") != pytest.approx(want, rel=1e-3)


def test_bootstrap_unbiased_interval_covers_estimate():
    x, y = related(9, 60, 4, 5, noise=0.5)
    res = cka_bootstrap(x, y, n_boot=200, seed=0, hsic="unbiased")
    assert float(res.estimate) == pytest.approx(cka(x, y, hsic="unbiased"), abs=1e-12)
    assert float(res.ci_low) < float(res.estimate) < float(res.ci_high)
    assert 0 < float(res.standard_error) < 0.2
    assert res.bootstrap.sizes["replicate"] == 200 and res.attrs["n_undefined"] == 0
