"""The 92-image loader against independent computations on the raw .mat files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from realdata import copy_files
from scipy.stats import spearmanr

from rsa_bias.brain import load_rsa92

RAW = Path(__file__).resolve().parents[1] / "data" / "rsa92_kriegeskorte2008"
FILES = ("Kriegeskorte_Neuron2008_supplementalData.mat", "92_brainRDMs.mat",
         "92_behavRDMs.mat", "92_modelRDMs.mat")


@pytest.fixture(scope="module")
def ds():
    return load_rsa92()


@pytest.fixture(scope="module")
def supp():
    return scipy.io.loadmat(RAW / FILES[0])


def _upper(m):
    m = np.asarray(m)
    return m[np.triu_indices(m.shape[-1], k=1)]


def test_shapes_and_shared_ids(ds):
    assert ds["human_it"].dims == ("subject", "session", "stimulus_i", "stimulus_j")
    assert ds["human_it"].shape == (4, 2, 92, 92)
    assert list(ds["subject"].values) == ["BE", "KO", "SN", "TI"]
    assert list(ds["session"].values) == [1, 2]
    assert ds["human_it_mean"].shape == ds["monkey_it"].shape == (92, 92)
    assert ds["behaviour"].dims[0] == "rater" and ds["behaviour"].shape == (16, 92, 92)
    assert ds["model_rdm"].shape == (8, 92, 92)
    assert list(ds["model"].values) == ["animacy", "FaceBodyManmadeNatobj", "monkeyIT", "EVA",
                                        "HMAX", "V1", "Silhouette", "RADON"]
    assert ds["image"].dims == ("stimulus", "y", "x", "channel")
    assert ds["image"].shape == (92, 175, 175, 3) and ds["image"].dtype == np.uint8
    ids = np.arange(1, 93)
    for dim in ("stimulus", "stimulus_i", "stimulus_j"):
        np.testing.assert_array_equal(ds[dim].values, ids)
    for name in ("human_it", "human_it_mean", "monkey_it", "behaviour", "model_rdm"):
        rdm = ds[name].values
        np.testing.assert_allclose(rdm, np.swapaxes(rdm, -1, -2), atol=1e-6)
        assert np.all(np.diagonal(rdm, axis1=-2, axis2=-1) == 0)


def test_values_equal_raw_files(ds, supp):
    brain = scipy.io.loadmat(RAW / FILES[1])["RDMs"]
    np.testing.assert_array_equal(ds["human_it"].sel(subject="KO", session=2).values,
                                  brain[0, 1, 1]["RDM"].astype(float))
    # the README's claim: the 8 subject-session RDMs average to the group figure-1 RDM
    mean8 = np.mean([brain[0, s, r]["RDM"].astype(float) for s in range(4) for r in range(2)], 0)
    np.testing.assert_allclose(ds["human_it_mean"].values, mean8, atol=1e-6)
    models = scipy.io.loadmat(RAW / FILES[3])["Models"][0]
    np.testing.assert_array_equal(ds["model_rdm"].sel(model="EVA").values,
                                  models[3]["RDM"].astype(float))
    behav = scipy.io.loadmat(RAW / FILES[2])["rdms_behav_92"][0]
    np.testing.assert_array_equal(ds["behaviour"].sel(rater="subject16").values, behav[15]["RDM"])
    np.testing.assert_array_equal(ds["image"].sel(stimulus=7).values,
                                  supp["stimuli_92objs"][0, 6]["image"])
    # monkeyIT model RDM is the figure-1 monkey RDM in square form
    np.testing.assert_allclose(ds["model_rdm"].sel(model="monkeyIT"), ds["monkey_it"])


def test_category_coords(ds):
    cats, counts = np.unique(ds["category"].values, return_counts=True)
    expected = {"artificial inanimate": 21, "human bodypart": 12, "human face": 12,
                "natural inanimate": 23, "nonhuman bodypart": 12, "nonhuman face": 12}
    assert dict(zip(cats, counts, strict=True)) == expected
    np.testing.assert_array_equal(ds["animate"].values, ds["stimulus"].values <= 48)
    sums = [int(ds[f"category_{k}"].sum()) for k in
            ("animate", "inanim", "human", "nonhumani", "body", "face", "natObj", "artiObj",
             "rand24", "rand48", "other48", "monkeyape")]
    assert sums == [48, 44, 24, 24, 24, 24, 23, 21, 22, 46, 46, 7]
    faces = ds["category"].str.endswith("face").values
    np.testing.assert_array_equal(ds["category_face"].values, faces)


def test_human_vs_monkey_it_spearman(ds, supp):
    """Kriegeskorte 2008's headline: human and monkey IT RDMs match (here rho ~ 0.44)."""
    fig1 = supp["RDMs_mIT_hIT_fig1"][0]
    independent = spearmanr(fig1[1]["RDM"].ravel(), fig1[0]["RDM"].ravel()).statistic
    ours = spearmanr(_upper(ds["human_it_mean"]), _upper(ds["monkey_it"])).statistic
    assert ours == pytest.approx(independent, abs=1e-12)
    assert ours > 0.3


def test_animacy_model_beats_permuted_labels(ds):
    hit = _upper(ds["human_it_mean"])
    model = ds["model_rdm"].sel(model="animacy").values
    observed = spearmanr(_upper(model), hit).statistic
    rng = np.random.default_rng(0)
    null = []
    for _ in range(200):
        p = rng.permutation(92)
        null.append(spearmanr(_upper(model[np.ix_(p, p)]), hit).statistic)
    assert observed > 0.1
    assert observed > np.max(null)


def _copy(tmp_path: Path, skip: str | None = None) -> Path:
    return copy_files(RAW, FILES, tmp_path, skip)


def test_missing_file_named(tmp_path):
    folder = _copy(tmp_path, skip="92_behavRDMs.mat")
    with pytest.raises(FileNotFoundError, match="92_behavRDMs.mat"):
        load_rsa92(folder)


def test_corrupt_file_is_a_clear_error(tmp_path):
    folder = _copy(tmp_path)
    (folder / "92_modelRDMs.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(ValueError, match="92_modelRDMs.mat"):
        load_rsa92(folder)


def test_data_env_var(tmp_path, monkeypatch):
    (tmp_path / "rsa92_kriegeskorte2008").mkdir()
    _copy(tmp_path / "rsa92_kriegeskorte2008")
    monkeypatch.setenv("RSA_BIAS_DATA", str(tmp_path))
    assert load_rsa92(images=False).attrs["path"] == str(tmp_path / "rsa92_kriegeskorte2008")
    monkeypatch.setenv("RSA_BIAS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_rsa92()
