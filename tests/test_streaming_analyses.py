"""Streamed analyses of chunked (Dask-backed) activations equal the in-memory path.

Reference: the package's own in-memory path on the same values (itself checked against
scikit-learn and brute-force Gram matrices in test_analysis_variance.py and the CKA tests).
The streamed path must also never load the whole array: ``dask.array.Array.__array__`` (what
``.values`` and ``np.asarray`` call) is made to raise, and each source chunk is counted.
"""

from __future__ import annotations

import collections
import threading

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from rsa_bias.analysis import cka, cka_matrix, feature_variance_explained, hsic

N, D = 600, 40
CHUNKS = {"stimulus": (97, 150, 3, 200, 150), "unit": 25}  # uneven along stimulus
TOL = {"rtol": 1e-10, "atol": 1e-10}
APPROX = {"rel": 1e-10, "abs": 1e-10}



def counted(values: np.ndarray, chunks) -> tuple[da.Array, collections.Counter]:
    """``values`` as a Dask array whose source chunks count how often they are computed."""
    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def load(block, block_info=None):
        with lock:
            counts[tuple(block_info[0]["chunk-location"])] += 1
        return block

    base = da.from_array(values, chunks=chunks)
    return base.map_blocks(load, dtype=values.dtype), counts


def activation(seed: int = 0, dtype=np.float64) -> xr.DataArray:
    """Binary features a, b, a 4-level class c; nonzero means and one unit scaled by 1e3."""
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 2, size=(N, 2))
    c = rng.integers(0, 4, N)
    phi = (f @ rng.normal(size=(2, D)) + np.eye(4)[c] @ rng.normal(size=(4, D))
           + rng.normal(size=(N, D)) + rng.normal(3.0, 1.0, size=D))
    phi[:, 3] *= 1e3
    split = rng.choice(np.array(["train", "val", "test"]), size=N)
    act = xr.DataArray(phi.astype(dtype), dims=("stimulus", "unit"), coords={
        "stimulus": np.arange(N), "feature_a": ("stimulus", f[:, 0]),
        "feature_b": ("stimulus", f[:, 1]), "feature_c": ("stimulus", c),
        "split": ("stimulus", split)})
    act.attrs["feature_names"] = ["a", "b", "c"]
    return act


def assert_same(streamed: xr.Dataset, memory: xr.Dataset) -> None:
    assert set(streamed.data_vars) == set(memory.data_vars) == {
        "r2", "r2_joint", "explained", "explained_joint", "total"}
    for name in memory.data_vars:
        assert streamed[name].dims == memory[name].dims
        np.testing.assert_allclose(streamed[name].values, memory[name].values, **TOL,
                                   err_msg=name)
    assert streamed.attrs["categorical_features"] == memory.attrs["categorical_features"]


# --- feature_variance_explained ----------------------------------------------------------------


@pytest.mark.parametrize("categorical", [None, False])
def test_variance_streamed_equals_in_memory(no_loading, categorical):
    act = activation()
    data, counts = counted(act.values, (CHUNKS["stimulus"], CHUNKS["unit"]))
    lazy = act.copy(data=data)
    streamed = feature_variance_explained(lazy, categorical=categorical)
    assert_same(streamed, feature_variance_explained(act, categorical=categorical))
    assert streamed.attrs["categorical_features"] == ("c" if categorical is None else "")
    assert len(counts) == len(data.chunks[0]) * len(data.chunks[1])
    assert set(counts.values()) == {2}  # every chunk read once per pass, two passes
    stimuli = act.coords.to_dataset().assign_attrs(feature_names=["a", "b", "c"])
    bare = feature_variance_explained(data, stimuli=stimuli, categorical=categorical)
    assert_same(bare, streamed)  # a bare dask array is streamed as well


def test_variance_streams_extra_dims_float32_and_splits(no_loading):
    first = activation(1, np.float32)
    noise = np.random.default_rng(9).normal(size=first.shape).astype(np.float32)
    acts = [first, first.copy(data=first.values * 0.5 + noise)]
    act = xr.concat(acts, dim=xr.DataArray([10, 20], dims="seed", name="seed"),
                    coords="minimal").transpose("seed", "unit", "stimulus")
    for fit, ev in (("val", "test"), ("train", None)):
        streamed = feature_variance_explained(act.chunk({"seed": 1, **CHUNKS}),
                                              fit_split=fit, eval_split=ev)
        memory = feature_variance_explained(act, fit_split=fit, eval_split=ev)
        assert_same(streamed, memory)
        assert list(streamed.seed.values) == [10, 20]


def test_variance_streamed_dead_layer_is_nan_like_in_memory():
    act = activation()
    dead = act.where(act.split != "test", 1.5).transpose("stimulus", "unit")
    with pytest.warns(RuntimeWarning, match="constant"):
        memory = feature_variance_explained(dead)
    with pytest.warns(RuntimeWarning, match="constant"):
        streamed = feature_variance_explained(dead.chunk(CHUNKS))
    assert np.isnan(streamed.r2.values).all() and np.isnan(float(streamed.r2_joint))
    assert_same(streamed, memory)


def test_variance_streamed_refuses_nan_like_in_memory():
    act = activation()
    act[5, 7] = np.nan
    with pytest.raises(ValueError, match="1 NaN/inf"):
        feature_variance_explained(act)
    with pytest.raises(ValueError, match="1 NaN/inf"):
        feature_variance_explained(act.chunk(CHUNKS))


# --- CKA and HSIC ------------------------------------------------------------------------------


