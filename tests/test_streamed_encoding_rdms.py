"""Streamed ridge scores and blocked RDM comparisons equal their in-memory references.

References: scikit-learn ``Ridge`` fitted per fold in memory (outer folds, and the inner
leave-one-fold-out choice of alpha by brute force), ``cross_validated_scores`` with a fixed
``Ridge`` on the same folds, and ``compare_rdms(rdm(x), rdm(y))`` on the full RDMs. The
chunked paths must never load a whole Dask array (``__array__`` raises) and the blocked
comparison must compute at most ``block_size`` rows at a time.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from rsa_bias.analysis import (
    blocked_rdm_comparison,
    compare_rdms,
    cross_validated_scores,
    rdm,
    streamed_ridge_scores,
)

ALPHAS = np.array([0.03, 1.0, 30.0, 1000.0])
TOL = 1e-10



def _data(n=157, p=9, t=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, size=p) + 4.0  # far from 0: centring
    y = np.tanh(x - 4.0) @ rng.normal(size=(p, t)) + rng.normal(size=(n, t)) + 10.0
    return x, y


def _labelled(values, ids, dim, chunks=None):
    da_ = xr.DataArray(values, dims=("stimulus", dim), coords={"stimulus": ids})
    return da_ if chunks is None else da_.chunk({"stimulus": chunks})


def _oof_r2(x, y, splits, alpha, intercept=True):
    pred = np.empty_like(y)
    for tr, te in splits:
        pred[te] = Ridge(alpha=alpha, fit_intercept=intercept).fit(x[tr], y[tr]).predict(x[te])
    return 1.0 - ((y - pred) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0), pred


# --------------------------------------------------------------------------- ridge


@pytest.mark.parametrize("intercept", [True, False])
def test_every_alpha_matches_sklearn_ridge_per_fold(intercept, no_loading):
    x, y = _data()
    lazy = _labelled(da.from_array(x, chunks=((40, 3, 60, 54), 9)), np.arange(157), "unit")
    res = streamed_ridge_scores(lazy, y, alphas=ALPHAS, cv=5, fit_intercept=intercept)
    splits = list(KFold(5, shuffle=True, random_state=0).split(x))
    for j, alpha in enumerate(ALPHAS):
        want, _ = _oof_r2(x, y, splits, alpha, intercept)
        np.testing.assert_allclose(res.r2_by_alpha.values[j], want, rtol=0, atol=TOL)
    best = ALPHAS[np.argmax(res.r2_by_alpha.values, axis=0)]
    np.testing.assert_array_equal(res.best_alpha.values, best)


@pytest.mark.parametrize("per_target", [True, False])
def test_nested_alpha_choice_matches_brute_force(per_target):
    """Outer fold f predicted at the alpha minimising the SSE of leave-one-fold-out over the
    other folds (each inner model fitted by scikit-learn on the folds other than f and g)."""
    x, y = _data(n=90, p=6, t=3, seed=1)
    k = 4
    res = streamed_ridge_scores(x, y, alphas=ALPHAS, cv=k, seed=3,
                                alpha_per_target=per_target)
    tests = [te for _, te in KFold(k, shuffle=True, random_state=3).split(x)]
    pred = np.empty_like(y)
    for f in range(k):
        sse = np.zeros((len(ALPHAS), y.shape[1]))
        for g in set(range(k)) - {f}:
            train = np.setdiff1d(np.arange(90), np.r_[tests[f], tests[g]])
            for j, alpha in enumerate(ALPHAS):
                p = Ridge(alpha=alpha).fit(x[train], y[train]).predict(x[tests[g]])
                sse[j] += ((y[tests[g]] - p) ** 2).sum(0)
        chosen = np.argmin(sse, 0) if per_target else np.full(3, np.argmin(sse.sum(1)))
        np.testing.assert_array_equal(res.alpha.values[f], ALPHAS[chosen])
        train = np.setdiff1d(np.arange(90), tests[f])
        for c in range(y.shape[1]):
            model = Ridge(alpha=ALPHAS[chosen[c]]).fit(x[train], y[train, c])
            pred[tests[f], c] = model.predict(x[tests[f]])
    resid = ((y - pred) ** 2).sum(0)
    np.testing.assert_allclose(res.r2.values, 1 - resid / ((y - y.mean(0)) ** 2).sum(0),
                               rtol=0, atol=TOL)
    np.testing.assert_allclose(res.mse.values, resid / 90, rtol=1e-10)


def test_folds_are_those_of_cross_validated_scores_and_follow_ids():
    """Rows in shuffled order with string ids: the folds are drawn in ascending id order,
    exactly as cross_validated_scores draws them (there with a fixed Ridge)."""
    x, y = _data(n=80, p=5, t=3, seed=2)
    ids = np.array([f"s{i:03d}" for i in range(80)])
    order = np.random.default_rng(5).permutation(80)
    xl = _labelled(x[order], ids[order], "unit", chunks=(30, 50))
    yl = _labelled(y, ids, "neuron")
    res = streamed_ridge_scores(xl, yl, alphas=ALPHAS, cv=5, seed=7)
    for j, alpha in enumerate(ALPHAS):
        ref = cross_validated_scores(_labelled(x, ids, "unit"), yl, estimator=Ridge(alpha=alpha),
                                     cv=5, seed=7)
        np.testing.assert_allclose(res.r2_by_alpha.values[j], ref.r2.values, rtol=0, atol=TOL)
    assert res.r2.dims == ("neuron",) and list(res.neuron.values) == list(range(3))


def test_numpy_and_uneven_dask_chunks_agree(no_loading):
    x, y = _data(n=211, p=12, t=6, seed=4)
    ids = np.arange(211) * 3 + 5
    order = np.random.default_rng(0).permutation(211)
    ref = streamed_ridge_scores(_labelled(x, ids, "unit"), _labelled(y, ids, "voxel"),
                                alphas=ALPHAS)
    lazy_x = _labelled(x, ids, "unit", chunks=(1, 100, 7, 103))
    lazy_y = _labelled(y[order], ids[order], "voxel", chunks=(50, 161))  # misordered, chunked
    got = streamed_ridge_scores(lazy_x, lazy_y, alphas=ALPHAS)
    for name in ("r2", "mse", "r2_by_alpha"):
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got.alpha.values, ref.alpha.values)


def test_a_distributed_client_gives_the_same_numbers():
    distributed = pytest.importorskip("distributed")
    x, y = _data(n=120, p=8, t=4, seed=6)
    lazy = _labelled(x, np.arange(120), "unit", chunks=(33, 40, 47))
    ref = streamed_ridge_scores(x, y, alphas=ALPHAS)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster):
        got = streamed_ridge_scores(lazy, y, alphas=ALPHAS)
    np.testing.assert_allclose(got.r2_by_alpha.values, ref.r2_by_alpha.values, rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(got.r2.values, ref.r2.values, rtol=0, atol=1e-12)


def test_ridge_refuses_bad_inputs_clearly():
    x, y = _data(n=40, p=4, t=2)
    with pytest.raises(ValueError, match="at least 3"):
        streamed_ridge_scores(x, y, cv=2)
    bad = x.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        streamed_ridge_scores(_labelled(bad, np.arange(40), "unit", chunks=10), y)
    with pytest.raises(ValueError, match="stimuli differ"):
        streamed_ridge_scores(_labelled(x, np.arange(40), "unit"),
                              _labelled(y, np.arange(40) + 1, "target"))


# --------------------------------------------------------------------------- RDMs


def _reps(n=203, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 11)) + 2.0
    y = np.tanh(x[:, :6] @ rng.normal(size=(6, 7))) + 0.5 * rng.normal(size=(n, 7))
    return x, y


@pytest.mark.parametrize("rdm_method", ["correlation", "cosine", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_blocked_comparison_equals_compare_rdms(rdm_method, method, no_loading):
    x, y = _reps()
    ids = np.arange(203) + 100
    order = np.random.default_rng(1).permutation(203)
    want = compare_rdms(rdm(_labelled(x, ids, "unit"), method=rdm_method),
                        rdm(_labelled(y, ids, "neuron"), method=rdm_method), method=method)
    xl = _labelled(x, ids, "unit")
    yl = _labelled(y[order], ids[order], "neuron")   # misordered: aligned by id
    for a, b in ((xl, yl), (xl.chunk({"stimulus": 45}), yl.chunk({"stimulus": 70}))):
        got = blocked_rdm_comparison(a, b, rdm_method=rdm_method, method=method,
                                     block_size=64)   # 203 = 3 * 64 + 11
        assert abs(float(got.similarity) - want) < TOL
        assert int(got.n_pairs) == 203 * 202 // 2


def test_blocked_comparison_computes_one_block_of_rows_at_a_time(monkeypatch):
    x, y = _reps(n=150)
    shapes = []
    original = da.Array.compute

    def counted(self, *args, **kwargs):
        shapes.append(self.shape)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(da.Array, "compute", counted)
    lazy = _labelled(x, np.arange(150), "unit", chunks=40)
    got = blocked_rdm_comparison(lazy, y, block_size=32)
    assert shapes and max(s[0] for s in shapes) <= 32
    assert len(shapes) == 5 + 10  # 5 blocks: once as the i-block, then each pair j > i
    assert abs(float(got.similarity) - compare_rdms(rdm(x), rdm(y), method="pearson")) < TOL


def test_blocked_comparison_refuses_what_cannot_stream():
    x, y = _reps(n=20)
    with pytest.raises(ValueError, match="subsample"):
        blocked_rdm_comparison(x, y, method="spearman")
    with pytest.raises(ValueError, match="kendall_tau_b.*supported: \\['pearson', 'cosine'\\]"):
        blocked_rdm_comparison(x, y, method="kendall_tau_b")
    with pytest.raises(ValueError, match="supported: \\['correlation', 'cosine', 'euclidean'"):
        blocked_rdm_comparison(x, y, rdm_method="crossnobis")
    with pytest.raises(ValueError, match="unknown comparison method"):
        blocked_rdm_comparison(x, y, method="pearsn")
    const = x.copy()
    const[3] = 1.0
    with pytest.raises(ValueError, match="constant"):
        blocked_rdm_comparison(const, y, block_size=8)
