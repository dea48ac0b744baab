"""The V4 loader against independent numpy computations on the raw .npy / zip files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from realdata import copy_files

from rsa_bias.brain import load_v4

RAW = Path(__file__).resolve().parents[1] / "data" / "v4_cowley2023"
FILES = ("responses_raw_210325.npy", "responses_repeat_averaged_210325.npy",
         "images_210325.zip")


@pytest.fixture(scope="module")
def ds():
    return load_v4()


@pytest.fixture(scope="module")
def raw():
    return np.load(RAW / FILES[0])


def test_shapes_and_values(ds, raw):
    assert ds["response"].dims == ("neuron", "stimulus", "repeat")
    assert ds["response"].shape == (50, 640, 10)
    assert ds["response_mean"].dims == ("neuron", "stimulus")
    assert ds["image"].dims == ("stimulus", "y", "x", "channel")
    assert ds["image"].shape == (640, 112, 112, 3) and ds["image"].dtype == np.uint8
    np.testing.assert_array_equal(np.isnan(ds["response"].values), np.isnan(raw))
    np.testing.assert_array_equal(ds["response"].values, raw)  # NaNs compare equal here
    np.testing.assert_array_equal(ds["response_mean"].values, np.load(RAW / FILES[1]))
    n = (~np.isnan(raw[0])).sum(axis=1)
    np.testing.assert_array_equal(ds["n_repeats"].values, n)
    assert n.min() == 6 and n.max() == 10 and np.median(n) == 8


def test_stimulus_ids_match_image_files(ds):
    assert ds["stimulus"].values[0] == "image0001" and ds["stimulus"].values[-1] == "image0640"
    with zipfile.ZipFile(RAW / FILES[2]) as zf:
        names = sorted(zf.namelist())
        assert [f"{s}.jpg" for s in ds["stimulus"].values] == names
        for sid in ("image0001", "image0333", "image0640"):
            img = np.asarray(Image.open(io.BytesIO(zf.read(f"{sid}.jpg"))).convert("RGB"))
            np.testing.assert_array_equal(ds["image"].sel(stimulus=sid).values, img)
    np.testing.assert_array_equal(ds["image_file"].values,
                                  [f"{s}.jpg" for s in ds["stimulus"].values])


def _split_half_numpy(raw: np.ndarray) -> float:
    """Median over neurons of Pearson r (across images) between odd- and even-repeat means."""
    odd = np.nanmean(raw[:, :, 0::2], axis=2)
    even = np.nanmean(raw[:, :, 1::2], axis=2)
    rs = [np.corrcoef(o, e)[0, 1] for o, e in zip(odd, even, strict=True)]
    return float(np.median(rs))


def test_split_half_reliability(ds, raw):
    resp = ds["response"]
    odd = resp.isel(repeat=slice(0, None, 2)).mean("repeat", skipna=True)
    even = resp.isel(repeat=slice(1, None, 2)).mean("repeat", skipna=True)
    r = [np.corrcoef(odd.sel(neuron=k), even.sel(neuron=k))[0, 1] for k in ds["neuron"].values]
    ours = float(np.median(r))
    assert ours == pytest.approx(_split_half_numpy(raw), abs=1e-12)
    assert ours > 0.3


def _copy(tmp_path: Path, skip: str | None = None) -> Path:
    return copy_files(RAW, FILES, tmp_path, skip)


def test_missing_file_named(tmp_path):
    folder = _copy(tmp_path, skip=FILES[2])
    with pytest.raises(FileNotFoundError, match="images_210325.zip"):
        load_v4(folder)
    assert load_v4(folder, images=False)["response"].shape == (50, 640, 10)


def test_corrupt_files_are_clear_errors(tmp_path):
    folder = _copy(tmp_path)
    (folder / FILES[2]).write_bytes(b"PK garbage" * 50)
    with pytest.raises(ValueError, match="zip"):
        load_v4(folder)
    (folder / FILES[0]).write_bytes(b"\x93NUMPY broken")
    with pytest.raises(ValueError, match="responses_raw_210325.npy"):
        load_v4(folder, images=False)


def test_mismatched_average_refused(tmp_path):
    folder = _copy(tmp_path)
    avg = np.load(RAW / FILES[1])
    avg[3, 5] += 1.0
    (folder / FILES[1]).unlink()
    np.save(folder / FILES[1], avg)
    with pytest.raises(ValueError, match="disagrees"):
        load_v4(folder, images=False)
