"""RDMs: agreement with rsatoolbox and scipy, labels, properties and clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.io
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from realdata import data_file
from scipy.spatial.distance import pdist
from scipy.spatial.distance import squareform as scipy_squareform

from rsa_bias.analysis.rsa.crossnobis import noise_precision, stack_runs
from rsa_bias.analysis.rsa.forms import condensed, squareform
from rsa_bias.analysis.rsa.rdms import rdm

rt_data = pytest.importorskip("rsatoolbox.data")
rt_rdm = pytest.importorskip("rsatoolbox.rdm")
rt_noise = pytest.importorskip("rsatoolbox.data.noise")




def rsatoolbox_vector(x: np.ndarray, ids: np.ndarray, method: str, *, runs=None, noise=None,
                      remove_mean: bool = False) -> np.ndarray:
    """rsatoolbox's RDM of long-format rows, reordered to the order of ``ids``."""
    obs = {"stimulus": np.asarray(ids)}
    if runs is not None:
        obs["run"] = np.asarray(runs)
    ds = rt_data.Dataset(x, obs_descriptors=obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rsatoolbox casts NaN descriptors
        r = rt_rdm.calc_rdm(ds, method=method, descriptor="stimulus", noise=noise,
                            cv_descriptor="run" if runs is not None else None,
                            remove_mean=remove_mean)
    order = list(r.pattern_descriptors["stimulus"])
    wanted = [order.index(s) for s in dict.fromkeys(np.asarray(ids).tolist())]
    return scipy_squareform(r.get_matrices()[0][np.ix_(wanted, wanted)], checks=False)


@pytest.fixture
def patterns() -> xr.DataArray:
    """12 stimuli with unsorted string ids, 40 units, a per-stimulus coord."""
    rng = np.random.default_rng(1)
    ids = np.array([f"img_{k:02d}" for k in rng.permutation(12)])
    x = rng.normal(size=(12, 40)) + rng.normal(size=(12, 1))
    return xr.DataArray(x, dims=("stimulus", "unit"),
                        coords={"stimulus": ids, "category": ("stimulus", np.arange(12) % 3)})


@pytest.fixture
def runs_patterns() -> xr.DataArray:
    """4 runs x 9 stimuli x 30 units: a shared signal plus run noise."""
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(9, 30))
    x = signal[None] + 0.8 * rng.normal(size=(4, 9, 30))
    return xr.DataArray(x, dims=("run", "stimulus", "unit"),
                        coords={"run": [1, 2, 3, 4], "stimulus": np.arange(9)[::-1]})


# ----------------------------------------------------------------- rsatoolbox agreement

@pytest.mark.parametrize(("method", "ref"), [("sqeuclidean", "euclidean"),
                                             ("correlation", "correlation")])
def test_matches_rsatoolbox(patterns: xr.DataArray, method: str, ref: str) -> None:
    ours = condensed(rdm(patterns, method=method)).values
    expected = rsatoolbox_vector(patterns.values, patterns.stimulus.values, ref)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)


def test_euclidean_is_root_of_rsatoolbox_euclidean(patterns: xr.DataArray) -> None:
    ours = condensed(rdm(patterns, method="euclidean")).values
    expected = rsatoolbox_vector(patterns.values, patterns.stimulus.values, "euclidean")
    np.testing.assert_allclose(ours, np.sqrt(expected), rtol=0, atol=1e-10)


def test_remove_mean_matches_rsatoolbox(patterns: xr.DataArray) -> None:
    ours = condensed(rdm(patterns, method="sqeuclidean", remove_mean=True)).values
    expected = rsatoolbox_vector(patterns.values, patterns.stimulus.values, "euclidean",
                                 remove_mean=True)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)
    assert not np.allclose(ours, condensed(rdm(patterns, method="sqeuclidean")).values)


@pytest.mark.parametrize("noise_method", ["shrinkage_diag", "shrinkage_eye", "diag", "full"])
def test_noise_precision_matches_rsatoolbox(noise_method: str) -> None:
    residuals = np.random.default_rng(3).normal(size=(60, 25)) @ np.diag(np.linspace(1, 3, 25))
    ours = noise_precision(residuals, method=noise_method)
    expected = rt_noise.prec_from_residuals(residuals.copy(), method=noise_method)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


