"""Trifeature-like images: exact balance, determinism, and every feature visible in the pixels."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from rsa_bias.config import ConfigError, ImageTaskConfig, TaskConfig, config_from_dict
from rsa_bias.store import activation_tree, read_activations, write_activations
from rsa_bias.tasks import make_image_task, make_task, n_classes
from rsa_bias.tasks.images import RGB, SHAPE_MASKS, render, to_uint8

FEATURES = ("colour", "shape", "texture")


@pytest.fixture(scope="module")
def cfg() -> TaskConfig:
    return TaskConfig(kind="images", n_train=27 * 6, val_size=27 * 2, test_size=27 * 4, seed=3)


@pytest.fixture(scope="module")
def ds(cfg):
    return make_image_task(cfg)


def _values(ds):
    return np.stack([ds[f"feature_{f}"].values for f in FEATURES], axis=1)


def test_layout_and_labels(ds, cfg):
    assert ds.inputs.dims == ("stimulus", "channel", "y", "x")
    assert ds.inputs.shape == (27 * 12, 3, 32, 32) and ds.inputs.dtype == np.float32
    assert float(ds.inputs.min()) >= -1.0 and float(ds.inputs.max()) <= 1.0
    assert ds.attrs["feature_names"] == list(FEATURES)
    assert ds.feature_colour.attrs["values"] == ["red", "green", "blue"]
    assert ds.feature_shape.attrs["values"] == ["circle", "square", "triangle"]
    assert ds.feature_texture.attrs["values"] == ["stripes_horizontal", "dots", "checker"]
    assert n_classes(ds) == {"colour": 3, "shape": 3, "texture": 3}
    assert len(np.unique(ds.stimulus.values)) == ds.sizes["stimulus"]
    assert list(ds.split.values[:162]) == ["train"] * 162  # splits in order, shuffled within


@pytest.mark.parametrize("split,per_cell", [("train", 6), ("val", 2), ("test", 4)])
def test_every_combination_equally_often_per_split(ds, split, per_cell):
    v = _values(ds)[ds.split.values == split]
    counts = {cell: 0 for cell in itertools.product(range(3), repeat=3)}
    for row in map(tuple, v):
        counts[row] += 1
    assert set(counts.values()) == {per_cell}
    # hence exactly independent: the joint frequency is the product of the marginals
    joint = np.histogramdd(v, bins=(3, 3, 3))[0] / len(v)
    marg = [np.bincount(v[:, i], minlength=3) / len(v) for i in range(3)]
    np.testing.assert_allclose(joint, np.einsum("i,j,k->ijk", *marg))


def test_deterministic_and_seeded(ds, cfg):
    again = make_image_task(cfg)
    assert again.identical(ds)
    other = make_image_task(dataclasses.replace(cfg, seed=4))
    assert not np.array_equal(other.inputs.values, ds.inputs.values)
    assert not np.array_equal(_values(other), _values(ds))


def test_no_image_repeats(ds):
    flat = ds.inputs.values.reshape(ds.sizes["stimulus"], -1)
    assert len(np.unique(flat, axis=0)) == len(flat)


def test_offsets_within_jitter_and_distinct_per_combination(ds, cfg):
    j = cfg.images.jitter
    off = np.stack([ds.offset_x.values, ds.offset_y.values], axis=1)
    assert off.min() >= -j and off.max() <= j
    cells = _values(ds) @ np.array([9, 3, 1])
    for c in range(27):  # 12 images per combination, 81 positions: all distinct
        assert len({tuple(o) for o in off[cells == c]}) == 12


def _mask(ds):
    """Pixels that differ from the grey background (inputs 0)."""
    return np.abs(ds.inputs.values).max(axis=1) > 0.05


def _nearest_centroid_accuracy(x, labels, split):
    train, test = split == "train", split != "train"
    centroids = np.stack([x[train & (labels == k)].mean(0) for k in np.unique(labels)])
    pred = np.argmin(((x[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    return float(np.mean(pred == labels[test]))


def test_colour_is_the_chromaticity_of_the_shape(ds):
    img = (ds.inputs.values + 1) / 2
    mask = _mask(ds)
    mean_rgb = np.stack([img[i][:, mask[i]].mean(axis=1) for i in range(len(img))])
    chroma = mean_rgb / mean_rgb.sum(axis=1, keepdims=True)
    table = np.array([RGB[c] for c in ds.feature_colour.attrs["values"]])
    table = table / table.sum(axis=1, keepdims=True)
    pred = np.argmin(((chroma[:, None] - table[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(pred, ds.feature_colour.values)


def test_shape_is_the_mask_once_centred(ds):
    mask = _mask(ds).astype(float)
    centred = np.stack([np.roll(m, (-oy, -ox), axis=(0, 1)) for m, ox, oy in
                        zip(mask, ds.offset_x.values, ds.offset_y.values, strict=True)])
    acc = _nearest_centroid_accuracy(centred.reshape(len(mask), -1), ds.feature_shape.values,
                                     ds.split.values)
    assert acc == 1.0
    # without the offsets the same classifier is worse: the jitter is real
    raw = _nearest_centroid_accuracy(mask.reshape(len(mask), -1), ds.feature_shape.values,
                                     ds.split.values)
    assert raw < acc


def test_texture_is_the_spatial_frequency_content_of_the_shape(ds):
    lum = ds.inputs.values.mean(axis=1)
    mask = _mask(ds)
    pattern = np.where(mask, lum - np.array([lum[i][mask[i]].mean() for i in range(len(lum))])
                       [:, None, None], 0.0)
    spectrum = np.abs(np.fft.fft2(pattern)).reshape(len(lum), -1)  # shift-invariant
    spectrum /= np.linalg.norm(spectrum, axis=1, keepdims=True)
    acc = _nearest_centroid_accuracy(spectrum, ds.feature_texture.values, ds.split.values)
    assert acc >= 0.95


def test_every_pair_of_shapes_differs_in_15_percent_of_the_smaller_shape():
    """At the default 32 px, radius 0.3, two shape masks differ in at least 15 % of the smaller
    shape's pixels (the closest pairs, circle/ring and cross/diamond, differ in ~20 %)."""
    masks = {s: np.abs(render("red", s, "solid") - 0.5).sum(axis=0) > 1e-6 for s in SHAPE_MASKS}
    assert len(masks) == 8
    for a, b in itertools.combinations(masks, 2):
        smaller = min(masks[a].sum(), masks[b].sum())
        assert (masks[a] ^ masks[b]).sum() >= 0.15 * smaller, (a, b)


