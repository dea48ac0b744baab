"""Procrustes, CCA and SVCCA: zero/one under allowed transforms, metric axioms, references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import eigh, orthogonal_procrustes
from scipy.stats import ortho_group
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import PCA

from rsa_bias.analysis.similarity.shape_metrics import (
    canonical_correlations,
    cca_similarity,
    procrustes_distance,
    svcca,
)


def normalised(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=0)
    return xc / np.linalg.norm(xc)


def related(seed: int, n: int, p: int, q: int, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    return x, x @ rng.normal(size=(p, q)) + noise * rng.normal(size=(n, q))


def ref_canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Generalised eigenproblem Sxy Syy^-1 Syx a = rho^2 Sxx a (full-rank inputs)."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    rho2 = eigh(sxy @ np.linalg.solve(syy, sxy.T), sxx, eigvals_only=True)[::-1]
    return np.sqrt(np.clip(rho2[:min(x.shape[1], y.shape[1])], 0, 1))


def qr_canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    qx = np.linalg.qr(x - x.mean(axis=0))[0]
    qy = np.linalg.qr(y - y.mean(axis=0))[0]
    return np.linalg.svd(qx.T @ qy, compute_uv=False)


# --- Procrustes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "angular"])
@pytest.mark.parametrize("seed", range(3))
def test_procrustes_zero_for_rotated_scaled_shifted_copy(metric, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 6))
    y = 3.0 * x @ ortho_group.rvs(6, random_state=rng) + rng.normal(size=6)
    assert procrustes_distance(x, y, method=metric) == pytest.approx(0.0, abs=1e-6)
    padded = np.c_[y, np.zeros((40, 2))]
    assert procrustes_distance(x, padded, method=metric) == pytest.approx(0.0, abs=1e-6)
    assert procrustes_distance(x, rng.normal(size=(40, 6)), method=metric) > 0.3


@pytest.mark.parametrize("seed", range(3))
def test_procrustes_matches_scipy(seed):
    x, y = related(seed, 30, 5, 5)
    xn, yn = normalised(x), normalised(y)
    r, _ = orthogonal_procrustes(yn, xn)
    assert procrustes_distance(x, y) == pytest.approx(np.linalg.norm(xn - yn @ r), abs=1e-10)
    cos = np.sum(xn * (yn @ r))
    assert procrustes_distance(x, y, method="angular") == pytest.approx(np.arccos(cos), abs=1e-8)
    assert procrustes_distance(x, y) == pytest.approx(procrustes_distance(y, x), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), dims=st.tuples(*[st.integers(1, 5)] * 3),
       mix=st.floats(0.0, 2.0))
def test_angular_procrustes_triangle_inequality(seed, dims, mix):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(15, 3))
    a, b, c = (base @ rng.normal(size=(3, d)) + mix * rng.normal(size=(15, d)) for d in dims)
    d = {(i, j): procrustes_distance(u, v, method="angular")
         for (i, u), (j, v) in itertools.product(enumerate((a, b, c)), repeat=2)}
    for i, j, k in itertools.permutations(range(3)):
        assert d[i, k] <= d[i, j] + d[j, k] + 1e-9


def test_procrustes_guards():
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match=r"valid: \['angular', 'euclidean'\]"):
        procrustes_distance(x, x, method="cosine")
    with pytest.raises(ValueError, match="constant"):
        procrustes_distance(x, np.ones((10, 2)))
    with pytest.raises(ValueError, match="NaN"):
        procrustes_distance(x, np.full((10, 2), np.nan))


# --- CCA / SVCCA --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_cca_matches_generalised_eigenproblem_and_qr(seed):
    x, y = related(seed, 80, 4, 6, noise=2.0)
    rho = canonical_correlations(x, y)
    np.testing.assert_allclose(rho, ref_canonical_correlations(x, y), atol=1e-8)
    np.testing.assert_allclose(rho, qr_canonical_correlations(x, y)[:4], atol=1e-10)
    assert cca_similarity(x, y) == pytest.approx(np.mean(rho**2), abs=1e-12)
    assert cca_similarity(x, y, n_components=2) == pytest.approx(np.mean(rho[:2] ** 2))
    assert cca_similarity(x, y) < 0.99


def test_first_canonical_correlation_matches_sklearn():
    x, y = related(5, 200, 3, 4, noise=2.0)
    u, v = CCA(n_components=1, max_iter=5000, tol=1e-12).fit(x, y).transform(x, y)
    want = abs(np.corrcoef(u[:, 0], v[:, 0])[0, 1])
    assert canonical_correlations(x, y)[0] == pytest.approx(want, abs=1e-6)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), p=st.integers(1, 6))
def test_cca_is_one_for_invertible_linear_transforms(seed, p):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, p))
    m = rng.normal(size=(p, p)) + 3 * np.eye(p)
    assert cca_similarity(x, x @ m + rng.normal(size=p)) == pytest.approx(1.0, abs=1e-8)
    assert svcca(x, x @ m, keep=1.0) == pytest.approx(1.0, abs=1e-8)


def test_cca_warns_when_degenerate_and_checks_n_components():
    x, y = related(0, 10, 6, 6)
    with pytest.warns(RuntimeWarning, match="degenerate"):
        canonical_correlations(x, y)
    x, y = related(0, 50, 3, 4)
    with pytest.raises(ValueError, match="3 canonical correlations"):
        cca_similarity(x, y, n_components=4)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_svcca_matches_pca_then_cca(keep):
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(120, 3)) * [5.0, 2.0, 1.0]
    x = latent @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(120, 10))
    y = np.tanh(latent @ rng.normal(size=(3, 12))) + 0.1 * rng.normal(size=(120, 12))
    rx = PCA(n_components=keep, svd_solver="full").fit_transform(x)
    ry = PCA(n_components=keep, svd_solver="full").fit_transform(y)
    want = np.mean(ref_canonical_correlations(rx, ry))
    assert svcca(x, y, keep=keep) == pytest.approx(want, abs=1e-8)


def test_labelled_inputs_aligned():
    x, y = related(2, 25, 3, 3)
    ids = np.arange(25) * 10
    order = np.random.default_rng(0).permutation(25)
    xa = xr.DataArray(x, dims=("stimulus", "unit"), coords={"stimulus": ids})
    ya = xr.DataArray(y[order], dims=("stimulus", "unit"), coords={"stimulus": ids[order]})
    assert cca_similarity(xa, ya) == pytest.approx(cca_similarity(x, y), abs=1e-12)
    assert procrustes_distance(xa, ya) == pytest.approx(procrustes_distance(x, y), abs=1e-12)
    with pytest.raises(ValueError, match="stimuli differ"):
        svcca(xa, ya.isel(stimulus=slice(1, None)))