def test_mahalanobis_matches_rsatoolbox(patterns: xr.DataArray) -> None:
    residuals = np.random.default_rng(4).normal(size=(80, 40))
    prec = noise_precision(residuals)
    ours = condensed(rdm(patterns, method="mahalanobis", noise=prec)).values
    expected = rsatoolbox_vector(patterns.values, patterns.stimulus.values, "mahalanobis",
                                 noise=prec)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("with_noise", [False, True])
def test_crossnobis_matches_rsatoolbox(runs_patterns: xr.DataArray, with_noise: bool) -> None:
    prec = noise_precision(np.random.default_rng(5).normal(size=(50, 30))) if with_noise else None
    ours = condensed(rdm(runs_patterns, method="crossnobis", noise=prec)).values
    long = runs_patterns.values.reshape(-1, 30)
    ids = np.tile(runs_patterns.stimulus.values, 4)
    expected = rsatoolbox_vector(long, ids, "crossnobis", runs=np.repeat([1, 2, 3, 4], 9),
                                 noise=prec)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)


def test_crossnobis_real_finger_data_matches_rsatoolbox() -> None:
    d = scipy.io.loadmat(data_file("pcm_finger_fmri/data_recipe_finger7T.mat"))
    y, cond, part = d["Y"][0][1], d["condVec"][0][1].ravel(), d["partVec"][0][1].ravel()
    da = xr.DataArray(y, dims=("stimulus", "voxel"), coords={"stimulus": cond})
    prec = 1.0 / y.var(axis=0)  # a univariate (diagonal) noise normalisation
    ours = rdm(da, method="crossnobis", runs=part, noise=prec)
    expected = rsatoolbox_vector(y, cond, "crossnobis", runs=part, noise=np.diag(prec))
    np.testing.assert_allclose(condensed(ours).values, expected, rtol=1e-10, atol=1e-12)
    assert ours.attrs["n_runs"] == 7 and ours.sizes["stimulus_i"] == 5
    assert np.all(condensed(ours).values > 0)  # every pair of fingers is distinguishable


# ----------------------------------------------------------------- scipy agreement

@pytest.mark.parametrize(("method", "metric", "scale"), [
    ("euclidean", "euclidean", "sqrt"), ("sqeuclidean", "sqeuclidean", "p"),
    ("correlation", "correlation", None), ("cosine", "cosine", None)])
def test_matches_scipy_pdist(method: str, metric: str, scale: str | None) -> None:
    x = np.random.default_rng(6).normal(size=(15, 32))
    ref = pdist(x, metric)
    ref = ref / np.sqrt(32) if scale == "sqrt" else ref / 32 if scale == "p" else ref
    np.testing.assert_allclose(condensed(rdm(x, method=method).values), ref, atol=1e-12)


def test_mahalanobis_matches_scipy_pdist() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(10, 8))
    a = rng.normal(size=(8, 8))
    prec = a @ a.T + np.eye(8)
    ref = pdist(x, "mahalanobis", VI=prec) ** 2 / 8
    np.testing.assert_allclose(condensed(rdm(x, method="mahalanobis", noise=prec).values), ref,
                               rtol=1e-10)
    diag = np.abs(rng.normal(size=8)) + 0.1
    np.testing.assert_allclose(rdm(x, method="mahalanobis", noise=diag).values,
                               rdm(x, method="mahalanobis", noise=np.diag(diag)).values,
                               atol=1e-12)


def test_crossnobis_is_unbiased_where_sqeuclidean_is_not() -> None:
    """Pure noise around identical patterns: crossnobis ~ 0 (some < 0), sqeuclidean ~ 2σ²."""
    x = np.random.default_rng(8).normal(size=(6, 20, 200))
    cv = condensed(rdm(x, method="crossnobis").values)
    naive = condensed(rdm(x, method="sqeuclidean").values)
    assert abs(cv.mean()) < 0.02 and (cv < 0).any()
    assert naive.mean() == pytest.approx(2 / 6, rel=0.05)