def test_positions_repeat_only_after_all_are_used():
    """A combination with more images than positions uses each position once before reusing
    any: 11 images and 9 positions give every position, two of them twice."""
    ds = make_image_task(TaskConfig(kind="images", n_train=8 * 9, val_size=8, test_size=8,
                                    images=ImageTaskConfig(size=16, n_colours=2, n_shapes=2,
                                                           n_textures=2, shape_radius=0.3,
                                                           jitter=1)))
    cells = _values(ds) @ np.array([4, 2, 1])
    for c in range(8):
        pos = [(x, y) for x, y in zip(ds.offset_x.values[cells == c],
                                      ds.offset_y.values[cells == c], strict=True)]
        assert len(pos) == 11 and len(set(pos)) == 9


def test_binary_version_and_more_values():
    binary = make_task(TaskConfig(kind="images", n_train=16, val_size=8, test_size=8,
                                  images=ImageTaskConfig(n_colours=2, n_shapes=2,
                                                         n_textures=2)))
    assert n_classes(binary) == {"colour": 2, "shape": 2, "texture": 2}
    assert set(np.unique(_values(binary))) == {0, 1}
    many = make_task(TaskConfig(kind="images", n_train=8 * 5 * 4, val_size=160, test_size=160,
                                images=ImageTaskConfig(n_colours=8, n_shapes=5, n_textures=4,
                                                       size=24, jitter=2)))
    assert many.inputs.shape[1:] == (3, 24, 24)
    assert n_classes(many) == {"colour": 8, "shape": 5, "texture": 4}
    assert many.feature_shape.attrs["values"][-1] == "star"