def pair(seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    """x (600 x 40) and y (600 x 25) sharing signal, y's stimulus ids in another order."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)) + rng.normal(4.0, 1.0, size=D)
    x[:, 2] *= 100
    z = (x[:, :30] - x[:, :30].mean(axis=0)) / x[:, :30].std(axis=0)
    y = np.tanh(z) @ rng.normal(size=(30, 25)) + rng.normal(size=(N, 25)) - 3
    ids = np.array([f"s{i:03d}" for i in range(N)])
    perm = rng.permutation(N)
    return (xr.DataArray(x, dims=("stimulus", "unit"), coords={"stimulus": ids}),
            xr.DataArray(y[perm], dims=("stimulus", "voxel"), coords={"stimulus": ids[perm]}))


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_cka_and_hsic_streamed_equal_in_memory(no_loading, estimator):
    x, y = pair()
    xd, x_counts = counted(x.values, (CHUNKS["stimulus"], CHUNKS["unit"]))
    yd, y_counts = counted(y.values, ((250, 211, 139), 25))
    lazy_x, lazy_y = x.copy(data=xd), y.copy(data=yd)
    memory = cka(x, y, hsic=estimator)
    assert cka(lazy_x, lazy_y, hsic=estimator) == pytest.approx(memory, **APPROX)
    assert set(x_counts.values()) == {2}  # two passes
    # y's rows come in another order: each round of x chunks reads the y chunks it needs
    assert set(y_counts.values()) <= set(range(2, 2 + 10 // 2))
    assert len(x_counts) == 10 and len(y_counts) == 3
    assert hsic(lazy_x, lazy_y, hsic=estimator) == pytest.approx(hsic(x, y, hsic=estimator),
                                                                rel=1e-10)
    # one side in memory, the other chunked: aligned and streamed all the same
    assert cka(x.values, xd, hsic=estimator) == pytest.approx(1.0, **APPROX)  # bare dask
    assert cka(lazy_y, x, hsic=estimator) == pytest.approx(memory, **APPROX)


def test_cka_streamed_float32_and_unrelated():
    x, y = pair(1)
    x32 = x.astype(np.float32)
    rng = np.random.default_rng(5)
    z = y.copy(data=rng.normal(size=y.shape))
    mixed = x.copy(data=x.values @ rng.normal(size=(D, D)) + 300 * rng.normal(size=x.shape))
    assert 0.3 < cka(x, mixed) < 0.95  # a mid-range value
    for estimator in ("biased", "unbiased"):
        assert cka(x.chunk({"stimulus": 97}), mixed.chunk({"stimulus": 97}), hsic=estimator) \
            == pytest.approx(cka(x, mixed, hsic=estimator), **APPROX)
        big = x * 1e150  # rescaled by a power of two, as in memory, or HSIC overflows
        assert hsic(big.chunk({"stimulus": 97}), y.chunk({"stimulus": 150}), hsic=estimator) \
            == pytest.approx(hsic(big, y, hsic=estimator), rel=1e-10)
        assert cka(x32.chunk({"stimulus": 97}), y.chunk({"stimulus": 97}), hsic=estimator) \
            == pytest.approx(cka(x32, y, hsic=estimator), **APPROX)
        assert cka(x.chunk({"stimulus": 97}), z.chunk({"stimulus": 150}), hsic=estimator) \
            == pytest.approx(cka(x, z, hsic=estimator), **APPROX)


def test_cka_streamed_refusals_match_in_memory():
    x, y = pair()
    lazy_x, lazy_y = x.chunk({"stimulus": 97}), y.chunk({"stimulus": 97})
    with pytest.raises(ValueError, match="only kernel='linear' streams"):
        cka(lazy_x, lazy_y, kernel="rbf")
    with pytest.raises(ValueError, match="unknown kernel|valid"):
        cka(lazy_x, lazy_y, kernel="cosine")
    short = lazy_y.isel(stimulus=slice(1, None))
    for a, b in ((x, y.isel(stimulus=slice(1, None))), (lazy_x, short)):
        with pytest.raises(ValueError, match="stimuli differ"):
            cka(a, b)
    const = lazy_y * 0 + 2.0
    for a, b in ((x, const.compute()), (lazy_x, const)):
        with pytest.raises(ValueError, match=r"HSIC\(y, y\)"):
            cka(a, b)
    nan = y.copy(data=np.where(np.arange(N)[:, None] == 3, np.nan, y.values))
    with pytest.raises(ValueError, match="NaN/inf"):
        cka(lazy_x, nan.chunk({"stimulus": 97}))


def test_streamed_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    x, y = pair(2)
    act = activation(3)
    want_cka = cka(x, y, hsic="unbiased")
    want_fve = feature_variance_explained(act)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster):
        assert dask.base.get_scheduler().__self__.__class__.__name__ == "Client"
        got = cka(x.chunk({"stimulus": 97}), y.chunk({"stimulus": 97}), hsic="unbiased")
        fve = feature_variance_explained(act.chunk(CHUNKS))
    assert got == pytest.approx(want_cka, **APPROX)
    assert_same(fve, want_fve)


def test_cka_matrix_streams_lazy_layers(no_loading):
    x, y = pair()
    lazy = {"x": x.chunk({"stimulus": 97}), "y": y.chunk({"stimulus": 211})}
    eager = {"x": x, "y": y}
    got = cka_matrix(lazy)
    want = cka_matrix(eager)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-10, atol=1e-12)
    assert got.layer_a.values.tolist() == ["x", "y"]
