"""Activation files written batch by batch, read lazily, and image folders as stimuli."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from PIL import Image

from rsa_bias.store import (
    StoreError,
    activation_tree,
    layer_activation,
    read_activations,
    write_activations,
)
from rsa_bias.store.images import image_folder_stimuli, read_images
from rsa_bias.store.stream import ActivationWriter, chunk_rows


def _stimuli(n: int = 23) -> xr.Dataset:
    return xr.Dataset({"inputs": (("stimulus", "bit"), np.zeros((n, 2)))},
                      coords={"stimulus": np.arange(100, 100 + n),
                              "feature_a": ("stimulus", np.arange(n) % 2),
                              "split": ("stimulus", np.where(np.arange(n) % 3, "val", "test"))},
                      attrs={"feature_names": ["a"], "source": "test"})


def _layers(n: int = 23) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"layer1.0.relu": rng.normal(size=(n, 5)).astype(np.float32),
            "fc": rng.normal(size=(n, 3)).astype(np.float32)}


def _write_in_batches(path, stimuli, layers, batch: int, **kw):
    n = stimuli.sizes["stimulus"]
    with ActivationWriter(path, stimuli, attrs={"model_class": "Net"}, **kw) as w:
        for start in range(0, n, batch):
            w.append({k: v[start:start + batch] for k, v in layers.items()})
    return path


@pytest.mark.parametrize("batch", [1, 7, 23])
def test_streamed_file_equals_the_in_memory_writer(tmp_path, batch):
    stimuli, layers = _stimuli(), _layers()
    _write_in_batches(tmp_path / "s.nc", stimuli, layers, batch)
    write_activations(activation_tree(stimuli, layers), tmp_path / "m.nc")
    streamed, whole = read_activations(tmp_path / "s.nc"), read_activations(tmp_path / "m.nc")
    assert set(streamed.children) == set(whole.children)
    for name in layers:
        a, b = layer_activation(streamed, name), layer_activation(whole, name)
        np.testing.assert_array_equal(a.values, b.values)
        assert a.dims == b.dims
        for coord in ("stimulus", "feature_a", "split"):
            np.testing.assert_array_equal(a[coord].values, b[coord].values)
    assert streamed.attrs["feature_names"] == ["a"] and streamed.attrs["model_class"] == "Net"
    assert "inputs" not in streamed.to_dataset()  # pixels / inputs are not copied


def test_lazy_read_keeps_dask_arrays_and_equals_eager(tmp_path):
    stimuli, layers = _stimuli(), _layers()
    _write_in_batches(tmp_path / "s.nc", stimuli, layers, 5)
    lazy = read_activations(tmp_path / "s.nc", chunks={"stimulus": 4}, layers=["fc"])
    act = layer_activation(lazy, "layer1.0.relu")
    assert isinstance(act.data, da.Array)
    assert act.data.chunks[0][:2] == (4, 4)
    np.testing.assert_array_equal(act.values, layers["layer1.0.relu"])
    np.testing.assert_array_equal(act["feature_a"].values, np.arange(23) % 2)
    lazy.close()


def test_stored_chunks_are_along_stimulus(tmp_path):
    import netCDF4

    stimuli, layers = _stimuli(), _layers()
    _write_in_batches(tmp_path / "s.nc", stimuli, layers, 5, compression=1)
    with netCDF4.Dataset(tmp_path / "s.nc") as nc:
        var = nc["fc"]["activation"]
        assert var.chunking() == [23, 3]
        assert var.filters()["zlib"]
    assert chunk_rows(10**6, 1000) == 1048 and chunk_rows(10, 10**9) == 1


def test_crash_mid_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    stimuli, layers = _stimuli(), _layers()
    path = tmp_path / "acts.nc"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="killed"):
        with ActivationWriter(path, stimuli) as w:
            w.append({k: v[:5] for k, v in layers.items()})
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["acts.nc"]  # no temporary left behind


def test_incomplete_file_is_refused_and_not_written(tmp_path):
    stimuli, layers = _stimuli(), _layers()
    path = tmp_path / "acts.nc"
    with pytest.raises(StoreError, match="fewer rows than the 23 stimuli"):
        with ActivationWriter(path, stimuli) as w:
            w.append({k: v[:10] for k, v in layers.items()})
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad, match", [
    ({"fc": np.zeros((2, 4)), "layer1.0.relu": np.zeros((2, 5))}, "expected \\(rows, 3\\)"),
    ({"fc": np.zeros((2, 3))}, "every batch must hold"),
    ({"fc": np.full((2, 3), np.nan), "layer1.0.relu": np.zeros((2, 5))}, "NaN or inf"),
    ({"fc": np.zeros((30, 3)), "layer1.0.relu": np.zeros((30, 5))}, "more activations"),
])
def test_bad_batches_are_refused(tmp_path, bad, match):
    stimuli, layers = _stimuli(), _layers()
    w = ActivationWriter(tmp_path / "a.nc", stimuli)
    w.append({k: v[:1] for k, v in layers.items()})
    with pytest.raises(StoreError, match=match):
        w.append(bad)
    w.abort()
    assert not list(tmp_path.iterdir())


def test_bad_writer_arguments(tmp_path):
    with pytest.raises(TypeError, match="stimulus set"):
        ActivationWriter(tmp_path / "a.nc", np.zeros(3))
    with pytest.raises(ValueError, match="float32"):
        ActivationWriter(tmp_path / "a.nc", _stimuli(), dtype="int8")
    with pytest.raises(StoreError, match="first batch holds no layers"):
        ActivationWriter(tmp_path / "b.nc", _stimuli()).append({})


def test_stimuli_without_features_round_trip(tmp_path):
    stimuli = xr.Dataset(coords={"stimulus": np.array(["x.png", "y.png"])},
                         attrs={"feature_names": []})
    with ActivationWriter(tmp_path / "a.nc", stimuli) as w:
        w.append({"fc": np.ones((2, 2))})
    tree = read_activations(tmp_path / "a.nc")
    assert tree.attrs["feature_names"] == []
    assert layer_activation(tree, "fc")["stimulus"].values.tolist() == ["x.png", "y.png"]


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_image_folder_ids_features_and_pixels(tmp_path):
    rng = np.random.default_rng(1)
    imgs = {f"{cls}/{i}.png": rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            for cls in ("house", "face") for i in range(2)}
    for rel, arr in imgs.items():
        _save(tmp_path / rel, arr)
    (tmp_path / "face" / "notes.txt").write_text("not an image")
    stimuli = image_folder_stimuli(tmp_path)
    ids = stimuli["stimulus"].values.tolist()
    assert ids == sorted(imgs)
    assert stimuli["feature_folder"].values.tolist() == [i.split("/")[0] for i in ids]
    assert stimuli.attrs["feature_names"] == ["folder"]
    pixels = read_images(tmp_path, ids[::-1])
    np.testing.assert_array_equal(pixels, np.stack([imgs[i] for i in ids[::-1]]))
    assert read_images(tmp_path, ids[:1], size=4).shape == (1, 4, 4, 3)


def test_image_folder_errors(tmp_path):
    with pytest.raises(StoreError, match="not a folder"):
        image_folder_stimuli(tmp_path / "missing")
    with pytest.raises(StoreError, match="holds no images"):
        image_folder_stimuli(tmp_path)
    _save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    _save(tmp_path / "b.png", np.zeros((5, 4), np.uint8))  # greyscale, another size
    (tmp_path / "c.png").write_bytes(b"\x89PNG broken")
    stimuli = image_folder_stimuli(tmp_path)
    assert stimuli.attrs["feature_names"] == []  # flat folder: no folder feature
    with pytest.raises(StoreError, match="different sizes"):
        read_images(tmp_path, ["a.png", "b.png"])
    assert read_images(tmp_path, ["a.png", "b.png"], size=3).shape == (2, 3, 3, 3)
    with pytest.raises(StoreError, match="cannot be decoded"):
        read_images(tmp_path, ["c.png"])
    with pytest.raises(StoreError, match="does not exist"):
        read_images(tmp_path, ["zz.png"])


def test_array_stimuli_are_memory_mapped(tmp_path):
    from rsa_bias.store.images import read_array_stimuli

    arr = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.save(tmp_path / "x.npy", arr)
    back = read_array_stimuli(tmp_path / "x.npy")
    assert isinstance(back, np.memmap)
    np.testing.assert_array_equal(back, arr)
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    with pytest.raises(StoreError, match="not a readable .npy"):
        read_array_stimuli(tmp_path / "bad.npy")
    with pytest.raises(StoreError, match="does not exist"):
        read_array_stimuli(tmp_path / "none.npy")


def test_deep_images_and_repeated_ids_are_refused(tmp_path):
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(
        tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    with pytest.raises(StoreError, match="more than 8 bits"):
        read_images(tmp_path, ["deep.png"])
    stimuli = _stimuli(4).assign_coords(stimulus=[1, 2, 2, 3])
    with pytest.raises(StoreError, match=r"ids repeat \(e.g. \[2\]\)"):
        ActivationWriter(tmp_path / "a.nc", stimuli)
    assert not (tmp_path / "a.nc").exists()


@pytest.mark.parametrize("chunks", [{"stimulus": -5}, {"stimulus": 0}, {"neuron": 5}])
def test_bad_chunks_are_refused(tmp_path, chunks):
    stimuli, layers = _stimuli(), _layers()
    _write_in_batches(tmp_path / "s.nc", stimuli, layers, 23)
    with pytest.raises(ValueError, match="positive sizes"):
        read_activations(tmp_path / "s.nc", chunks=chunks)


def test_image_folder_array_reads_blocks_on_slicing(tmp_path, monkeypatch):
    from rsa_bias.store import images
    from rsa_bias.store.images import ImageFolderArray

    rng = np.random.default_rng(2)
    for i in range(7):
        _save(tmp_path / f"{i}.png", rng.integers(0, 256, (5, 5, 3), dtype=np.uint8))
    ids = image_folder_stimuli(tmp_path)["stimulus"].values
    calls, want = [], images.read_images(tmp_path, ids, size=5)
    real = images._stacked
    monkeypatch.setattr(images, "_stacked",
                        lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    arr = ImageFolderArray(tmp_path, ids, size=5, block=4)
    got = np.concatenate([arr[s:s + 2] for s in range(0, 7, 2)])
    np.testing.assert_array_equal(got, want)
    assert calls == [4, 3] and arr.shape == (7, 5, 5, 3) and len(arr) == 7
    with pytest.raises(TypeError, match="contiguous slices"):
        arr[[0, 2]]
