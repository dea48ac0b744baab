"""The finger-fMRI loader against the raw .mat files, and crossnobis RSA of the finger patterns.

Sanity figures measured on ``data_recipe_finger7T.mat`` (7 participants, M1):

* cross-validated squared Euclidean (crossnobis without prewhitening, leave one run out)
  distances between the 5 fingers: all 70 positive (smallest 0.023, participant s02);
* group RDM (mean of the 7) vs the model RDMs, Spearman: Naturalstats 0.952, Muscle 0.818,
  somatotopy 0.663; Kendall tau-a: 0.867, 0.689, 0.533; Pearson: 0.930, 0.821, 0.758.
  Naturalstats fits best, as Ejaz et al. (2015) report; per participant it beats Muscle in
  5 of 7 (Spearman).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import xarray as xr
from scipy.stats import spearmanr

from rsa_bias.analysis import compare_rdms, rdm
from rsa_bias.brain import load_finger

RAW = Path(__file__).resolve().parents[1] / "data" / "pcm_finger_fmri"
FINGERS = ["thumb", "index", "middle", "ring", "little"]


@pytest.fixture(scope="module")
def tree():
    return load_finger()


@pytest.fixture(scope="module")
def raw():
    return scipy.io.loadmat(RAW / "data_recipe_finger7T.mat")


@pytest.fixture(scope="module")
def rdms(tree):
    return xr.concat([rdm(node["response"], method="crossnobis").expand_dims(participant=[name])
                      for name, node in tree.children.items()], "participant")


def _cv_euclidean(y: np.ndarray, cond: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Leave-one-run-out cross-validated squared Euclidean distance / voxels, by loops."""
    runs = np.unique(run)
    pat = np.stack([[y[(run == r) & (cond == c)][0] for c in range(1, 6)] for r in runs])
    d = np.zeros((5, 5))
    for k in range(runs.size):
        train = np.delete(pat, k, axis=0).mean(axis=0)
        for a in range(5):
            for b in range(5):
                d[a, b] += (train[a] - train[b]) @ (pat[k, a] - pat[k, b])
    return d / runs.size / y.shape[1]


def test_shapes_match_the_raw_file(tree, raw):
    assert sorted(tree.children) == [f"s0{p}" for p in range(1, 8)]
    for p, node in enumerate(tree.children.values()):
        y = raw["Y"][0, p]
        cond, run = raw["condVec"][0, p].ravel(), raw["partVec"][0, p].ravel()
        resp = node["response"]
        assert resp.dims == ("run", "stimulus", "voxel")
        assert resp.shape == (np.unique(run).size, 5, y.shape[1])
        assert list(resp["stimulus"].values) == FINGERS
        np.testing.assert_array_equal(resp["run"].values, np.unique(run))
        r, c = run[17], cond[17]   # one row, looked up by its labels
        np.testing.assert_array_equal(resp.sel(run=r, stimulus=FINGERS[c - 1]).values, y[17])
    sizes = [tree[n]["response"].shape for n in sorted(tree.children)]
    assert [s[0] for s in sizes] == [8, 7, 7, 7, 8, 8, 8]
    assert [s[2] for s in sizes] == [1946, 1657, 1681, 1736, 1589, 1722, 1702]
    models = raw["Model"][0]
    assert list(tree["model"].values) == ["Muscle", "Naturalstats", "somatotopy"]
    for m in models:
        name = str(m["name"][0])
        np.testing.assert_array_equal(tree["model_rdm"].sel(model=name).values, m["RDM"])
        np.testing.assert_array_equal(tree["model_g"].sel(model=name).values, m["G_cent"])


def test_correlation_dataset_shapes():
    raw = scipy.io.loadmat(RAW / "data_recipe_correlation.mat")
    tree = load_finger(dataset="correlation")
    assert len(tree.children) == 12
    h3 = tree["h03"]["response"]
    assert h3.shape == (8, 10, raw["Data"][0, 2].shape[1])
    assert list(h3["hand"].values) == ["contra"] * 5 + ["ipsi"] * 5
    np.testing.assert_array_equal(h3.sel(run=2, stimulus="ipsi_index").values,
                                  raw["Data"][0, 2][10 + 6])
    with pytest.raises(ValueError, match="unknown dataset 'finger3T'"):
        load_finger(dataset="finger3T")


def test_crossnobis_distances_are_positive_and_match_loops(tree, raw, rdms):
    iu = np.triu_indices(5, 1)
    smallest = []
    for p, name in enumerate(rdms["participant"].values):
        ours = rdms.sel(participant=name).values
        expected = _cv_euclidean(raw["Y"][0, p], raw["condVec"][0, p].ravel(),
                                 raw["partVec"][0, p].ravel())
        np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-14)
        assert rdms.sel(participant=name).attrs["method"] == "crossnobis"
        smallest.append(ours[iu].min())
    assert min(smallest) > 0                      # every finger pair, every participant
    assert min(smallest) == pytest.approx(0.023, abs=0.002)


def test_naturalstats_vs_muscle_model(tree, rdms):
    group = rdms.mean("participant")
    iu = np.triu_indices(5, 1)
    fits = {m: compare_rdms(tree["model_rdm"], group, method=m) for m in
            ("spearman", "kendall_tau_a", "pearson")}
    measured = {"spearman": (0.952, 0.818, 0.663), "kendall_tau_a": (0.867, 0.689, 0.533),
                "pearson": (0.930, 0.821, 0.758)}
    for method, values in measured.items():
        np.testing.assert_allclose(fits[method].sel(model=["Naturalstats", "Muscle",
                                                           "somatotopy"]).values, values,
                                   atol=0.002)
    for model in ("Muscle", "Naturalstats"):
        independent = spearmanr(tree["model_rdm"].sel(model=model).values[iu],
                                group.values[iu]).statistic
        assert float(fits["spearman"].sel(model=model)) == pytest.approx(independent, abs=1e-12)
    assert fits["spearman"].sel(model="Naturalstats") > fits["spearman"].sel(model="Muscle")
    per_participant = compare_rdms(tree["model_rdm"], rdms, method="spearman")
    wins = int((per_participant.sel(model="Naturalstats")
                > per_participant.sel(model="Muscle")).sum())
    assert wins == 5