def test_crossnobis_equals_mean_over_run_pairs(runs_patterns: xr.DataArray) -> None:
    x = runs_patterns.values
    pairs = []
    for r in range(4):
        for s in range(4):
            if r != s:
                dr = x[r][:, None] - x[r][None]
                ds = x[s][:, None] - x[s][None]
                pairs.append(np.einsum("ijk,ijk->ij", dr, ds) / 30)
    np.testing.assert_allclose(rdm(runs_patterns, method="crossnobis").values,
                               np.mean(pairs, axis=0), atol=1e-12)


# ----------------------------------------------------------------- labels and forms

def test_labels_follow_input_order(patterns: xr.DataArray) -> None:
    d = rdm(patterns)
    assert d.dims == ("stimulus_i", "stimulus_j")
    np.testing.assert_array_equal(d.stimulus_i.values, patterns.stimulus.values)
    np.testing.assert_array_equal(d.category_j.values, patterns.category.values)
    a, b = patterns.stimulus.values[3], patterns.stimulus.values[7]
    direct = 1 - np.corrcoef(patterns.sel(stimulus=a), patterns.sel(stimulus=b))[0, 1]
    assert float(d.sel(stimulus_i=a, stimulus_j=b)) == pytest.approx(direct, abs=1e-12)
    assert d.attrs["method"] == "correlation" and "git_sha" in d.attrs


def test_long_format_and_named_run_dim_agree(runs_patterns: xr.DataArray) -> None:
    wide = rdm(runs_patterns, method="crossnobis")
    long = runs_patterns.stack(obs=("run", "stimulus")).transpose("obs", "unit")
    run_labels = long.run.values
    long = xr.DataArray(long.values, dims=("stimulus", "unit"),
                        coords={"stimulus": long.stimulus.values})
    np.testing.assert_allclose(rdm(long, method="crossnobis", runs=run_labels).values,
                               wide.values, atol=1e-12)
    renamed = rdm(runs_patterns.rename(run="repeat"), method="crossnobis", runs="repeat")
    np.testing.assert_allclose(renamed.values, wide.values, atol=1e-12)
    np.testing.assert_allclose(rdm(runs_patterns).values,
                               rdm(runs_patterns.mean("run")).values, atol=1e-12)


def test_stack_runs_averages_repeats_within_a_run() -> None:
    x = np.arange(12.0).reshape(6, 2)
    out = stack_runs(x, runs=[0, 0, 0, 1, 1, 1], stimulus_ids=["b", "a", "b", "a", "b", "a"])
    np.testing.assert_array_equal(out.stimulus.values, ["b", "a"])
    np.testing.assert_allclose(out.sel(run=0, stimulus="b").values, [2.0, 3.0])
    np.testing.assert_allclose(out.sel(run=1, stimulus="a").values, [8.0, 9.0])


def test_float32_close_to_float64(patterns: xr.DataArray) -> None:
    d32 = rdm(patterns, dtype="float32")
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32.values, rdm(patterns).values, atol=1e-5)


def test_condensed_matches_scipy_and_round_trips(patterns: xr.DataArray) -> None:
    d = rdm(patterns)
    vec = condensed(d)
    np.testing.assert_array_equal(vec.values, scipy_squareform(d.values, checks=False))
    assert vec.stimulus_i.values[0] == d.stimulus_i.values[0]
    assert vec.stimulus_j.values[-1] == d.stimulus_j.values[-1]
    back = squareform(vec)
    np.testing.assert_array_equal(back.values, d.values)
    np.testing.assert_array_equal(back.stimulus_j.values, d.stimulus_j.values)
    stack = np.stack([d.values, 2 * d.values])
    np.testing.assert_array_equal(squareform(condensed(stack)), stack)


# ----------------------------------------------------------------- properties

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
pattern_arrays = st.tuples(st.integers(3, 8), st.integers(2, 6)).flatmap(
    lambda s: arrays(np.float64, s, elements=finite))


@settings(max_examples=40, deadline=None)
@given(x=pattern_arrays, method=st.sampled_from(["euclidean", "sqeuclidean", "correlation",
                                                 "cosine"]))
