"""Searchlight RSA (rsa_bias.analysis.rsa.searchlight) against independent references: sphere
membership against a brute-force distance matrix (scipy cdist), correlation RDMs against
rsatoolbox's searchlight (rsatoolbox.util.searchlight, v0.3), every RDM method against
``rdm()`` sphere by sphere, scores against ``compare_rdms()`` sphere by sphere, chunked and
parallel runs against one serial chunk."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import cdist

from rsa_bias.analysis.rsa import (
    compare_rdms,
    condensed,
    noise_precision,
    rdm,
    searchlight_rdms,
    searchlight_rsa,
    searchlight_spheres,
    searchlight_to_nifti,
)

#: An anisotropic, sheared affine (mm) and a 6 x 5 x 4 mask with a hole and a cut corner.
AFFINE = np.array([[1.5, 0.2, 0.0, -10.0], [0.0, 2.0, 0.0, 4.0], [0.0, 0.0, 2.5, 1.0],
                   [0.0, 0.0, 0.0, 1.0]])


def _mask() -> np.ndarray:
    mask = np.ones((6, 5, 4), dtype=bool)
    mask[2:4, 2, 1:3] = False          # a hole inside
    mask[0, 0, :] = False              # a missing column at the edge
    mask[5, 4, 3] = False
    return mask


def _brute_force(mask, affine, radius):
    ijk = np.argwhere(mask)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return cdist(xyz, xyz) <= radius


@pytest.mark.parametrize(("radius", "min_voxels"), [(2.6, 1), (3.3, 6), (4.1, 12)])
def test_spheres_equal_brute_force_distances(radius, min_voxels):
    mask = _mask()
    sl = searchlight_spheres(mask, AFFINE, radius_mm=radius, min_voxels=min_voxels)
    within = _brute_force(mask, AFFINE, radius)
    counts = within.sum(axis=1)
    np.testing.assert_array_equal(sl.centres, np.flatnonzero(counts >= min_voxels))
    assert 0 < len(sl) <= mask.sum()
    for c, centre in enumerate(sl.centres):
        np.testing.assert_array_equal(sl.sphere(c), np.flatnonzero(within[centre]))
    np.testing.assert_array_equal(sl.ijk, np.argwhere(mask))
    assert sl.indptr[-1] == sl.indices.size == counts[counts >= min_voxels].sum()


def test_a_voxel_exactly_at_the_radius_is_inside():
    sl = searchlight_spheres(np.ones((1, 3, 1), bool), np.diag([1.0, 2.0, 1.0, 1.0]),
                             radius_mm=2.0, min_voxels=1)
    assert sl.sphere(1).tolist() == [0, 1, 2]
    assert sl.sphere(0).tolist() == [0, 1]


def _volume_data(mask, n_stimuli, seed=0):
    """Patterns (stimulus, mask voxel) and the same as a flattened full volume."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_stimuli, mask.sum())) + rng.normal(size=(1, mask.sum()))
    volume = np.zeros((n_stimuli, mask.size))
    volume[:, np.flatnonzero(mask.ravel())] = x
    return x, volume


def test_correlation_rdms_equal_rsatoolbox_searchlight(capsys):
    from rsatoolbox.util.searchlight import get_searchlight_RDMs, get_volume_searchlight

    mask = _mask()
    sl = searchlight_spheres(mask, np.eye(4), radius_mm=2.5, min_voxels=1)
    centres, neighbours = get_volume_searchlight(mask, radius=2.5, threshold=0.0,
                                                 truncate_at_boundary=True)
    ours = [np.ravel_multi_index(sl.ijk[sl.sphere(c)].T, mask.shape) for c in range(len(sl))]
    np.testing.assert_array_equal(centres, np.ravel_multi_index(sl.ijk[sl.centres].T,
                                                                mask.shape))
    for theirs, mine in zip(neighbours, ours, strict=True):  # rsatoolbox: distance < radius
        np.testing.assert_array_equal(np.sort(theirs), mine)
    x, volume = _volume_data(mask, 7)
    ref = get_searchlight_RDMs(volume, centres, ours, np.arange(7), method="correlation",
                               verbose=False).dissimilarities
    got = searchlight_rdms(x, spheres=sl, chunk_size=13)
    np.testing.assert_allclose(got.values, ref, rtol=0, atol=1e-8)
    capsys.readouterr()


