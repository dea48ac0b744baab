"""An image folder read by threads, the next block read ahead: the same pixels as one thread,
errors raised when their block is needed, threads stopped by close()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rsa_bias.experiments.extraction import extract_to_file
from rsa_bias.store import images as images_module
from rsa_bias.store import layer_activation, read_activations
from rsa_bias.store.images import ImageFolderArray
from rsa_bias.store.schema import StoreError

RNG = np.random.default_rng(3)


@pytest.fixture()
def folder(tmp_path):
    for i in range(23):  # mixed sizes: the crop and the resize both work per image
        h, w = RNG.integers(20, 40, 2)
        Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            tmp_path / f"{i:02d}.png")
    return tmp_path


def _ids(n=23):
    return [f"{i:02d}.png" for i in range(n)]


def test_threads_and_read_ahead_give_the_pixels_of_one_thread(folder):
    slices = [(0, 5), (5, 15), (0, 3), (3, 9), (9, 10), (10, 23), (2, 5), (20, 23), (0, 23),
              (7, 8)]  # (5, 15): larger than the block read ahead, read anew
    one = ImageFolderArray(folder, _ids(), size=16, block=5, prep="imagenet", workers=0)
    want = [one[a:b] for a, b in slices]
    with ImageFolderArray(folder, _ids(), size=16, block=5, prep="imagenet",
                          workers=3) as many:
        for (a, b), w in zip(slices, want, strict=True):
            np.testing.assert_array_equal(many[a:b], w)
    assert many._pool is None and many._next is None  # close() stopped the threads


def test_the_next_block_is_read_ahead(folder, monkeypatch):
    calls = []
    real = images_module._stacked
    monkeypatch.setattr(images_module, "_stacked",
                        lambda f, ids, *a: calls.append(list(ids)) or real(f, ids, *a))
    arr = ImageFolderArray(folder, _ids(), size=8, block=6, workers=2)
    arr[0:2]
    arr._next[2].result()  # the read ahead of the next block, in its thread
    assert calls == [_ids()[0:6], _ids()[6:12]]
    arr[6:8]  # served by the read ahead, which then starts on the block after
    arr._next[2].result()
    assert calls[2:] == [_ids()[12:18]] and len(calls) == 3
    arr.close()
    serial = ImageFolderArray(folder, _ids(), size=8, block=6, workers=0)
    calls.clear()
    serial[0:2]
    assert calls == [_ids()[0:6]] and serial._next is None  # workers=0: nothing ahead


def test_an_error_in_a_block_read_ahead_is_raised_when_that_block_is_read(folder):
    (folder / "07.png").write_bytes(b"not an image")
    arr = ImageFolderArray(folder, _ids(), size=8, block=5, workers=2)
    arr[0:5]  # the read ahead of 5:10 fails in its thread, silently until needed
    with pytest.raises(StoreError, match=r"07.png cannot be decoded"):
        arr[5:6]
    arr.close()
    with pytest.raises(ValueError, match="workers must be >= 0"):
        ImageFolderArray(folder, _ids(), size=8, workers=-1)


def test_extraction_is_the_same_with_any_number_of_readers(folder, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    got = []
    for workers in (0, 1, 3):
        path = extract_to_file(model, folder, tmp_path / f"w{workers}.nc", layers=["1"],
                               image_size=12, image_prep="imagenet", read_batch=4,
                               read_workers=workers, batch_size=3)
        got.append(layer_activation(read_activations(path), "1").values)
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_array_equal(got[0], got[2])


def _slow_reads(monkeypatch, events):
    import time

    real = images_module._stacked

    def slow(f, ids, *a):
        events.append(("start", ids[0]))
        time.sleep(0.2)
        try:
            return real(f, ids, *a)
        finally:
            events.append(("end", ids[0]))
    monkeypatch.setattr(images_module, "_stacked", slow)


def test_a_read_ahead_not_wanted_ends_before_the_next_read(folder, monkeypatch):
    """At most two blocks are held: a jump elsewhere waits for the read ahead in flight."""
    events = []
    _slow_reads(monkeypatch, events)
    arr = ImageFolderArray(folder, _ids(), size=8, block=6, workers=2)
    arr[0:2]  # reads 00..05, then 06..11 ahead, still in flight
    arr[18:20]  # not the block read ahead
    assert events.index(("end", "06.png")) < events.index(("start", "18.png"))
    arr.close()


def test_close_during_a_read_ahead_ends_every_thread(folder, monkeypatch):
    import threading

    _slow_reads(monkeypatch, [])
    arr = ImageFolderArray(folder, _ids(), size=8, block=6, workers=2)
    arr[0:2]
    assert any(t.name.startswith("rsa_bias-") for t in threading.enumerate())
    arr.close()  # while 06..11 is being read ahead
    assert not [t.name for t in threading.enumerate() if t.name.startswith("rsa_bias-")]