def test_noise_and_no_jitter():
    base = TaskConfig(kind="images", n_train=8, val_size=8, test_size=8, seed=1,
                      images=ImageTaskConfig(n_colours=2, n_shapes=2, n_textures=2, jitter=0))
    clean = make_image_task(base)
    assert (clean.offset_x == 0).all() and (clean.offset_y == 0).all()
    noisy = make_image_task(dataclasses.replace(
        base, images=dataclasses.replace(base.images, noise=0.1)))
    diff = noisy.inputs.values - clean.inputs.values
    assert abs(diff.std() - 0.1) < 0.005 and abs(diff.mean()) < 0.005
    assert float(np.abs(noisy.inputs).max()) > 1.0  # unclipped, as documented
    assert "unclipped" in noisy.attrs["pixel_range"] and "noise" not in clean.attrs["pixel_range"]


def test_to_uint8_round_trip(ds):
    img = to_uint8(ds.inputs.values[:3])
    assert img.shape == (3, 32, 32, 3) and img.dtype == np.uint8
    back = np.moveaxis(img.astype(float) / 255 * 2 - 1, -1, 1)
    np.testing.assert_allclose(back, ds.inputs.values[:3], atol=1 / 255 + 1e-6)


def test_value_names_survive_the_store(ds, tmp_path):
    sub = ds.isel(stimulus=slice(0, 20))
    tree = activation_tree(sub, {"conv_0": np.zeros((20, 4), dtype=np.float32)})
    write_activations(tree, tmp_path / "a.nc")
    back = read_activations(tmp_path / "a.nc")
    assert list(back["feature_texture"].attrs["values"]) == ["stripes_horizontal", "dots",
                                                             "checker"]
    assert n_classes(back.to_dataset()) == {"colour": 3, "shape": 3, "texture": 3}


@pytest.mark.parametrize(("task", "key"), [
    ({"kind": "image"}, "task.kind"),
    ({"kind": "images", "n_train": 26, "val_size": 27, "test_size": 27}, "task.n_train"),
    ({"kind": "images", "n_train": "all", "val_size": 27, "test_size": 27}, "task.n_train"),
    ({"kind": "images", "n_train": 27, "val_size": 20, "test_size": 27}, "task.val_size"),
    ({"kind": "images", "n_train": 27, "val_size": 27, "test_size": 27, "n_distractor": 3},
     "task.n_distractor"),
    ({"kind": "images", "n_train": 27, "val_size": 27, "test_size": 27,
      "images": {"n_colours": 9}}, "task.images.n_colours"),
    ({"kind": "images", "n_train": 27, "val_size": 27, "test_size": 27,
      "images": {"jitter": 8}}, "task.images.jitter"),
    ({"kind": "images", "n_train": 27, "val_size": 27, "test_size": 27,
      "images": {"sizee": 8}}, "task.images.sizee"),
    ({"images": {"size": 16}}, "task.images"),
])
def test_bad_image_task_configs_name_the_key(task, key):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"task": task})
    assert str(info.value).startswith(f"{key}:"), str(info.value)


def test_binary_task_config_unchanged_by_image_fields():
    cfg = config_from_dict({})
    assert cfg.task.kind == "binary" and cfg.task.n_cells == 4
    images = config_from_dict({"task": {"kind": "images", "n_train": 27, "val_size": 27,
                                        "test_size": 27}, "model": {"arch": "cnn"},
                               "training": {"batch_size": 27}})
    assert images.task.n_cells == 27
    with pytest.raises(ConfigError, match="^model.arch: the MLP has binary heads only"):
        config_from_dict({"task": images.to_dict()["task"]})  # 3-valued features need the CNN