def _runs_data(mask, n_runs=4, n_stimuli=6, seed=1):
    rng = np.random.default_rng(seed)
    v = int(mask.sum())
    signal = rng.normal(size=(n_stimuli, v))
    x = signal + rng.normal(size=(n_runs, n_stimuli, v))
    mixing = np.eye(v) + 0.3 * rng.normal(size=(v, v)) / np.sqrt(v)
    residuals = rng.normal(size=(n_runs, 30, v)) @ mixing
    ids = np.array([f"s{k}" for k in rng.permutation(n_stimuli)])
    da = xr.DataArray(x, dims=("run", "stimulus", "voxel"),
                      coords={"run": np.arange(n_runs), "stimulus": ids})
    return da, residuals


@pytest.mark.parametrize(("method", "noise"), [
    ("correlation", None), ("cosine", None), ("euclidean", None), ("sqeuclidean", None),
    ("mahalanobis", "shrinkage_diag"), ("mahalanobis", "diag"), ("mahalanobis", "full"),
    ("crossnobis", None),
    ("crossnobis", "shrinkage_diag"), ("crossnobis", "shrinkage_eye"), ("crossnobis", "diag"),
])
def test_every_method_equals_rdm_sphere_by_sphere(method, noise):
    mask = _mask()
    sl = searchlight_spheres(mask, AFFINE, radius_mm=3.3, min_voxels=3)
    x, residuals = _runs_data(mask)
    dof = 4 * 29
    kwargs = {} if noise is None else {"residuals": residuals, "noise_method": noise,
                                        "dof": dof}
    got = searchlight_rdms(x, spheres=sl, method=method, chunk_size=17, **kwargs)
    pooled = residuals.reshape(-1, residuals.shape[-1])
    for c in range(len(sl)):
        idx = sl.sphere(c)
        prec = None if noise is None else noise_precision(pooled[:, idx], method=noise,
                                                          dof=dof)
        ref = condensed(rdm(x.isel(voxel=idx), method=method, noise=prec))
        np.testing.assert_allclose(got[c].values, ref.values, rtol=1e-9, atol=1e-12)
    assert got["stimulus_i"].values.tolist() == ref["stimulus_i"].values.tolist()


