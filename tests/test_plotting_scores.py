"""Score, CKA, attribution and voxel-map figures (rsa_bias.plotting.scores, .cka,
.attribution, .brain_maps) drawn from small seeded inputs: bars, whiskers, bands, cells and
annotations are the data they were given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from plotting_helpers import (  # noqa: E402
    bar_patches,
    make_attribution,
    tick_labels,
)

pytestmark = pytest.mark.usefixtures("plotting_env")

from rsa_bias.plotting import (  # noqa: E402
    attribution_table,
    plot_attribution,
    plot_cka_heatmap,
    plot_scores,
    plot_scores_with_ceiling,
    plot_similarity_matrices,
    plot_voxel_map,
)
from rsa_bias.plotting.attribution import RESIDUAL_COLOUR  # noqa: E402
from rsa_bias.plotting.scores import CEILING_LABEL  # noqa: E402

# --- scores with the noise ceiling -----------------------------------------------------------


def _scores() -> xr.Dataset:
    rng = np.random.default_rng(1)
    dims = ("layer", "target", "model")  # not the drawing order: the function transposes
    score = rng.uniform(0.1, 0.5, (3, 2, 2))
    return xr.Dataset(
        {"score": (dims, score), "ci_low": (dims, score - rng.uniform(0.01, 0.1, score.shape)),
         "ci_high": (dims, score + rng.uniform(0.01, 0.1, score.shape)),
         "noise_ceiling_lower": ("target", [np.nan, 0.45]),
         "noise_ceiling_upper": ("target", [np.nan, 0.8])},
        coords={"layer": ["c0", "c1", "fc"], "target": ["human_it", "monkey_it"],
                "model": ["random", "trained"]})


def _whisker_spans(ax) -> np.ndarray:
    segments = [s for c in ax.collections if isinstance(c, LineCollection)
                for s in c.get_segments()]
    return np.array([[s[0, 0], s[:, 1].min(), s[:, 1].max()] for s in segments])


def test_scores_with_ceiling_bars_whiskers_band_per_panel():
    res = _scores()
    fig = plot_scores_with_ceiling(res, ylabel="RSA", title="IT")
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["human_it", "monkey_it"]
    assert fig.axes[0].get_ylabel() == "RSA" and "IT" in [t.get_text() for t in fig.texts]
    for ax, target in zip(fig.axes, res.target.values, strict=True):
        sub = res.sel(target=target).transpose("model", "layer")
        bars = bar_patches(ax)
        np.testing.assert_allclose([b.get_height() for b in bars], sub.score.values.ravel())
        centres = np.array([b.get_x() + b.get_width() / 2 for b in bars])
        np.testing.assert_allclose(centres, np.r_[np.arange(3) - 0.2, np.arange(3) + 0.2])
        assert [to_rgba(b.get_facecolor()) for b in bars[::3]] == [to_rgba("C0"), to_rgba("C1")]
        spans = _whisker_spans(ax)  # whiskers span ci_low..ci_high at each bar
        np.testing.assert_allclose(spans[:, 0], centres)
        np.testing.assert_allclose(spans[:, 1], sub.ci_low.values.ravel())
        np.testing.assert_allclose(spans[:, 2], sub.ci_high.values.ravel())
        assert tick_labels(ax) == ["c0", "c1", "fc"] and ax.get_xlabel() == "layer"
    assert not [p for p in fig.axes[0].patches if p.get_label() == CEILING_LABEL]
    band = [p for p in fig.axes[1].patches if p.get_label() == CEILING_LABEL]
    assert len(band) == 1
    ys = band[0].get_path().transformed(band[0].get_patch_transform()).vertices[:, 1]
    np.testing.assert_allclose([ys.min(), ys.max()], [0.45, 0.8])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sorted(legend) == sorted(["random", "trained", CEILING_LABEL])  # each entry once


def test_scores_with_ceiling_single_panel_and_no_interval():
    ds = xr.Dataset({"r": ("layer", [0.2, -0.1, 0.4]), "noise_ceiling_lower": 0.3,
                     "noise_ceiling_upper": 0.6}, coords={"layer": ["a", "b", "c"]})
    fig = plot_scores_with_ceiling(ds, score="r")  # no model / target dims, no ci_* variables
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and ax.get_ylabel() == "r"
    np.testing.assert_allclose([b.get_height() for b in bar_patches(ax)], [0.2, -0.1, 0.4])
    assert _whisker_spans(ax).size == 0
    res = _scores()
    with pytest.warns(FutureWarning, match="interval"):  # the old name of interval=
        fig = plot_scores_with_ceiling(res, ci=None, ceiling=None)
    assert all(_whisker_spans(ax).size == 0 for ax in fig.axes)
    assert not [p for ax in fig.axes for p in ax.patches if p.get_label() == CEILING_LABEL]
    with pytest.raises(ValueError, match="no variable 'rsa'"):
        plot_scores_with_ceiling(res, score="rsa")


# --- CKA heatmap -----------------------------------------------------------------------------


def test_cka_heatmap_cells_annotations_and_colours():
    m = xr.DataArray([[0.95, 0.3, 0.1], [0.2, 0.7, 0.55]], dims=("layer_a", "layer_b"),
                     coords={"layer_a": ["a0", "a1"], "layer_b": ["b0", "b1", "b2"]},
                     name="linear CKA")
    fig = plot_cka_heatmap(m, title="CKA")
    ax, bar = fig.axes
    np.testing.assert_array_equal(ax.images[0].get_array(), m.values)
    assert ax.images[0].get_clim() == (0.0, 1.0) and bar.get_ylabel() == "linear CKA"
    assert tick_labels(ax) == ["b0", "b1", "b2"] and tick_labels(ax, "y") == ["a0", "a1"]
    assert [t.get_text() for t in ax.texts] == ["0.95", "0.30", "0.10", "0.20", "0.70", "0.55"]
    assert [t.get_position() for t in ax.texts] == [(j, i) for i in range(2) for j in range(3)]
    # dark text on bright (high) cells, white on dark ones
    assert [t.get_color() for t in ax.texts] == ["k", "w", "w", "w", "k", "k"]
    assert ax.get_title() == "CKA"
    other = plot_cka_heatmap(m, annot=False, vmin=0.2, vmax=0.6).axes[0]
    assert not other.texts and other.images[0].get_clim() == (0.2, 0.6)
    assert [t.get_text() for t in plot_cka_heatmap(m, fmt="{:.1%}").axes[0].texts][:2] == \
        ["95.0%", "30.0%"]
    with pytest.raises(ValueError, match="2-D"):
        plot_cka_heatmap(m.expand_dims(seed=2))


# --- attributions and bias-controlled scores -------------------------------------------------


def test_attribution_table_numbers_are_the_datasets():
    a = make_attribution({"colour": 0.6, "shape": 0.15}, residual=0.05)
    b = make_attribution({"colour": -0.1, "shape": 0.4}, residual=0.2)
    table = attribution_table({"raw": a, "controlled": b})
    assert list(table.index) == ["raw", "controlled"]
    assert list(table.columns) == ["colour", "shape", "residual"]
    np.testing.assert_allclose(table.to_numpy(), [[0.6, 0.15, 0.05], [-0.1, 0.4, 0.2]])
    one = attribution_table(a)  # one Dataset, no extra dim: one unnamed row
    assert list(one.index) == [""]
    np.testing.assert_allclose(one.loc[""], [0.6, 0.15, 0.05])
    by_seed = xr.concat([a, b], dim="seed").assign_coords(seed=[4, 9])
    table = attribution_table(by_seed)  # the one extra dim gives the rows
    assert list(table.index) == ["4", "9"]
    np.testing.assert_allclose(table.loc["9"], [-0.1, 0.4, 0.2])
    assert attribution_table(by_seed, dim="seed").equals(table)


def test_plot_attribution_stacks_each_share_from_zero():
    entries = {"m1": make_attribution({"A": 0.5, "B": -0.2, "C": 0.25}, residual=-0.05),
               "m2": make_attribution({"A": -0.1, "B": 0.3, "C": 0.4}, residual=0.1),
               "m3": make_attribution({"A": 0.2, "B": 0.2, "C": -0.3}, residual=0.0),
               "m4": make_attribution({"A": 0.0, "B": 0.6, "C": 0.1}, residual=0.15)}
    fig = plot_attribution(entries, title="shares")
    ax = fig.axes[0]
    table = attribution_table(entries).to_numpy()  # (entry, column)
    containers = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in containers] == ["A", "B", "C", "residual"]
    heights = np.array([[p.get_height() for p in c.patches] for c in containers]).T
    bottoms = np.array([[p.get_y() for p in c.patches] for c in containers]).T
    np.testing.assert_allclose(heights, table)
    # each segment starts where the previous ones of its sign ended
    pos = np.cumsum(np.maximum(table, 0), axis=1) - np.maximum(table, 0)
    neg = np.cumsum(np.minimum(table, 0), axis=1) - np.minimum(table, 0)
    np.testing.assert_allclose(bottoms, np.where(table >= 0, pos, neg))
    colours = [to_rgba(c.patches[0].get_facecolor()) for c in containers]
    assert colours == [to_rgba(c) for c in ("C0", "C1", "C2", RESIDUAL_COLOUR)]
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], table.sum(axis=1))
    assert tick_labels(ax) == list(entries) and ax.get_title() == "shares"
    assert not plot_attribution(entries, show_total=False).axes[0].collections


def test_plot_attribution_residual_keeps_its_colour_when_features_differ():
    entries = {"raw": make_attribution({"A": 0.5}, residual=0.1),
               "extended": make_attribution({"A": 0.3, "B": 0.2}, residual=0.1)}
    ax = plot_attribution(entries).axes[0]
    colour = {c.get_label(): to_rgba(c.patches[0].get_facecolor()) for c in ax.containers
              if isinstance(c, BarContainer)}
    assert colour["residual"] == to_rgba(RESIDUAL_COLOUR)
    assert colour["B"] != to_rgba(RESIDUAL_COLOUR)


def test_plot_scores_one_panel_per_measure_bars_are_the_scores():
    rng = np.random.default_rng(7)
    score = xr.DataArray(rng.uniform(-0.2, 1.0, (3, 2, 2)),
                         dims=("model", "measure", "condition"),
                         coords={"model": ["m1", "m2", "m3"], "measure": ["rsa", "cka"],
                                 "condition": ["raw", "equalised"]})
    fig = plot_scores(score)
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["rsa", "cka"]
    for ax, measure in zip(fig.axes, score.measure.values, strict=True):
        sub = score.sel(measure=measure).transpose("condition", "model")
        bars = bar_patches(ax)
        np.testing.assert_allclose([b.get_height() for b in bars], sub.values.ravel())
        centres = [b.get_x() + b.get_width() / 2 for b in bars]
        np.testing.assert_allclose(centres, np.r_[np.arange(3) - 0.2, np.arange(3) + 0.2])
        assert tick_labels(ax) == ["m1", "m2", "m3"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["raw", "equalised"]
    single = plot_scores(score.sel(measure="cka"), x="condition", hue="model", col=None)
    assert len(single.axes) == 1 and tick_labels(single.axes[0]) == ["raw", "equalised"]
    np.testing.assert_allclose([b.get_height() for b in bar_patches(single.axes[0])],
                               score.sel(measure="cka").values.ravel())


def _similarity(models_a, models_b, seed: int) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    return xr.DataArray(rng.uniform(0, 1, (len(models_a), len(models_b))),
                        dims=("model_a", "model_b"),
                        coords={"model_a": models_a, "model_b": models_b})


def test_similarity_matrices_panels_annotations_and_labels():
    models = ["x", "y", "z"]
    mats = {"cka": _similarity(models, models, 0), "rsa": _similarity(models, models, 1),
            "procrustes": _similarity(models, models, 2)}
    fig = plot_similarity_matrices(mats, ncols=2, fmt="{:.3f}")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3 and sum(not ax.get_visible() for ax in fig.axes) == 1
    for ax, (title, m) in zip(panels, mats.items(), strict=True):
        assert ax.get_title() == title
        np.testing.assert_array_equal(ax.images[0].get_array(), m.values)
        assert [t.get_text() for t in ax.texts] == [f"{v:.3f}" for v in m.values.ravel()]
        assert [t.get_position() for t in ax.texts] == [(j, i) for i in range(3)
                                                        for j in range(3)]
        assert tick_labels(ax) == models and tick_labels(ax, "y") == models
    assert len(fig.axes) == 5  # 2 x 2 grid and one shared colour bar


def test_similarity_matrices_column_labels_come_from_the_second_dim():
    m = _similarity(["x", "y", "z"], ["z", "x"], 3)
    ax = plot_similarity_matrices({"cka": m}).axes[0]
    assert tick_labels(ax, "y") == ["x", "y", "z"]
    assert tick_labels(ax) == ["z", "x"]


# --- voxel map -------------------------------------------------------------------------------


def test_voxel_map_draws_the_thresholded_values_on_each_slice():
    pytest.importorskip("nilearn")
    mask = np.zeros((5, 4, 3), bool)
    mask[1:4, 1:3, :] = True
    i, j, k = np.nonzero(mask)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    ds = xr.Dataset(coords={"voxel": np.arange(i.size), "i": ("voxel", i), "j": ("voxel", j),
                            "k": ("voxel", k)},
                    attrs={"mask_shape": list(mask.shape),
                           "affine": [float(a) for a in affine.ravel()]})
    rng = np.random.default_rng(0)
    values = xr.DataArray(rng.permutation(np.linspace(-3, 3, i.size)), dims="voxel",
                          coords={"voxel": ds.voxel})
    fig = plot_voxel_map(values, ds, title="face - house", threshold=1.0)
    slices = [ax for ax in fig.axes if ax.images]
    assert len(slices) == 3  # one axial cut per mask slice (n_cuts=5 > 3 slices)
    for ax in slices:
        z = [float(t.get_text()[2:]) for t in ax.texts if t.get_text().startswith("z=")]
        at_k = values.values[k == round(z[0] / 3.0)]
        shown = np.sort(np.ma.compressed(ax.images[0].get_array()))
        np.testing.assert_allclose(shown, np.sort(at_k[np.abs(at_k) > 1.0]), rtol=1e-6)
        assert ax.images[0].get_clim() == pytest.approx((-3.0, 3.0))  # symmetric, max |value|
    assert "face - house" in [t.get_text() for ax in slices for t in ax.texts]
    fig = plot_voxel_map(values.values, ds, vmax=2.0, n_cuts=2, colorbar=False)
    slices = [ax for ax in fig.axes if ax.images]
    assert len(slices) == 2
    assert slices[0].images[0].get_clim() == pytest.approx((-2.0, 2.0))
    assert np.ma.count(slices[0].images[0].get_array()) == 6  # no threshold: all non-zero
