"""An activation file against the shipped brain datasets: compare_to_brain and
``rsa-bias compare FILE --dataset``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from rsa_bias.brain import load_rsa92, load_v4
from rsa_bias.cli import main
from rsa_bias.experiments.brain_scores import v4_responses
from rsa_bias.experiments.extraction import named_stimuli
from rsa_bias.experiments.own_vs_brain import compare_to_brain
from rsa_bias.store import activation_tree, write_activations


def _tree(stimuli: xr.Dataset, seed: int = 0) -> xr.DataTree:
    rng = np.random.default_rng(seed)
    n = stimuli.sizes["stimulus"]
    face = stimuli["feature_face"].values[:, None] if "feature_face" in stimuli else 0.0
    layers = {"block.1": rng.normal(size=(n, 12)) + 2.0 * face,
              "head": rng.normal(size=(n, 5))}
    tree = activation_tree(stimuli.drop_vars("image"), layers,
                           attrs={"model_class": "user.Net"})
    return tree


@pytest.fixture(scope="module")
def rsa92_tree():
    return _tree(named_stimuli("rsa92"))


def test_rsa92_scores_equal_scipy(rsa92_tree):
    out = compare_to_brain(rsa92_tree, dataset="rsa92", n_boot=20, seed=1)
    brain = load_rsa92(images=False)
    x = rsa92_tree["block.1"]["activation"].values
    model = pdist(x, "correlation")
    iu = np.triu_indices(92, 1)
    subj = brain["human_it"].mean("session").values
    ref = np.mean([spearmanr(model, s[iu]).statistic for s in subj])
    assert out["rsa_human_it"].sel(layer="block.1") == pytest.approx(ref, abs=1e-12)
    mon = spearmanr(model, brain["monkey_it"].values[iu]).statistic
    assert out["rsa_monkey_it"].sel(layer="block.1") == pytest.approx(mon, abs=1e-12)
    lo, hi = out["rsa_human_it_ci_low"].values, out["rsa_human_it_ci_high"].values
    assert np.all(lo <= hi)
    assert 0 < float(out["noise_ceiling_lower"]) < float(out["noise_ceiling_upper"]) < 1
    assert out.attrs["model_class"] == "user.Net"


def test_feature_shares_equal_least_squares(rsa92_tree):
    out = compare_to_brain(rsa92_tree, dataset="rsa92", n_boot=10)
    x = rsa92_tree["block.1"]["activation"].values
    xc = x - x.mean(0)
    face = rsa92_tree.to_dataset()["feature_face"].values.astype(float)
    f = (face - face.mean())[:, None]
    fit = f @ np.linalg.lstsq(f, xc, rcond=None)[0]
    ref = (fit ** 2).sum() / (xc ** 2).sum()
    r2 = out["feature_r2"].sel(layer="block.1", feature="face")
    assert float(r2) == pytest.approx(ref, abs=1e-12)
    assert float(r2) > float(out["feature_r2"].sel(layer="block.1", feature="natural"))


def test_v4_scores(tmp_path):
    v4 = load_v4(images=False)
    stimuli = xr.Dataset(coords={"stimulus": v4["stimulus"].values[::-1]},
                         attrs={"feature_names": []})  # another order: matched by id
    rng = np.random.default_rng(2)
    resp = v4_responses(v4).mean("repeat")
    signal = resp.sel(stimulus=stimuli["stimulus"].values).values @ rng.normal(size=(50, 8))
    tree = activation_tree(stimuli, {"good": signal + rng.normal(size=(640, 8)),
                                     "noise": rng.normal(size=(640, 8))})
    out = compare_to_brain(tree, dataset="v4", n_boot=20, cv=3)
    assert float(out["encoding_normalised_r"].sel(layer="good")) > \
        float(out["encoding_normalised_r"].sel(layer="noise")) + 0.2
    # linear CKA by hand, in the sorted-id order of the responses
    x = tree["good"]["activation"].values[::-1]
    y = resp.sortby("stimulus").values
    xc, yc = x - x.mean(0), y - y.mean(0)
    ref = np.linalg.norm(xc.T @ yc) ** 2 / (np.linalg.norm(xc.T @ xc) *
                                            np.linalg.norm(yc.T @ yc))
    assert float(out["cka_v4"].sel(layer="good")) == pytest.approx(ref, abs=1e-10)
    assert "feature_r2" not in out


def test_errors(rsa92_tree):
    with pytest.raises(ValueError, match="unknown dataset 'haxby'"):
        compare_to_brain(rsa92_tree, dataset="haxby")
    with pytest.raises(ValueError, match="not in the activation file"):
        compare_to_brain(rsa92_tree, layers=["fc9"])
    with pytest.raises(ValueError, match="lacks 640 of the 640 v4 stimuli"):
        compare_to_brain(rsa92_tree, dataset="v4")


def test_cli_compare_with_dataset(tmp_path, rsa92_tree, capsys):
    tree = rsa92_tree.copy()
    tree.attrs["git_sha"] = "abc123"  # carried into the results as activations_git_sha
    path = write_activations(tree, tmp_path / "acts.nc")
    out = tmp_path / "out"
    assert main(["compare", str(path), "--dataset", "rsa92", "--out", str(out),
                 "--n-boot", "10", "--layers", "head"]) == 0
    table = pd.read_csv(out / "brain_rsa92.csv")
    assert table["layer"].tolist() == ["head"]
    from rsa_bias.store import read_results

    assert read_results(out / "brain_rsa92.nc").attrs["activations_git_sha"] == "abc123"

    assert {"rsa_human_it", "noise_ceiling_upper", "r2_face"} <= set(table.columns)
    assert (out / "brain_rsa92.png").stat().st_size > 0
    assert "rsa_human_it" in capsys.readouterr().out
    assert main(["compare", str(path), str(path), "--dataset", "rsa92", "--out",
                 str(out)]) == 2
    assert "one activation file" in capsys.readouterr().err


def test_own_recordings_with_repeats_and_from_csv(tmp_path, capsys):
    from rsa_bias.brain import dataset_from_arrays

    rng = np.random.default_rng(3)
    n, units = 60, 6
    ids = np.arange(500, 500 + n)
    latent = rng.normal(size=(n, 4))
    reps = latent @ rng.normal(size=(4, units)) + 0.5 * rng.normal(size=(3, n, units))
    rec = dataset_from_arrays(np.moveaxis(reps, 0, -1), stimulus_ids=ids,
                              dims=("stimulus", "neuron", "repeat"))
    stimuli = xr.Dataset(coords={"stimulus": ids[::-1]}, attrs={"feature_names": []})
    acts = {"good": latent[::-1] @ rng.normal(size=(4, 10)) + 0.1 * rng.normal(size=(n, 10)),
            "noise": rng.normal(size=(n, 10))}
    tree = activation_tree(stimuli, acts)
    out = compare_to_brain(tree, dataset=rec, n_boot=20, cv=3)
    mean = reps.mean(axis=0)
    ref = spearmanr(pdist(acts["good"][::-1], "correlation"), pdist(mean, "correlation"))
    assert float(out["rsa"].sel(layer="good")) == pytest.approx(ref.statistic, abs=1e-12)
    assert float(out["encoding_normalised_r"].sel(layer="good")) > 0.8
    assert float(out["encoding_normalised_r"].sel(layer="noise")) < 0.3
    assert float(out["cka"].sel(layer="good")) > float(out["cka"].sel(layer="noise"))
    # the same recordings averaged, as a CSV, through the command line
    cols = {f"n{j}": mean[:, j] for j in range(units)}
    pd.DataFrame({"image": ids, **cols}).to_csv(tmp_path / "my_neurons.csv", index=False)
    path = write_activations(tree, tmp_path / "acts.nc")
    assert main(["compare", str(path), "--responses", str(tmp_path / "my_neurons.csv"),
                 "--stimulus-column", "image", "--out", str(tmp_path / "o"),
                 "--n-boot", "10"]) == 0
    table = pd.read_csv(tmp_path / "o" / "brain_my_neurons.csv")
    assert table.loc[table.layer == "good", "rsa"].item() == pytest.approx(ref.statistic,
                                                                           abs=1e-12)
    assert "encoding_normalised_r" not in table  # no repeats in the CSV
    assert main(["compare", str(path), "--responses", str(tmp_path / "my_neurons.csv"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "--stimulus-column" in capsys.readouterr().err


def test_text_labels_enter_as_categories():
    from rsa_bias.analysis import feature_variance_explained

    rng = np.random.default_rng(5)
    names = np.array(["cats", "dogs", "owls"])[rng.integers(0, 3, 90)]
    x = rng.normal(size=(90, 6)) + (names == "owls")[:, None] * 2.0
    coded = np.unique(names, return_inverse=True)[1]
    text = xr.DataArray(x, dims=("stimulus", "unit"), coords={"feature_folder": (
        "stimulus", names)}, attrs={"feature_names": ["folder"]})
    ints = text.assign_coords(feature_folder=("stimulus", coded))
    a = feature_variance_explained(text, fit_split=None, eval_split=None)
    b = feature_variance_explained(ints, fit_split=None, eval_split=None)
    r2a, r2b = float(a.r2.squeeze()), float(b.r2.squeeze())
    assert r2a == pytest.approx(r2b, abs=1e-12) and r2a > 0.2
    assert a.attrs["categorical_features"] == "folder"


def test_runs_as_repeats_and_cka_attributed_to_features():
    from rsa_bias.analysis import attribute_cka
    from rsa_bias.brain import dataset_from_arrays

    rng = np.random.default_rng(7)
    n = 48
    ids = np.arange(n)
    a, b = np.tile([0, 1], n // 2), np.repeat([0, 1], n // 2)
    signal = np.outer(2 * a - 1, rng.normal(size=8)) + 0.3 * np.outer(2 * b - 1,
                                                                      rng.normal(size=8))
    runs = signal[None] + 0.5 * rng.normal(size=(4, n, 8))
    rec = dataset_from_arrays(runs, stimulus_ids=ids, dims=("run", "stimulus", "voxel"))
    stimuli = xr.Dataset(coords={"stimulus": ids, "feature_a": ("stimulus", a),
                                 "feature_b": ("stimulus", b)},
                         attrs={"feature_names": ["a", "b"]})
    layer = signal @ rng.normal(size=(8, 12)) + 0.2 * rng.normal(size=(n, 12))
    tree = activation_tree(stimuli, {"fc": layer})
    out = compare_to_brain(tree, dataset=rec, n_boot=10, cv=3)
    assert "encoding_normalised_r" in out  # the runs serve as repeats for the ceiling
    x = tree["fc"]["activation"].assign_coords(feature_a=("stimulus", a),
                                               feature_b=("stimulus", b))
    ref = attribute_cka(x, xr.DataArray(runs.mean(0), dims=("stimulus", "unit"),
                                        coords={"stimulus": ids}), features=["a", "b"])
    np.testing.assert_allclose(out["cka_share"].sel(layer="fc").values, ref["share"].values,
                               atol=1e-12)
    share = out["cka_share"].sel(layer="fc")
    assert float(share.sel(feature="a")) > float(share.sel(feature="b"))  # the loud feature


def test_integer_recording_ids_against_text_file_ids_are_refused():
    """Ids 0..29 as integers in the recordings and as text in the activation file are not
    the same stimuli: refused with both types named (numpy's own set difference of ints
    and strings finds no difference from about 20 elements on)."""
    from rsa_bias.brain import dataset_from_arrays

    rng = np.random.default_rng(4)
    n = 30
    rec = dataset_from_arrays(rng.normal(size=(n, 4)), stimulus_ids=np.arange(n))
    stimuli = xr.Dataset(coords={"stimulus": [str(i) for i in range(n)]},
                         attrs={"feature_names": []})
    tree = activation_tree(stimuli, {"layer": rng.normal(size=(n, 6))})
    with pytest.raises(ValueError, match=r"lacks 30 of the 30 .*of type <U2; recording ids "
                                         r"of type int64"):
        compare_to_brain(tree, dataset=rec, n_boot=5, cv=3)
