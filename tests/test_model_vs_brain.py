"""Model vs brain: activations labelled by stimulus id, RSA and encoding scores that agree with
direct scipy / scikit-learn computations and do not depend on stimulus order; and the RDM,
score and CKA figures drawn from the numbers they are given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from matplotlib.collections import LineCollection
from scipy.spatial.distance import squareform
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from rsa_bias.analysis import (
    feature_variance_explained,
    rdm_noise_ceiling,
    response_noise_ceiling,
)
from rsa_bias.brain import load_rsa92, load_v4
from rsa_bias.config import CNNConfig, ModelConfig, TaskConfig
from rsa_bias.experiments import encoding_vs_v4, rsa_vs_it, run_model_vs_brain
from rsa_bias.experiments.brain_scores import ALPHAS, v4_responses
from rsa_bias.networks import build_model
from rsa_bias.plotting.cka import plot_cka_heatmap
from rsa_bias.plotting.rdms import plot_rdm
from rsa_bias.plotting.scores import CEILING_LABEL, plot_scores_with_ceiling
from rsa_bias.tasks import make_image_task
from rsa_bias.training.activations import layer_activations

SIZE = 24  # photographs are shrunk to 24x24 to keep the tests fast


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="cnn", init="kaiming_normal",
                      cnn=CNNConfig(channels=(6, 8), fc_widths=(8,)))
    return build_model((3, SIZE, SIZE), {"colour": 3, "shape": 2}, cfg).eval()


@pytest.fixture(scope="module")
def rsa92():
    return load_rsa92()


@pytest.fixture(scope="module")
def v4():
    return load_v4().isel(stimulus=slice(0, 160))  # a subset: the checks, not the science


@pytest.fixture(scope="module")
def rsa(rsa92):
    return rsa_vs_it({"tiny": _tiny()}, rsa92, image_size=SIZE, n_boot=40, seed=1)


# --- activations -----------------------------------------------------------------------------


def test_layer_activations_carry_the_brain_ids(rsa92):
    acts = layer_activations(_tiny(), rsa92["image"], image_size=SIZE)
    assert list(acts) == ["conv_0", "conv_1", "fc_0"]  # pool == conv_1 under "gap"
    for a in acts.values():
        assert a.dims == ("stimulus", "unit")
        np.testing.assert_array_equal(a.stimulus.values, np.arange(1, 93))
    assert acts["conv_1"].shape == (92, 8)
    perm = np.random.default_rng(0).permutation(92)
    shuffled = layer_activations(_tiny(), rsa92["image"].values[perm],
                                 stimulus_ids=rsa92.stimulus.values[perm], image_size=SIZE)
    for name, a in acts.items():
        xr.testing.assert_allclose(shuffled[name].sel(stimulus=a.stimulus), a)
    with pytest.raises(ValueError, match="stimulus_ids are required"):
        layer_activations(_tiny(), rsa92["image"].values)
    same = layer_activations(_tiny(), rsa92["image"], stimulus_ids=rsa92.stimulus.values,
                             image_size=SIZE, layers=["fc_0"])
    xr.testing.assert_identical(same["fc_0"], acts["fc_0"])
    with pytest.raises(ValueError, match="stimulus_ids differ from the images' own"):
        layer_activations(_tiny(), rsa92["image"], stimulus_ids=rsa92.stimulus.values[perm])


def test_rsa_scores_are_target_model_layer(rsa):
    assert rsa.score.dims == ("target", "model", "layer")
    assert rsa.score_subject.dims == ("target", "model", "layer", "subject")


def test_flatten_and_random_projection(rsa92):
    images = rsa92["image"].isel(stimulus=slice(0, 10))
    flat = layer_activations(_tiny(), images, image_size=SIZE, readout="flatten")
    assert flat["conv_0"].shape == (10, 6 * 12 * 12) and "pool" in flat
    proj = layer_activations(_tiny(), images, image_size=SIZE, readout="flatten",
                             n_components=50, seed=3)
    again = layer_activations(_tiny(), images, image_size=SIZE, readout="flatten",
                              n_components=50, seed=3)
    assert proj["conv_0"].shape == (10, 50) and proj["fc_0"].shape == (10, 8)  # 8 < 50 kept
    xr.testing.assert_equal(proj["conv_0"], again["conv_0"])
    # a Gaussian projection to 50 dims roughly keeps the geometry
    d = [np.linalg.norm(a["conv_0"].values[0] - a["conv_0"].values[1]) for a in (flat, proj)]
    assert 0.5 < d[1] / d[0] < 1.5


# --- RSA vs IT -------------------------------------------------------------------------------


def _condensed_corr_distance(x: np.ndarray) -> np.ndarray:
    return squareform(1 - np.corrcoef(x), checks=False)


def test_rsa_scores_match_scipy_spearman(rsa, rsa92):
    acts = layer_activations(_tiny(), rsa92["image"], image_size=SIZE)
    for layer, a in acts.items():
        model_rdm = _condensed_corr_distance(a.values)
        subjects = rsa92["human_it"].mean("session").values
        human = np.mean([spearmanr(model_rdm, squareform(s, checks=False))[0]
                         for s in subjects])
        monkey = spearmanr(model_rdm, squareform(rsa92["monkey_it"].values, checks=False))[0]
        got = rsa.score.sel(model="tiny", layer=layer)
        assert float(got.sel(target="human_it")) == pytest.approx(human, abs=1e-10)
        assert float(got.sel(target="monkey_it")) == pytest.approx(monkey, abs=1e-10)
        lo, hi = (float(rsa[v].sel(model="tiny", layer=layer, target="monkey_it"))
                  for v in ("ci_low", "ci_high"))
        assert lo < hi and lo - 0.05 < monkey < hi + 0.05


def test_rsa_ceiling_is_the_rdm_noise_ceiling(rsa, rsa92):
    nc = rdm_noise_ceiling(rsa92["human_it"].mean("session"), method="spearman")
    assert float(rsa.noise_ceiling_lower.sel(target="human_it")) == pytest.approx(float(nc.lower))
    assert float(rsa.noise_ceiling_upper.sel(target="human_it")) == pytest.approx(float(nc.upper))
    assert np.isnan(rsa.noise_ceiling_lower.sel(target="monkey_it"))
    assert rsa.score_subject.sel(target="human_it").dropna("subject").sizes["subject"] == 4


def test_rsa_aligns_images_with_rdms_by_id(rsa, rsa92):
    perm = np.random.default_rng(1).permutation(92)
    shuffled = rsa_vs_it({"tiny": _tiny()}, rsa92.isel(stimulus=perm), image_size=SIZE,
                         n_boot=40, seed=1)  # images (and labels) reordered, RDMs not
    for v in ("score", "ci_low", "ci_high", "noise_ceiling_lower"):
        xr.testing.assert_allclose(shuffled[v], rsa[v])
    whole = rsa92.isel(stimulus=perm, stimulus_i=perm, stimulus_j=perm)  # everything reordered
    xr.testing.assert_allclose(
        rsa_vs_it({"tiny": _tiny()}, whole, image_size=SIZE, n_boot=40, seed=1).ci_high,
        rsa.ci_high)
    wrong = rsa92.assign(image=(rsa92.image.dims, rsa92.image.values[perm]))  # ids mislabelled
    bad = rsa_vs_it({"tiny": _tiny()}, wrong, image_size=SIZE, n_boot=10, seed=1)
    assert not np.allclose(bad.score.values, rsa.score.values, atol=0.01)


# --- encoding of V4 --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enc(v4):
    return encoding_vs_v4({"tiny": _tiny()}, v4, image_size=SIZE, layers=["conv_1"], n_boot=50)


def test_encoding_matches_sklearn_ridge_cv(enc, v4):
    x = layer_activations(_tiny(), v4["image"], image_size=SIZE, layers=["conv_1"])["conv_1"]
    resp = v4_responses(v4).sortby("stimulus")
    x = x.sel(stimulus=resp.stimulus).values
    x = (x - x.mean(0)) / x.std(0)
    y = resp.mean("repeat").values
    pred = np.empty_like(y)
    for train, test in KFold(5, shuffle=True, random_state=0).split(x):
        pred[test] = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(
            x[train], y[train]).predict(x[test])
    r = np.array([pearsonr(pred[:, i], y[:, i])[0] for i in range(y.shape[1])])
    np.testing.assert_allclose(enc.pearson_r.sel(model="tiny", layer="conv_1"), r, atol=1e-6)


def test_encoding_normalised_by_the_response_ceiling(enc, v4):
    nc = response_noise_ceiling(v4_responses(v4), seed=0)
    np.testing.assert_allclose(enc.ceiling_r.values, nc.ceiling_r.sel(neuron=enc.neuron).values)
    norm = enc.pearson_r_normalised.sel(model="tiny", layer="conv_1")
    np.testing.assert_allclose(norm, enc.pearson_r.sel(model="tiny", layer="conv_1") /
                               enc.ceiling_r)
    ok = np.isfinite(enc.ceiling_r.values)
    assert float(enc.score.sel(model="tiny", layer="conv_1")) == pytest.approx(
        float(np.median(norm.values[ok])))
    assert enc.ci_low.item() <= enc.score.item() <= enc.ci_high.item()


def test_encoding_independent_of_stimulus_order(enc, v4):
    perm = np.random.default_rng(2).permutation(v4.sizes["stimulus"])
    shuffled = encoding_vs_v4({"tiny": _tiny()}, v4.isel(stimulus=perm), image_size=SIZE,
                              layers=["conv_1"], n_boot=50)
    xr.testing.assert_allclose(shuffled.pearson_r, enc.pearson_r)
    xr.testing.assert_allclose(shuffled.score, enc.score)
    wrong = v4.assign(image=(v4.image.dims, v4.image.values[perm]))  # images mislabelled
    bad = encoding_vs_v4({"tiny": _tiny()}, wrong, image_size=SIZE, layers=["conv_1"],
                         n_boot=10)
    assert float(bad.score_raw.item()) < float(enc.score_raw.item()) - 0.05


# --- categorical variance explained ----------------------------------------------------------


def test_categorical_feature_variance_is_the_class_mean_fit():
    ds = make_image_task(TaskConfig(kind="images", n_train=27, val_size=54, test_size=54))
    held = ds.isel(stimulus=ds.split.values != "train")
    rng = np.random.default_rng(0)
    colour, shape = held.feature_colour.values, held.feature_shape.values
    noise = rng.normal(size=(held.sizes["stimulus"], 5))
    phi = np.eye(3)[colour] @ rng.normal(size=(3, 5)) + 0.2 * noise
    act = xr.DataArray(phi, dims=("stimulus", "unit"), coords={"stimulus": held.stimulus})
    got = feature_variance_explained(act, stimuli=held, features=["colour", "shape"])
    fit, ev = held.split.values == "val", held.split.values == "test"
    for name, f in (("colour", colour), ("shape", shape)):
        means = np.stack([phi[fit & (f == k)].mean(0) for k in range(3)])
        resid = phi[ev] - means[f[ev]]
        r2 = 1 - (resid**2).sum() / ((phi[ev] - phi[fit].mean(0)) ** 2).sum()
        assert float(got.r2.sel(feature=name)) == pytest.approx(r2, rel=1e-9)
    assert float(got.r2.sel(feature="colour")) > 0.8
    # the class id as one number (an ordinal regression) understates a 3-valued feature
    ordinal = feature_variance_explained(act, stimuli=held, features=["colour"],
                                         categorical=False)
    assert float(ordinal.r2.item()) < float(got.r2.sel(feature="colour")) - 0.1


# --- figures ---------------------------------------------------------------------------------


def _toy_rdm():
    rng = np.random.default_rng(0)
    cats = np.array(["b", "a", "b", "c", "a", "b"])
    x = rng.normal(size=(6, 6))
    values = np.abs(x + x.T)
    np.fill_diagonal(values, 0)
    ids = np.array([10, 11, 12, 13, 14, 15])
    return xr.DataArray(values, dims=("stimulus_i", "stimulus_j"),
                        coords={"stimulus_i": ids, "stimulus_j": ids,
                                "category_i": ("stimulus_i", cats),
                                "category_j": ("stimulus_j", cats)})


def test_plot_rdm_orders_and_labels_categories():
    r = _toy_rdm()
    fig = plot_rdm(r)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a", "c"]
    np.testing.assert_allclose(ax.get_yticks(), [1.0, 3.5, 5.0])  # block centres
    perm = [0, 2, 5, 1, 4, 3]
    np.testing.assert_array_equal(ax.images[0].get_array(), r.values[np.ix_(perm, perm)])
    assert len(ax.lines) == 4  # 2 separators, horizontal and vertical
    labels = xr.DataArray(r.category_i.values[::-1], dims="stimulus",
                          coords={"stimulus": r.stimulus_i.values[::-1]})
    by_array = plot_rdm(r.drop_vars(["category_i", "category_j"]), order_by=labels).axes[0]
    np.testing.assert_array_equal(by_array.images[0].get_array(), ax.images[0].get_array())
    with pytest.raises(ValueError, match="category_i"):
        plot_rdm(r, order_by="animacy")
    ranked = plot_rdm(r, rank=True, labels=False).axes[0]
    pct = np.asarray(ranked.images[0].get_array())
    assert pct[0, 0] == 0 and 0 < pct[0, 1] < 100 and list(ranked.get_xticks()) == []


def _toy_scores():
    rng = np.random.default_rng(1)
    shape = (2, 3, 2)
    score = rng.uniform(0.1, 0.5, shape)
    return xr.Dataset(
        {"score": (("model", "layer", "target"), score),
         "ci_low": (("model", "layer", "target"), score - 0.05),
         "ci_high": (("model", "layer", "target"), score + 0.1),
         "noise_ceiling_lower": ("target", [0.4, np.nan]),
         "noise_ceiling_upper": ("target", [0.7, np.nan])},
        coords={"model": ["random", "trained"], "layer": ["c0", "c1", "fc"],
                "target": ["human_it", "monkey_it"]})


def test_plot_scores_bars_whiskers_and_ceiling_band():
    res = _toy_scores()
    fig = plot_scores_with_ceiling(res)
    assert [a.get_title() for a in fig.axes] == ["human_it", "monkey_it"]
    for ax, target in zip(fig.axes, res.target.values, strict=True):
        bars = [p for c in ax.containers if hasattr(c, "patches") and c.patches
                for p in c.patches]
        assert len(bars) == 6
        expected = res.score.sel(target=target).values.ravel()  # model-major, as drawn
        np.testing.assert_allclose([b.get_height() for b in bars], expected)
        whiskers = [c for c in ax.collections if isinstance(c, LineCollection)]
        spans = np.array([[s[:, 1].min(), s[:, 1].max()] for w in whiskers
                          for s in w.get_segments()])
        np.testing.assert_allclose(np.sort(spans[:, 0]), np.sort(
            res.ci_low.sel(target=target).values.ravel()))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["c0", "c1", "fc"]
    band = [p for p in fig.axes[0].patches if p.get_label() == CEILING_LABEL]
    assert len(band) == 1
    ys = band[0].get_path().transformed(band[0].get_patch_transform()).vertices[:, 1]
    np.testing.assert_allclose([ys.min(), ys.max()], [0.4, 0.7])
    assert not [p for p in fig.axes[1].patches if p.get_label() == CEILING_LABEL]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["random", "trained", CEILING_LABEL]


def test_plot_cka_heatmap_labels_and_values():
    m = xr.DataArray([[0.9, 0.2], [0.4, 0.65], [0.1, 1.0]], dims=("layer_a", "layer_b"),
                     coords={"layer_a": ["x0", "x1", "x2"], "layer_b": ["y0", "y1"]},
                     name="cka")
    ax = plot_cka_heatmap(m).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["y0", "y1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x0", "x1", "x2"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("layer_b", "layer_a")
    np.testing.assert_array_equal(ax.images[0].get_array(), m.values)
    assert [t.get_text() for t in ax.texts] == ["0.90", "0.20", "0.40", "0.65", "0.10", "1.00"]
    assert ax.texts[3].get_position() == (1, 1)


@pytest.mark.slow
def test_run_model_vs_brain_writes_results_and_figures(tmp_path):
    from rsa_bias.store import read_results

    paths = run_model_vs_brain(tmp_path, small=True)
    assert {p.suffix for p in paths.values()} == {".nc", ".png"}
    rsa = read_results(paths["rsa_it"])
    assert "trained" in rsa.model.values and rsa.attrs["git_sha"]
