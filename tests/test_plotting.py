"""Figures of runs and RDMs (rsa_bias.plotting.training, .rdms) drawn from small seeded
inputs: what ends up on the Axes is the data it was given, reordered or transformed only as
documented."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from plotting_helpers import (  # noqa: E402
    FEATURES,
    LAYERS,
    PNG_MAGIC,
    bar_patches,
    data_lines,
    grouped_order,
    lines_by_legend,
    make_rdm,
    make_results,
    percentiles_of,
    tick_labels,
)

pytestmark = pytest.mark.usefixtures("plotting_env")

from rsa_bias.plotting import (  # noqa: E402
    category_order,
    plot_pca,
    plot_r2_by_layer,
    plot_rdm,
    plot_rdm_row,
    plot_training_curves,
    save_figures,
)

# --- training figures ------------------------------------------------------------------------


def test_r2_by_layer_bars_are_final_step_means_per_layer_and_feature():
    res = make_results()
    fig = plot_r2_by_layer(res)
    ax = fig.axes[0]
    final = res.isel(step=-1)
    expected = {**{f: final.r2.sel(feature=f) for f in FEATURES}, "all (joint)": final.r2_joint}
    bar_containers = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bar_containers) == len(expected)  # one bar series per feature + the joint R²
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(expected)
    assert tick_labels(ax) == LAYERS
    lines = iter(ax.lines)  # one CI whisker per bar, drawn in the same order
    for container, (name, r2) in zip(bar_containers, expected.items(), strict=True):
        per_seed = r2.transpose("layer", "seed").values
        np.testing.assert_allclose([b.get_height() for b in container.patches],
                                   per_seed.mean(axis=1), err_msg=name)
        for seeds in per_seed:
            whisker = next(lines).get_ydata()  # 95% CI of the mean over seeds: inside their range
            assert seeds.min() - 1e-12 <= min(whisker) < seeds.mean() < max(whisker)
            assert max(whisker) <= seeds.max() + 1e-12
    # the seeds themselves are drawn as points: every final-step value appears once
    points = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])
    drawn = np.concatenate([final.r2.values.ravel(), final.r2_joint.values.ravel()])
    np.testing.assert_allclose(np.sort(points), np.sort(drawn))


def test_r2_by_layer_draws_into_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_r2_by_layer(make_results(), ax=right) is fig
    assert not bar_patches(left) and len(bar_patches(right)) == 3 * len(LAYERS)


def test_training_curves_are_seed_means_of_the_chosen_layer_and_test_split():
    res = make_results()
    fig = plot_training_curves(res, layer="hidden_1")
    assert len(fig.axes) == 3
    panels = [("r2", "step"), ("r2_final_norm", "step"), ("accuracy", "eval_step")]
    assert "hidden_1" in fig.axes[0].get_title() and "hidden_1" in fig.axes[1].get_title()
    for ax, (var, step) in zip(fig.axes, panels, strict=True):
        da = res[var].sel(split="test") if var == "accuracy" else res[var].sel(layer="hidden_1")
        lines = lines_by_legend(ax)
        assert list(lines) == FEATURES
        for feature, line in lines.items():
            np.testing.assert_array_equal(line.get_xdata(), res[step].values)
            mean = da.sel(feature=feature).mean("seed").transpose(step).values
            np.testing.assert_allclose(line.get_ydata(), mean, err_msg=f"{var} {feature}")
    # the CI bands of the seed means stay within the seeds' range at every step
    r2 = res.r2.sel(layer="hidden_1")
    bands = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == len(FEATURES)
    for band, feature in zip(bands, FEATURES, strict=True):
        xy = band.get_paths()[0].vertices
        for step in res.step.values:
            ys = xy[np.isclose(xy[:, 0], step), 1]
            seeds = r2.sel(feature=feature, step=step).values
            assert ys.size and seeds.min() - 1e-12 <= ys.min() <= ys.max() <= seeds.max() + 1e-12


def test_training_curves_default_to_the_last_layer_without_final_norm():
    res = make_results().drop_vars("r2_final_norm")
    fig = plot_training_curves(res)
    assert "hidden_2" in fig.axes[0].get_title()
    lines = lines_by_legend(fig.axes[0])
    np.testing.assert_allclose(lines["hard"].get_ydata(),
                               res.r2.sel(layer="hidden_2", feature="hard").mean("seed"))
    assert not data_lines(fig.axes[1])  # nothing to draw there


def test_pca_bars_and_heatmap_are_seed_means_of_the_layer():
    res = make_results()
    fig = plot_pca(res, layer="hidden_1")
    bars, heat = fig.axes[0], fig.axes[1]
    sub = res.sel(layer="hidden_1")
    np.testing.assert_allclose([b.get_height() for b in bar_patches(bars)],
                               sub.variance_fraction.mean("seed").values)
    assert tick_labels(bars) == ["1", "2", "3", "4"]
    corr = sub.feature_corr.mean("seed").transpose("pc", "feature").values
    np.testing.assert_allclose(np.asarray(heat.collections[0].get_array()).reshape(corr.shape),
                               corr)
    assert tick_labels(heat) == FEATURES and tick_labels(heat, "y") == ["1", "2", "3", "4"]
    assert [t.get_text() for t in heat.texts] == [f"{v:.2f}" for v in corr.ravel()]
    assert "hidden_1" in bars.get_title()


def test_save_figures_writes_the_pngs_it_returns(tmp_path):
    paths = save_figures(make_results(), tmp_path / "figs")
    assert [p.name for p in paths] == ["r2_by_layer.png", "training_curves.png", "pca.png"]
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(p.name for p in paths)
    for p in paths:
        assert p.parent == tmp_path / "figs"
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert plt.get_fignums() == []  # every figure closed once saved


# --- RDMs ------------------------------------------------------------------------------------


def test_category_order_groups_labels_stably():
    rng = np.random.default_rng(3)
    cats = rng.choice(np.array(["dog", "cat", "car", "tree"]), size=30)
    perm, names, starts = category_order(cats)
    assert sorted(perm.tolist()) == list(range(30))  # a permutation
    assert names == list(dict.fromkeys(cats.tolist()))  # groups in order of first appearance
    grouped = cats[perm]
    assert [grouped[s] for s in starts] == names
    ends = np.append(starts[1:], 30)
    for name, s, e in zip(names, starts, ends, strict=True):
        assert (grouped[s:e] == name).all() and (cats == name).sum() == e - s  # contiguous
        assert (np.diff(perm[s:e]) > 0).all()  # original order kept within a group
    perm, names, starts = category_order(np.array([2, 1, 2, 1, 3]))
    assert perm.tolist() == [0, 2, 1, 3, 4] and names == ["2", "1", "3"]
    assert starts.tolist() == [0, 2, 4]


def test_plot_rdm_image_is_the_rdm_grouped_by_category():
    cats = ["b", "a", "c", "a", "b", "c", "a", "b", "b"]
    r = make_rdm(cats)
    fig = plot_rdm(r, title="IT")
    ax = fig.axes[0]
    perm = grouped_order(cats)
    np.testing.assert_array_equal(ax.images[0].get_array(), r.values[np.ix_(perm, perm)])
    assert tick_labels(ax, "y") == ["b", "a", "c"] and tick_labels(ax) == ["b", "a", "c"]
    np.testing.assert_allclose(ax.get_yticks(), [1.5, 5.0, 7.5])  # centres of 4 + 3 + 2
    np.testing.assert_allclose(ax.get_xticks(), [1.5, 5.0, 7.5])
    hlines = sorted(ln.get_ydata()[0] for ln in ax.lines if ln.get_ydata()[0] ==
                    ln.get_ydata()[1])
    vlines = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_xdata()[0] ==
                    ln.get_xdata()[1])
    assert hlines == vlines == [3.5, 6.5]  # separators between the blocks
    assert ax.get_title() == "IT"
    assert fig.axes[1].get_ylabel() == "correlation"  # colour bar named by attrs["method"]
    plain = plot_rdm(r, order_by=None).axes[0]  # None keeps the RDM's own order
    np.testing.assert_array_equal(plain.images[0].get_array(), r.values)
    assert list(plain.get_xticks()) == [] and list(plain.get_yticks()) == []


def test_plot_rdm_rank_shows_percentiles_of_the_grouped_rdm():
    cats = ["x", "y", "x", "z", "y", "x", "z"]
    r = make_rdm(cats, seed=5)
    fig = plot_rdm(r, rank=True)
    pct = np.asarray(fig.axes[0].images[0].get_array())
    perm = grouped_order(cats)
    np.testing.assert_allclose(pct, percentiles_of(r.values[np.ix_(perm, perm)]))
    assert fig.axes[1].get_ylabel() == "percentile"
    # ranks only: a monotone transform of the dissimilarities draws the same image
    again = plot_rdm(np.exp(r) - 1, rank=True).axes[0].images[0].get_array()
    np.testing.assert_allclose(again, pct)


def test_plot_rdm_order_by_labels_aligned_by_stimulus_id():
    cats = ["a", "b", "a", "b", "c", "c"]
    r = make_rdm(cats, seed=2, ids=[7, 3, 9, 1, 4, 8]).drop_vars(["category_i", "category_j"])
    rng = np.random.default_rng(1)
    shuffle = rng.permutation(6)
    labels = xr.DataArray(np.array(cats)[shuffle], dims="stimulus",
                          coords={"stimulus": r.stimulus_i.values[shuffle]})
    labels = xr.concat([labels, xr.DataArray(["z"], dims="stimulus",  # extra ids are ignored
                                             coords={"stimulus": [99]})], dim="stimulus")
    ax = plot_rdm(r, order_by=labels).axes[0]
    perm = grouped_order(cats)
    np.testing.assert_array_equal(ax.images[0].get_array(), r.values[np.ix_(perm, perm)])
    assert tick_labels(ax, "y") == ["a", "b", "c"]
    with pytest.raises(ValueError, match="lacks 1 stimulus ids"):
        plot_rdm(r, order_by=labels.isel(stimulus=slice(1, None)))


def test_plot_rdm_aligns_columns_by_stimulus_id():
    cats = ["a", "b", "a", "b", "c"]
    r = make_rdm(cats, seed=4)
    flipped = r.isel(stimulus_j=slice(None, None, -1))  # the same RDM, columns stored reversed
    ax = plot_rdm(flipped).axes[0]
    perm = grouped_order(cats)
    np.testing.assert_array_equal(ax.images[0].get_array(), r.values[np.ix_(perm, perm)])


def test_plot_rdm_row_one_panel_per_rdm_labels_on_the_first():
    cats = ["p", "q", "p", "q", "r", "r"]
    rdms = {name: make_rdm(cats, seed=i) for i, name in enumerate(["model", "IT", "V4"])}
    fig = plot_rdm_row(rdms)
    assert len(fig.axes) == 3  # no colour bars
    assert [ax.get_title() for ax in fig.axes] == list(rdms)
    perm = grouped_order(cats)
    for ax, r in zip(fig.axes, rdms.values(), strict=True):  # percentiles by default
        np.testing.assert_allclose(ax.images[0].get_array(),
                                   percentiles_of(r.values[np.ix_(perm, perm)]))
    assert tick_labels(fig.axes[0], "y") == ["p", "q", "r"]
    assert all(list(ax.get_xticks()) == [] for ax in fig.axes[1:])
    raw = plot_rdm_row({"IT": rdms["IT"]}, rank=False).axes[0]
    np.testing.assert_array_equal(raw.images[0].get_array(),
                                  rdms["IT"].values[np.ix_(perm, perm)])