def test_remove_mean_and_row_weights_equal_rdm():
    mask = _mask()
    sl = searchlight_spheres(mask, AFFINE, radius_mm=3.3, min_voxels=3)
    rng = np.random.default_rng(3)
    long = xr.DataArray(rng.normal(size=(14, int(mask.sum()))), dims=("stimulus", "voxel"),
                        coords={"stimulus": [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]})
    runs = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    for method in ("crossnobis", "correlation"):
        got = searchlight_rdms(long, spheres=sl, method=method, runs=runs, remove_mean=True,
                               run_weights="rows")
        for c in (0, len(sl) // 2, len(sl) - 1):
            ref = rdm(long.isel(voxel=sl.sphere(c)), method=method, runs=runs,
                      remove_mean=True, run_weights="rows")
            np.testing.assert_allclose(got[c].values, condensed(ref).values, rtol=1e-9,
                                       atol=1e-12)


@pytest.mark.parametrize("compare_method", ["spearman", "pearson", "kendall_tau_a", "rho_a",
                                            "cosine", "corr_cov"])
def test_scores_equal_compare_rdms_sphere_by_sphere(compare_method):
    mask = _mask()
    sl = searchlight_spheres(mask, AFFINE, radius_mm=3.3, min_voxels=3)
    x, residuals = _runs_data(mask)
    rng = np.random.default_rng(5)
    ids = x["stimulus"].values
    models = xr.concat([rdm(xr.DataArray(rng.normal(size=(6, 4)), dims=("stimulus", "unit"),
                                         coords={"stimulus": ids})) for _ in range(2)],
                       dim="model").assign_coords(model=["m1", "m2"])
    order = rng.permutation(6)  # the models in another stimulus order: aligned by id
    models = models.isel(stimulus_i=order, stimulus_j=order)
    res = searchlight_rsa(x, models, spheres=sl, rdm_method="crossnobis",
                          compare_method=compare_method, residuals=residuals, chunk_size=9,
                          return_rdms=True)
    assert res.score.dims == ("model", "centre")
    pooled = residuals.reshape(-1, residuals.shape[-1])
    for c in range(0, len(sl), 5):
        idx = sl.sphere(c)
        d = rdm(x.isel(voxel=idx), method="crossnobis", noise=noise_precision(pooled[:, idx]))
        for m in ("m1", "m2"):
            ref = compare_rdms(models.sel(model=m), d, method=compare_method)
            np.testing.assert_allclose(float(res.score.sel(model=m)[c]), ref, rtol=1e-9,
                                       atol=1e-12)
        np.testing.assert_allclose(res.rdm[c].values, condensed(d).values, rtol=1e-9)


def test_chunked_and_parallel_runs_equal_one_serial_chunk(monkeypatch):
    from distributed import Client

    mask = _mask()
    sl = searchlight_spheres(mask, AFFINE, radius_mm=3.3, min_voxels=3)
    x, residuals = _runs_data(mask)
    models = rdm(x.mean("run").isel(voxel=slice(0, 10)))
    kw = {"spheres": sl, "rdm_method": "crossnobis", "residuals": residuals}
    serial = searchlight_rsa(x, models, chunk_size=10**6, **kw)
    threads = searchlight_rsa(x, models, chunk_size=7, n_workers=3, **kw)
    with Client(processes=False, n_workers=1, threads_per_worker=2,
                dashboard_address=None) as client:
        cluster = searchlight_rsa(x, models, chunk_size=11, client=client, **kw)
    monkeypatch.setattr("rsa_bias.analysis.rsa._sl_kernels.GATHER_LIMIT", 500)  # sub-batches
    small = searchlight_rsa(x, models, chunk_size=10**6, **kw)
    np.testing.assert_allclose(small.score.values, serial.score.values, rtol=1e-12, atol=1e-14)
    for other in (threads, cluster):
        np.testing.assert_array_equal(other.score.values, serial.score.values)
        np.testing.assert_array_equal(other["voxel"].values, serial["voxel"].values)


def test_to_nifti_puts_each_score_at_its_centre_and_nan_elsewhere():
    mask = _mask()
    sl = searchlight_spheres(mask, AFFINE, radius_mm=3.3, min_voxels=8)
    x, _ = _runs_data(mask)
    models = xr.concat([rdm(x.mean("run").isel(voxel=slice(0, 9))),
                        rdm(x.mean("run").isel(voxel=slice(9, 20)))], dim="model")
    res = searchlight_rsa(x, models.assign_coords(model=["a", "b"]), spheres=sl)
    img = searchlight_to_nifti(res, model="b")
    data = img.get_fdata()
    np.testing.assert_allclose(img.affine, AFFINE)
    ijk = sl.ijk[sl.centres]
    np.testing.assert_allclose(data[tuple(ijk.T)], res.score.sel(model="b").values, rtol=1e-6)
    outside = np.ones(mask.shape, bool)
    outside[tuple(ijk.T)] = False
    assert outside.any() and np.isnan(data[outside]).all()
    assert searchlight_to_nifti(res.score).shape == (*mask.shape, 2)  # the score alone too


def test_bad_inputs_are_refused():
    mask = _mask()
    sl = searchlight_spheres(mask, AFFINE, radius_mm=3.3)
    x, residuals = _runs_data(mask)
    model = rdm(x.mean("run").isel(voxel=slice(0, 9)))
    with pytest.raises(ValueError, match="voxels"):
        searchlight_rdms(x.isel(voxel=slice(1, None)), spheres=sl)
    with pytest.raises(ValueError, match="crossnobis"):
        searchlight_rdms(x, spheres=sl, method="nobis")
    with pytest.raises(ValueError, match="spearman"):
        searchlight_rsa(x, model, spheres=sl, compare_method="spear")
    for radius in (0, -1.0, np.nan):
        with pytest.raises(ValueError, match="radius_mm"):
            searchlight_spheres(mask, AFFINE, radius_mm=radius)
    with pytest.raises(ValueError, match="3-D"):
        searchlight_spheres(mask[:, :, 0], AFFINE, radius_mm=3.0)
    with pytest.raises(ValueError, match="affine"):
        searchlight_spheres(mask, AFFINE[:3], radius_mm=3.0)
    with pytest.raises(TypeError, match="searchlight_spheres"):
        searchlight_rdms(x, spheres=[[0, 1]])
    with pytest.raises(ValueError, match="stimul"):
        searchlight_rsa(x, model.isel(stimulus_i=slice(1, None), stimulus_j=slice(1, None)),
                        spheres=sl)
    with pytest.raises(ValueError, match="used only by"):
        searchlight_rdms(x, spheres=sl, method="correlation", residuals=residuals)
    with pytest.raises(ValueError, match="needs residuals"):
        searchlight_rdms(x, spheres=sl, method="mahalanobis")
    with pytest.raises(ValueError, match="more residuals"):
        searchlight_rdms(x, spheres=sl, method="crossnobis", residuals=residuals[:1, :5],
                         noise_method="full")
    with pytest.raises(ValueError, match="voxel coord"):
        searchlight_rdms(x.assign_coords(i=("voxel", np.zeros(x.sizes["voxel"], int))),
                         spheres=sl)
    bad = x.copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        searchlight_rdms(bad, spheres=sl)
    with pytest.raises(ValueError, match="constant"):  # one-voxel spheres
        searchlight_rdms(x, spheres=searchlight_spheres(mask, AFFINE, radius_mm=0.5,
                                                        min_voxels=1))


def test_haxby_experiment_writes_the_maps_it_computes(tmp_path):
    import nibabel as nib

    from rsa_bias.brain import load_haxby
    from rsa_bias.experiments.searchlight import face_vs_house_model, run_haxby_searchlight
    from rsa_bias.store import read_results

    paths = run_haxby_searchlight(tmp_path, radius_mm=6.0)
    res = read_results(paths["results"])
    ds = load_haxby()
    ijk = (res["i"].values, res["j"].values, res["k"].values)
    fvh = nib.load(paths["nifti"]).get_fdata()
    np.testing.assert_allclose(fvh[ijk], res.score.sel(model="face_vs_house").values, rtol=1e-6)
    assert np.isnan(fvh).sum() == fvh.size - res.sizes["centre"]
    cn = nib.load(paths["crossnobis_nifti"]).get_fdata()
    mask = np.zeros(fvh.shape, bool)
    mask[ds["i"].values, ds["j"].values, ds["k"].values] = True
    sl = searchlight_spheres(mask, np.reshape(ds.attrs["affine"], (4, 4)), radius_mm=6.0)
    pooled = ds["residual"].values.reshape(-1, ds.sizes["voxel"])
    for c in (0, 200, len(sl) - 1):  # references: rdm() and compare_rdms() on one sphere
        idx = sl.sphere(c)
        prec = noise_precision(pooled[:, idx], dof=int(ds["residual_dof"].sum()))
        d = rdm(ds["response"].isel(voxel=idx), method="crossnobis", noise=prec)
        assert cn[ijk][c] == pytest.approx(float(d.sel(stimulus_i="face", stimulus_j="house")),
                                           rel=1e-5)
        ref = compare_rdms(face_vs_house_model(ds["stimulus"].values),
                           rdm(ds["response"].isel(voxel=idx)))
        assert float(res.score.sel(model="face_vs_house")[c]) == pytest.approx(ref, abs=1e-12)
    assert paths["figure"].stat().st_size > 10_000