def test_symmetric_zero_diagonal_and_nonnegative(x: np.ndarray, method: str) -> None:
    try:
        d = rdm(x, method=method).values
    except ValueError as err:  # constant / zero patterns are refused for angular distances,
        # and distances that underflow to 0 (1e-208 squared) for every method
        assert "undefined" in str(err) or "underflow to 0" in str(err)
        return
    np.testing.assert_array_equal(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0.0)
    assert np.all(d >= 0)
    if method in ("correlation", "cosine"):
        assert np.all(d <= 2)


@settings(max_examples=40, deadline=None)
@given(x=arrays(np.float64, (6, 5), elements=st.floats(-10, 10)),
       scale=arrays(np.float64, (6, 1), elements=st.floats(0.1, 10)),
       shift=arrays(np.float64, (6, 1), elements=st.floats(-10, 10)))
def test_correlation_invariant_to_per_stimulus_affine_maps(x: np.ndarray, scale: np.ndarray,
                                                           shift: np.ndarray) -> None:
    x = x + np.arange(5) * np.linspace(1, 2, 6)[:, None]  # keep patterns non-constant
    np.testing.assert_allclose(rdm(x * scale + shift).values, rdm(x).values, atol=1e-8)
    np.testing.assert_allclose(rdm(x * scale, method="cosine").values,
                               rdm(x, method="cosine").values, atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(x=arrays(np.float64, (5, 4), elements=st.floats(-100, 100, allow_subnormal=False)))
def test_euclidean_triangle_inequality(x: np.ndarray) -> None:
    # Subnormal entries (below 2.2e-308; found by Hypothesis: one 5e-324 among zeros) are
    # refused on purpose: their distances underflow (ValueError, "multiply x by a constant").
    d = rdm(x, method="euclidean").values
    # d(i, k) <= d(i, j) + d(j, k) for all i, j, k (fails for the squared distance). Distances
    # from the Gram matrix carry an absolute error of about sqrt(eps) x the patterns' RMS: two
    # patterns 5e-8 apart among entries of 3 come out 0 apart (found by Hypothesis).
    tol = 4 * np.sqrt(np.finfo(float).eps) * max(1.0, float(np.sqrt(np.mean(x**2))))
    assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :] + tol)


# ----------------------------------------------------------------- errors

def test_nan_pattern_is_named(patterns: xr.DataArray) -> None:
    bad = patterns.copy()
    bad[4, 3] = np.nan
    with pytest.raises(ValueError, match=str(patterns.stimulus.values[4])):
        rdm(bad)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "manhattan"}, r"unknown RDM method 'manhattan'; valid: \['correlation'"),
    ({"dtype": "float16"}, "valid: .'float32', 'float64'"),
    ({"method": "mahalanobis"}, "needs noise="),
    ({"method": "correlation", "noise": np.eye(40)}, "noise is used only by"),
    ({"method": "mahalanobis", "noise": np.eye(3)}, r"noise has shape \(3, 3\)"),
    ({"method": "crossnobis"}, "at least 2 runs"),
    ({"runs": "repeat"}, "'repeat' is not a dim"),
])
def test_bad_options_are_refused(patterns: xr.DataArray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rdm(patterns, **kwargs)


def test_bad_inputs_are_refused(patterns: xr.DataArray) -> None:
    with pytest.raises(ValueError, match="at least 3 stimuli"):
        rdm(patterns.isel(stimulus=[0, 1]))
    with pytest.raises(ValueError, match="stimulus ids repeat"):
        rdm(patterns.assign_coords(stimulus=np.zeros(12, int)))
    with pytest.raises(ValueError, match="channel dims"):
        rdm(patterns.expand_dims(seed=2).transpose("stimulus", "seed", "unit"))
    with pytest.raises(ValueError, match="expected 2 dims"):
        rdm(np.zeros(5))
    const = patterns.copy()
    const[2] = 1.0
    with pytest.raises(ValueError, match="constant"):
        rdm(const)
    with pytest.raises(ValueError, match=r"combinations have no pattern, e.g. \[\('b', 1\)\]"):
        stack_runs(np.zeros((3, 2)), runs=[0, 0, 1], stimulus_ids=["a", "b", "a"])
    with pytest.raises(ValueError, match="unknown noise method"):
        noise_precision(np.zeros((5, 2)), method="ledoit")
