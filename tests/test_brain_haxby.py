"""The Haxby (2001) loader against a direct nilearn GLM, decoding and crossnobis sanity checks.

Sanity figures measured on the shipped slice (subject 1, 530 voxels, 12 runs; nilearn 0.14):

* face vs house, leave-one-run-out, standardised logistic regression on per-run GLM betas:
  24/24 = 1.00; 8-way on the same betas: 62/96 = 0.646 (chance 0.125);
* the same face-vs-house decoding on block-averaged raw time series (detrended per run,
  labels from attributes_literal.txt): 1.00;
* crossnobis RDM (shrinkage-diagonal noise precision from the GLM residuals, leave one run
  out): all 28 distances > 0 (min 0.0069, max 0.0327), face-house 0.0272;
* fits of category models to that RDM (Spearman / Kendall tau-a): face_vs_rest 0.087 / 0.045,
  animate_vs_inanimate 0.098 / 0.058, scrambled_vs_objects 0.291 / 0.151,
  superordinate 0.571 / 0.280.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.signal import detrend
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rsa_bias.analysis import compare_rdms, noise_precision, rdm
from rsa_bias.brain import load_haxby, to_nifti

RAW = Path(__file__).resolve().parents[1] / "data" / "haxby2001_pymvpa"
ORDER = ["face", "house", "cat", "shoe", "bottle", "scissors", "chair", "scrambledpix"]


@pytest.fixture(scope="module")
def ds():
    return load_haxby()


@pytest.fixture(scope="module")
def crossnobis(ds):
    prec = noise_precision(ds.residual, dof=int(ds.residual_dof.sum()))
    return prec, rdm(ds.response, method="crossnobis", noise=prec)


def _run_dir(r: int) -> Path:
    return RAW / "haxby2001" / "sub001" / "BOLD" / f"task001_run{r:03d}"


def test_shapes_and_coords(ds):
    assert ds["response"].dims == ("run", "stimulus", "voxel")
    assert ds["response"].shape == (12, 8, 530)
    assert ds["residual"].shape == (12, 121, 530)
    assert list(ds["run"].values) == list(range(1, 13))
    assert list(ds["stimulus"].values) == ORDER
    assert list(ds["stimulus"].values[ds["animate"].values]) == ["face", "cat"]
    assert list(ds["stimulus"].values[ds["scrambled"].values]) == ["scrambledpix"]
    assert (ds["residual_dof"].values == 121 - 19).all()  # 8 conditions, 6 motion, 4 drift, 1
    mask = nib.load(RAW / "mask.nii.gz").get_fdata() != 0
    i, j, k = np.nonzero(mask)
    np.testing.assert_array_equal(ds["i"].values, i)
    np.testing.assert_array_equal(ds["j"].values, j)
    np.testing.assert_array_equal(ds["k"].values, k)
    assert ds.attrs["t_r"] == 2.5 and ds.attrs["mask_shape"] == [40, 20, 1]
    bold = nib.load(RAW / "bold.nii.gz")
    np.testing.assert_allclose(ds["mean_bold"].values, bold.get_fdata().mean(axis=3), rtol=1e-5)
    # the category models, built here from the category list
    sup = {"face": 0, "house": 1, "cat": 2, "scrambledpix": 4}
    groups = {"face_vs_rest": [c == "face" for c in ORDER],
              "animate_vs_inanimate": [c in ("face", "cat") for c in ORDER],
              "scrambled_vs_objects": [c == "scrambledpix" for c in ORDER],
              "superordinate": [sup.get(c, 3) for c in ORDER]}
    for name, g in groups.items():
        g = np.asarray(g)
        np.testing.assert_array_equal(ds["model_rdm"].sel(model=name).values,
                                      (g[:, None] != g[None, :]).astype(float))


def test_betas_match_a_direct_nilearn_fit(ds):
    from nilearn.glm.first_level import FirstLevelModel
    from nilearn.maskers import NiftiMasker

    run = _run_dir(5)
    masker = NiftiMasker(mask_img=str(RAW / "mask.nii.gz")).fit()
    motion = pd.DataFrame(np.loadtxt(run / "bold_moest.txt"), columns=[f"m{c}" for c in range(6)])
    glm = FirstLevelModel(t_r=2.5, mask_img=masker, hrf_model="glover", drift_model="cosine",
                          high_pass=1 / 128, noise_model="ar1", minimize_memory=False)
    glm.fit(str(run / "bold_1slice.nii.gz"), events=pd.read_csv(run / "bold_events.tsv", sep="\t"),
            confounds=motion)
    design = glm.design_matrices_[0]
    theta = np.stack([np.ravel(masker.transform(glm.compute_contrast(c, output_type="effect_size")))
                      for c in design.columns])                        # (19 regressors, 530)
    betas = theta[[list(design.columns).index(c) for c in ORDER]]
    np.testing.assert_allclose(ds["response"].sel(run=5).values, betas, rtol=1e-8, atol=1e-10)
    # residuals = percent-signal-change data minus the design's fit (computed here by hand)
    y = np.asarray(masker.transform(str(run / "bold_1slice.nii.gz")))   # (121, 530)
    y = 100 * (y / y.mean(axis=0) - 1)
    resid = y - design.to_numpy() @ theta
    np.testing.assert_allclose(ds["residual"].sel(run=5).values, resid, rtol=1e-6, atol=1e-8)
    assert abs(resid.mean()) < 0.01                                    # GLS: not exactly 0
    # nilearn's own residuals_ use the AR(1)-whitened design (nilearn issue #2964): not these
    theirs = np.asarray(masker.transform(glm.residuals_[0]))
    assert np.abs(theirs - resid).max() > 0.1


def _loro_accuracy(x: np.ndarray, y: np.ndarray, runs: np.ndarray) -> float:
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(clf, x, y, groups=runs, cv=LeaveOneGroupOut()).mean())


def test_face_vs_house_decoding_from_betas(ds):
    pair = ds["response"].sel(stimulus=["face", "house"]).values       # (12, 2, 530)
    acc = _loro_accuracy(pair.reshape(24, -1), np.tile([0, 1], 12), np.repeat(np.arange(12), 2))
    assert acc >= 0.9                                                   # measured 1.00
    acc8 = _loro_accuracy(ds["response"].values.reshape(96, -1), np.tile(np.arange(8), 12),
                          np.repeat(np.arange(12), 8))
    assert 0.45 <= acc8 <= 0.85                                         # measured 0.646


def test_face_vs_house_decoding_from_raw_time_series():
    from nilearn.masking import apply_mask

    x = apply_mask(str(RAW / "bold.nii.gz"), str(RAW / "mask.nii.gz"))     # (1452, 530)
    attrs = pd.read_csv(RAW / "attributes_literal.txt", sep=" ", header=None,
                        names=["label", "run"])
    rows, labels, runs = [], [], []
    for r in range(12):
        in_run = attrs["run"].to_numpy() == r
        clean = detrend(x[in_run], axis=0)
        for label in ("face", "house"):
            rows.append(clean[attrs["label"].to_numpy()[in_run] == label].mean(axis=0))
            labels.append(label)
            runs.append(r)
    acc = _loro_accuracy(np.stack(rows), np.array(labels), np.array(runs))
    assert acc >= 0.9                                                   # measured 1.00


def test_crossnobis_rdm_matches_a_loop_over_folds(ds, crossnobis):
    prec, d = crossnobis
    x = ds["response"].values                                           # (run, cond, voxel)
    n_runs, n, p = x.shape
    expected = np.zeros((n, n))
    for r in range(n_runs):
        train = np.delete(x, r, axis=0).mean(axis=0)
        for a in range(n):
            for b in range(n):
                expected[a, b] += (train[a] - train[b]) @ prec @ (x[r, a] - x[r, b]) / p
    expected /= n_runs
    np.testing.assert_allclose(d.values, expected, rtol=1e-8, atol=1e-12)
    off = d.values[np.triu_indices(n, 1)]
    assert float(d.sel(stimulus_i="face", stimulus_j="house")) == pytest.approx(0.0272, abs=0.005)
    assert off.min() > 0                                                # measured min 0.0069


MEASURED_FITS = {  # model: (Spearman, Kendall tau-a)
    "face_vs_rest": (0.087, 0.045), "animate_vs_inanimate": (0.098, 0.058),
    "scrambled_vs_objects": (0.291, 0.151), "superordinate": (0.571, 0.280),
}


def test_category_model_fits(ds, crossnobis):
    _, d = crossnobis
    iu = np.triu_indices(8, 1)
    spearman = compare_rdms(ds["model_rdm"], d, method="spearman")
    tau_a = compare_rdms(ds["model_rdm"], d, method="kendall_tau_a")
    for model, (rho, tau) in MEASURED_FITS.items():
        m = ds["model_rdm"].sel(model=model).values[iu]
        independent = spearmanr(m, d.values[iu]).statistic
        assert float(spearman.sel(model=model)) == pytest.approx(independent, abs=1e-12)
        # tau-a: (concordant - discordant) / all pairs, counted here by brute force
        sign = np.sign(np.subtract.outer(m, m)) * np.sign(np.subtract.outer(d.values[iu],
                                                                            d.values[iu]))
        assert float(tau_a.sel(model=model)) == pytest.approx(sign[np.triu_indices(28, 1)].mean(),
                                                              abs=1e-12)
        assert float(spearman.sel(model=model)) == pytest.approx(rho, abs=0.03)
        assert float(tau_a.sel(model=model)) == pytest.approx(tau, abs=0.03)
    assert str(spearman.idxmax("model").values) == "superordinate"


def test_voxel_map_round_trip(ds):
    face_minus_house = (ds["response"].sel(stimulus="face")
                        - ds["response"].sel(stimulus="house")).mean("run")
    img = to_nifti(face_minus_house, ds)
    assert img.shape == (40, 20, 1)
    np.testing.assert_allclose(img.affine, nib.load(RAW / "mask.nii.gz").affine)
    data = img.get_fdata()
    mask = nib.load(RAW / "mask.nii.gz").get_fdata() != 0
    np.testing.assert_allclose(data[mask], face_minus_house.values, rtol=1e-6)
    assert (data[~mask] == 0).all()


def test_voxel_map_figure(ds):
    import matplotlib.pyplot as plt

    from rsa_bias.plotting.brain_maps import plot_voxel_map

    values = ds["response"].sel(stimulus="face").mean("run")
    fig = plot_voxel_map(values, ds, title="face", threshold=0.5)
    assert fig.axes and fig.get_axes()[0].figure is fig
    plt.close(fig)
    with pytest.raises(ValueError, match="NaN"):
        plot_voxel_map(values.where(values > 0), ds)


def test_cache_returns_independent_copies(ds):
    again = load_haxby()
    again["response"][:] = 0.0
    assert float(abs(load_haxby()["response"]).sum()) > 0


def test_missing_run_file_named(tmp_path):
    import shutil

    shutil.copytree(RAW, tmp_path / "hx", ignore=shutil.ignore_patterns("bold_25mm*",
                                                                        "*.rst", "bold.nii.gz"))
    (tmp_path / "hx" / "haxby2001/sub001/BOLD/task001_run007/bold_events.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="task001_run007/bold_events.tsv"):
        load_haxby(tmp_path / "hx", cache=False)
