"""patterns_from_nifti on synthetic runs whose true betas are known, and its error messages."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsa_bias.brain import patterns_from_nifti, to_nifti

T_R, N_VOL, SHAPE = 2.0, 100, (4, 3, 2)
CONDITIONS = ("a", "b")
BASELINE = 1000.0
AFFINE = np.diag([3.0, 3.0, 4.0, 1.0])


def _events(run: int) -> pd.DataFrame:
    """Alternating 12 s blocks of a and b, 20 s apart (the order flips every run)."""
    onsets = np.arange(10.0, N_VOL * T_R - 30, 20.0)
    kinds = [CONDITIONS[(b + run) % 2] for b in range(onsets.size)]
    return pd.DataFrame({"onset": onsets, "duration": 12.0, "trial_type": kinds})


def _regressor(events: pd.DataFrame, condition: str) -> np.ndarray:
    """Boxcar at 0.02 s resolution convolved with nilearn's Glover HRF, sampled per volume."""
    from nilearn.glm.first_level import glover_hrf

    dt = T_R / 50
    t = np.arange(0, N_VOL * T_R + 40, dt)
    box = np.zeros_like(t)
    for row in events.itertuples():
        if row.trial_type == condition:
            box[(t >= row.onset) & (t < row.onset + row.duration)] = 1.0
    hrf = glover_hrf(T_R, oversampling=50, time_length=32.0)
    return np.convolve(box, hrf)[: t.size][np.round(np.arange(N_VOL) * T_R / dt).astype(int)]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """3 runs of BOLD = baseline + known betas x HRF regressors + linear drift + small noise."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("nifti")
    mask = np.ones(SHAPE, dtype=np.int16)
    mask[0, 0, 0] = mask[3, 2, 1] = 0
    truth = rng.uniform(5, 40, size=(*SHAPE, len(CONDITIONS)))     # grid x condition
    nib.save(nib.Nifti1Image(mask, AFFINE), root / "mask.nii.gz")
    runs, events = [], []
    for r in range(3):
        ev = _events(r)
        x = np.stack([_regressor(ev, c) for c in CONDITIONS], axis=1)    # (time, condition)
        signal = BASELINE + np.einsum("ijkc,tc->ijkt", truth, x)
        signal += np.linspace(0, 5, N_VOL) + 0.5 * rng.normal(size=(*SHAPE, N_VOL))
        nib.save(nib.Nifti1Image(signal.astype(np.float32), AFFINE), root / f"run{r}.nii.gz")
        ev.to_csv(root / f"run{r}_events.tsv", sep="\t", index=False)
        runs.append(root / f"run{r}.nii.gz")
        events.append(root / f"run{r}_events.tsv")
    return {"root": root, "runs": runs, "events": events, "truth": truth, "mask": mask != 0}


def _fit(s, *, runs=None, events=None, **kw):
    opts = {"mask_img": s["root"] / "mask.nii.gz", "t_r": T_R, "progress": False, **kw}
    return patterns_from_nifti(s["runs"] if runs is None else runs,
                               s["events"] if events is None else events, **opts)


def test_true_betas_are_recovered(synthetic):
    ds = _fit(synthetic, signal_scaling=False)
    truth = synthetic["truth"][synthetic["mask"]]                   # (voxel, condition)
    assert ds["response"].dims == ("run", "stimulus", "voxel")
    assert ds["response"].shape == (3, 2, synthetic["mask"].sum())
    assert list(ds["stimulus"].values) == list(CONDITIONS)
    for r in range(3):
        np.testing.assert_allclose(ds["response"].isel(run=r).values.T, truth, atol=0.5)
    i, j, k = np.nonzero(synthetic["mask"])
    np.testing.assert_array_equal(np.c_[ds["i"], ds["j"], ds["k"]], np.c_[i, j, k])
    # residuals: noise sd 0.5 (plus HRF-sampling error), dof = volumes - design rank
    assert ds["residual"].shape == (3, N_VOL, truth.shape[0])
    assert 0.3 < float(ds["residual"].std()) < 0.8
    from nilearn.glm.first_level import make_first_level_design_matrix

    design = make_first_level_design_matrix(np.arange(N_VOL) * T_R, _events(0),
                                            drift_model="cosine", high_pass=1 / 128)
    assert (ds["residual_dof"].values == N_VOL - np.linalg.matrix_rank(design)).all()
    assert ds.attrs["units"] == "image units" and ds.attrs["t_r"] == T_R
    np.testing.assert_allclose(np.reshape(ds.attrs["affine"], (4, 4)), AFFINE)


def test_default_scaling_is_percent_signal_change(synthetic):
    ds = _fit(synthetic, residuals=False)
    assert "residual" not in ds and ds.attrs["units"] == "percent signal change"
    bold = nib.load(synthetic["runs"][1]).get_fdata()[synthetic["mask"]]  # (voxel, time)
    expected = 100 * synthetic["truth"][synthetic["mask"]] / bold.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(ds["response"].sel(run=2).values.T, expected, rtol=0.03)


def test_images_dataframes_confounds_and_condition_subset(synthetic, capsys):
    imgs = [nib.load(p) for p in synthetic["runs"][:2]]
    events = [pd.read_csv(p, sep="\t") for p in synthetic["events"][:2]]
    motion = [np.random.default_rng(r).normal(size=(N_VOL, 2)) for r in range(2)]
    ds = patterns_from_nifti(imgs, events, mask_img=nib.load(synthetic["root"] / "mask.nii.gz"),
                             t_r=T_R, confounds=motion, conditions=["b"], signal_scaling=False,
                             progress=True)
    assert list(ds["stimulus"].values) == ["b"] and list(ds["run"].values) == [1, 2]
    np.testing.assert_allclose(ds["response"].isel(run=0, stimulus=0).values,
                               synthetic["truth"][synthetic["mask"]][:, 1], atol=0.5)
    assert "GLM per run" in capsys.readouterr().err
    assert ds.attrs["confounds"] == "confound_0, confound_1"
    assert (ds["residual_dof"].values == N_VOL - 2 - 6).all()  # 2 conditions, 3 drifts, 1


def test_runs_of_different_lengths(synthetic):
    short = nib.load(synthetic["runs"][0]).slicer[..., :90]          # events end by 162 s
    ds = _fit(synthetic, runs=[short, synthetic["runs"][1]], events=synthetic["events"][:2],
              signal_scaling=False)
    assert list(ds["n_volumes"].values) == [90, 100]
    assert ds["residual"].shape == (2, 100, synthetic["mask"].sum())
    assert np.isnan(ds["residual"].isel(run=0, time=slice(90, None))).all()
    assert np.isfinite(ds["residual"].isel(run=0, time=slice(0, 90))).all()
    np.testing.assert_allclose(ds["frame_time"].values, np.arange(100) * T_R)
    np.testing.assert_allclose(ds["response"].isel(run=0).values.T,
                               synthetic["truth"][synthetic["mask"]], atol=0.5)


def test_to_nifti_round_trip(synthetic):
    ds = _fit(synthetic, residuals=False)
    values = ds["response"].isel(run=0, stimulus=1)
    img = to_nifti(values, ds, fill=np.nan)
    data = img.get_fdata()
    np.testing.assert_allclose(data[synthetic["mask"]], values.values, rtol=1e-6)
    assert np.isnan(data[~synthetic["mask"]]).all()
    np.testing.assert_allclose(img.affine, AFFINE)
    four_d = to_nifti(ds["response"].isel(run=0), ds)                # (stimulus, voxel)
    assert four_d.shape == (*SHAPE, 2)
    shuffled = values.isel(voxel=np.random.default_rng(1).permutation(values.sizes["voxel"]))
    np.testing.assert_array_equal(to_nifti(shuffled, ds).get_fdata(), to_nifti(values, ds)
                                  .get_fdata())                      # aligned on voxel ids
    with pytest.raises(ValueError, match="expected"):
        to_nifti(np.ones(3), ds)


# --------------------------------------------------------------------------- errors

def _save(tmp_path: Path, data: np.ndarray, name: str, affine=AFFINE) -> Path:
    nib.save(nib.Nifti1Image(data, affine), tmp_path / name)
    return tmp_path / name


def test_events_count_must_match_runs(synthetic):
    with pytest.raises(ValueError, match=r"3 BOLD run\(s\) but 2 events tables"):
        _fit(synthetic, events=synthetic["events"][:2])
    with pytest.raises(ValueError, match=r"3 BOLD run\(s\) but 1 confounds tables"):
        _fit(synthetic, confounds=[np.zeros((N_VOL, 1))])


def test_events_need_bids_columns(synthetic):
    events = [pd.read_csv(p, sep="\t") for p in synthetic["events"]]
    events[1] = events[1].drop(columns="duration")
    with pytest.raises(ValueError, match=r"run 2 events lack the column\(s\) \['duration'\]"):
        _fit(synthetic, events=events)


def test_events_beyond_the_run_are_refused(synthetic):
    events = [pd.read_csv(p, sep="\t") for p in synthetic["events"]]
    events[2].loc[3, "onset"] = N_VOL * T_R - 5.0                    # ends 7 s after the run
    with pytest.raises(ValueError, match="run 3: 1 event.* end after the run .*misaligned"):
        _fit(synthetic, events=events)
    with pytest.raises(ValueError, match="end after the run"):
        _fit(synthetic, t_r=1.0)                                     # wrong TR: same symptom


def test_condition_missing_from_a_run(synthetic):
    events = [pd.read_csv(p, sep="\t") for p in synthetic["events"]]
    events[1] = events[1][events[1]["trial_type"] == "a"]
    with pytest.raises(ValueError, match=r"condition\(s\) \['b'\] are missing from run 2"):
        _fit(synthetic, events=events)
    with pytest.raises(ValueError, match=r"\['c'\] are missing from run 1"):
        _fit(synthetic, conditions=["a", "c"])


def test_mask_must_match_the_bold_grid(synthetic, tmp_path):
    small = _save(tmp_path, np.ones((4, 3, 1), dtype=np.int16), "small.nii.gz")
    with pytest.raises(ValueError, match=r"mask_img has shape \(4, 3, 1\) but the BOLD grid"):
        _fit(synthetic, mask_img=small)
    moved = _save(tmp_path, np.ones(SHAPE, dtype=np.int16), "moved.nii.gz", AFFINE * 2)
    with pytest.raises(ValueError, match="different affines"):
        _fit(synthetic, mask_img=moved)


def test_3d_image_is_refused(synthetic, tmp_path):
    vol = _save(tmp_path, np.ones(SHAPE, dtype=np.float32), "mean.nii.gz")
    with pytest.raises(ValueError, match=r"run 2: the BOLD image has shape .*3D.*needs a 4D"):
        _fit(synthetic, runs=[synthetic["runs"][0], vol, synthetic["runs"][2]])


def test_confounds_rows_must_match_volumes(synthetic, tmp_path):
    conf = [np.zeros((N_VOL, 2)), np.zeros((N_VOL - 1, 2)), np.zeros((N_VOL, 2))]
    with pytest.raises(ValueError, match="run 2: confounds have 99 rows but the run has 100"):
        _fit(synthetic, confounds=conf)
    np.savetxt(tmp_path / "c.txt", np.zeros((N_VOL + 3, 2)))
    with pytest.raises(ValueError, match="run 1: confounds have 103 rows"):
        _fit(synthetic, confounds=[tmp_path / "c.txt"] * 3)


def test_missing_files_are_named(synthetic, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.nii.gz"):
        _fit(synthetic, runs=[tmp_path / "nowhere.nii.gz"], events=synthetic["events"][:1])
    with pytest.raises(FileNotFoundError, match="no_events.tsv"):
        _fit(synthetic, events=[tmp_path / "no_events.tsv"] * 3)


# --------------------------------------------------------------------------- review fixes

def _voxel_dataset(mask: np.ndarray, affine: np.ndarray | None = None) -> xr.Dataset:
    affine = np.eye(4) if affine is None else affine
    i, j, k = np.nonzero(mask)
    return xr.Dataset(coords={"voxel": np.arange(i.size), "i": ("voxel", i),
                              "j": ("voxel", j), "k": ("voxel", k)},
                      attrs={"mask_shape": list(mask.shape),
                             "affine": [float(a) for a in np.ravel(affine)]})


def test_to_nifti_refuses_values_from_another_mask():
    row, column = np.zeros((3, 3, 1), bool), np.zeros((3, 3, 1), bool)
    row[0, :, 0] = column[:, 0, 0] = True
    on_row, on_column = _voxel_dataset(row), _voxel_dataset(column)
    values = xr.DataArray([1.0, 2.0, 3.0], dims="voxel", coords=on_row.coords)
    with pytest.raises(ValueError, match=r"voxel coords i/j/k that differ from the dataset's "
                                         r"at 2 of 3 voxels \(e\.g\. voxel 1: \(0, 1, 0\) in "
                                         r"values, \(1, 0, 0\) in the dataset\)"):
        to_nifti(values, on_column)
    np.testing.assert_array_equal(to_nifti(values, on_row).get_fdata()[0, :, 0], [1, 2, 3])
    # without i/j/k coords the voxel ids (or the order) are all there is to go by
    np.testing.assert_array_equal(
        to_nifti(values.drop_vars(["i", "j", "k"]), on_column).get_fdata()[:, 0, 0], [1, 2, 3])


def _one_run(synthetic, tmp_path, tr_s: float, unit: str) -> Path:
    img = nib.load(synthetic["runs"][0])
    out = nib.Nifti1Image(img.get_fdata(dtype=np.float32), AFFINE)
    out.header.set_xyzt_units("mm", unit)
    out.header.set_zooms((3.0, 3.0, 4.0, tr_s))
    nib.save(out, tmp_path / f"tr_{unit}.nii.gz")
    return tmp_path / f"tr_{unit}.nii.gz"


def _tr_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "TR in the image header" in str(w.message)]


def test_t_r_differing_from_the_header_warns(synthetic, tmp_path):
    in_s = _one_run(synthetic, tmp_path, 2.0, "sec")
    in_ms = _one_run(synthetic, tmp_path, 2000.0, "msec")
    kw = {"events": synthetic["events"][:1], "residuals": False, "signal_scaling": False}
    with pytest.warns(UserWarning, match=r"t_r=2\.5 s differs from the TR in the image header "
                                         r"of 2 run\(s\) \(run 1: 2 s\)"):
        _fit(synthetic, runs=[in_s, in_ms], t_r=2.5, events=synthetic["events"][:2],
             residuals=False, signal_scaling=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _fit(synthetic, runs=[in_ms], **kw)                          # 2000 ms = t_r
        _fit(synthetic, runs=[in_s], t_r=2.01, **kw)                 # within 1 %
        _fit(synthetic, runs=synthetic["runs"][:1], t_r=2.5, **kw)   # no TR in the header
    assert _tr_warnings(record) == []


@pytest.mark.parametrize("scaling", [1, True, (1, 0), (0, 1, 2), "psc", 0.5])
def test_unsupported_signal_scaling_is_refused(synthetic, scaling):
    with pytest.raises(ValueError, match=r"signal_scaling=.* is not supported; use 0 .*"
                                         r"\(0, 1\) .*False"):
        _fit(synthetic, signal_scaling=scaling)


def test_grand_mean_scaling_is_labelled(synthetic):
    ds = _fit(synthetic, runs=synthetic["runs"][:1], events=synthetic["events"][:1],
              signal_scaling=(0, 1), residuals=False)
    assert ds.attrs["units"] == "percent of the run's grand mean"
    assert ds.attrs["signal_scaling"] == "(0, 1)"
    bold = nib.load(synthetic["runs"][0]).get_fdata()[synthetic["mask"]]   # (voxel, time)
    expected = 100 * synthetic["truth"][synthetic["mask"]] / bold.mean()
    np.testing.assert_allclose(ds["response"].isel(run=0).values.T, expected, rtol=0.03)


def test_confound_names_of_every_run_are_recorded(synthetic):
    rng = np.random.default_rng(4)
    confounds = [pd.DataFrame(rng.normal(size=(N_VOL, 1)), columns=["trans_x"]),
                 pd.DataFrame(rng.normal(size=(N_VOL, 2)), columns=["trans_x", "csf"])]
    ds = _fit(synthetic, runs=synthetic["runs"][:2], events=synthetic["events"][:2],
              confounds=confounds, residuals=False)
    assert ds.attrs["confounds"] == "trans_x, csf"
    assert json.loads(ds.attrs["config_json"])["confounds"] == [["trans_x"], ["trans_x", "csf"]]


def test_axial_cuts_follow_a_rotated_affine():
    from nibabel.affines import apply_affine

    from rsa_bias.plotting.brain_maps import _axial_cuts

    angle = np.deg2rad(30)                                           # tilt about the x axis
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                         [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([3.0, 3.0, 4.0])
    affine[:3, 3] = [-10.0, 5.0, 20.0]
    mask = np.zeros((4, 5, 3), bool)
    mask[1:3, 1:5, :] = True
    ds = _voxel_dataset(mask, affine)
    ijk = np.c_[ds["i"], ds["j"], ds["k"]]
    z = apply_affine(affine, ijk)[:, 2]
    expected = [z[ijk[:, 2] == k].mean() for k in range(3)]
    np.testing.assert_allclose(_axial_cuts(ds, affine, n_cuts=5), expected)
    np.testing.assert_allclose(_axial_cuts(ds, affine, n_cuts=2), [expected[0], expected[2]])
