"""dataset_from_arrays / dataset_from_csv: labelled round trips and every error message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rsa_bias.analysis import rdm
from rsa_bias.brain import dataset_from_arrays, dataset_from_csv


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"image": [f"img{i:02d}" for i in range(6)],
                       "category": ["face", "face", "house", "house", "cat", "cat"],
                       "size": [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]})
    for n in range(4):
        df[f"n{n}"] = rng.normal(size=6)
    path = tmp_path / "responses.csv"
    df.to_csv(path, index=False)
    return path, df


def test_arrays_labelled_like_the_design(tmp_path):
    x = np.arange(12.0).reshape(3, 4)
    ds = dataset_from_arrays(x, stimulus_ids=["a", "b", "c"],
                             features={"animate": [1, 0, 0], "size": [0.1, 0.2, 0.3]})
    assert ds["response"].dims == ("stimulus", "neuron")
    np.testing.assert_array_equal(ds["response"].values, x)
    assert list(ds["stimulus"].values) == ["a", "b", "c"]
    assert ds.attrs["feature_names"] == ["animate", "size"]
    np.testing.assert_array_equal(ds["feature_animate"].values, [1, 0, 0])
    assert ds["feature_size"].dims == ("stimulus",)
    ds.to_netcdf(tmp_path / "x.nc", engine="netcdf4")
    with xr.open_dataset(tmp_path / "x.nc", engine="netcdf4") as back:
        xr.testing.assert_identical(back.load(), ds)
        assert list(back.attrs["feature_names"]) == ["animate", "size"]


def test_arrays_with_repeats_and_nan():
    x = np.ones((3, 2, 4))
    x[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf for 1 stimuli \(ids \[11\]\).*allow_nan"):
        dataset_from_arrays(x, stimulus_ids=[10, 11, 12], dims=("stimulus", "voxel", "repeat"))
    ds = dataset_from_arrays(x, stimulus_ids=[10, 11, 12], dims=("stimulus", "voxel", "repeat"),
                             allow_nan=True, name="bold")
    assert ds["bold"].dims == ("stimulus", "voxel", "repeat")
    assert np.isnan(ds["bold"].sel(stimulus=11, voxel=0, repeat=3))
    moved = dataset_from_arrays(np.ones((2, 3)), stimulus_ids=["p", "q", "r"],
                                dims=("neuron", "stimulus"))
    assert moved["response"].dims == ("neuron", "stimulus")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"stimulus_ids": ["a", "b"]}, r"2 stimulus ids for 3 stimuli"),
    ({"stimulus_ids": ["a", "b", "a"]}, r"1 stimulus id\(s\) repeat, e.g. \['a'\]"),
    ({"stimulus_ids": [1, 2, 3], "dims": ("image", "neuron")}, r"include 'stimulus'"),
    ({"stimulus_ids": [1, 2, 3], "dims": ("stimulus",)}, r"shape \(3, 4\) \(2 axes\)"),
    ({"stimulus_ids": [1, 2, 3], "features": {"f": [1, 2]}},
     r"feature 'f' has 2 values for 3 stimuli"),
])
def test_array_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        dataset_from_arrays(np.zeros((3, 4)), **kwargs)


def test_non_numeric_array_refused():
    with pytest.raises(ValueError, match="dtype <U1; expected numbers"):
        dataset_from_arrays(np.array([["a", "b"], ["c", "d"]]), stimulus_ids=[0, 1])


def test_csv_round_trip(table):
    path, df = table
    ds = dataset_from_csv(path, stimulus_column="image", feature_columns=["category", "size"],
                          unit_dim="electrode")
    assert ds["response"].dims == ("stimulus", "electrode")
    assert list(ds["electrode"].values) == ["n0", "n1", "n2", "n3"]
    np.testing.assert_array_equal(ds["response"].values, df[["n0", "n1", "n2", "n3"]].values)
    np.testing.assert_array_equal(ds["stimulus"].values, df["image"].values)
    np.testing.assert_array_equal(ds["feature_category"].values, df["category"].values)
    assert ds.attrs["feature_names"] == ["category", "size"]
    assert ds.attrs["source"] == str(path)
    # plugs straight into the analyses: correlation RDM = 1 - Pearson r between stimuli
    d = rdm(ds["response"], method="correlation")
    np.testing.assert_allclose(d.values, 1 - np.corrcoef(df[["n0", "n1", "n2", "n3"]].values),
                               atol=1e-12)
    assert list(d["feature_category_i"].values) == list(df["category"])
    sub = dataset_from_csv(path, stimulus_column="image", response_columns=["n2", "n0"])
    np.testing.assert_array_equal(sub["response"].values, df[["n2", "n0"]].values)
    assert sub.attrs["feature_names"] == []


def test_csv_ids_keep_their_text(tmp_path):
    """Ids written with leading zeros stay text ("003" is not the integer 3, which would
    match another table's stimulus 3); plain integer ids stay integers."""
    path = tmp_path / "r.csv"
    path.write_text("image,n0\n003,0.5\n010,0.25\n7,1.0\n")
    ds = dataset_from_csv(path, stimulus_column="image")
    assert ds["stimulus"].values.tolist() == ["003", "010", "7"]
    np.testing.assert_array_equal(ds["response"].values[:, 0], [0.5, 0.25, 1.0])
    path.write_text("image,n0\n3,0.5\n 10 ,0.25\n-7,1.0\n")
    ds = dataset_from_csv(path, stimulus_column="image")
    assert ds["stimulus"].values.tolist() == [3, 10, -7]
    assert np.issubdtype(ds["stimulus"].dtype, np.integer)
    # too large for 64 bits, or "-0" next to "0": text, not an overflow or a merged id
    path.write_text("image,n0\n99999999999999999999,0.5\n2,0.25\n")
    assert dataset_from_csv(path, stimulus_column="image")["stimulus"].values.tolist() == [
        "99999999999999999999", "2"]
    path.write_text("image,n0\n-0,0.5\n0,0.25\n")
    assert dataset_from_csv(path, stimulus_column="image")["stimulus"].values.tolist() == [
        "-0", "0"]


def test_tsv_is_read_with_tabs(table, tmp_path):
    _, df = table
    df.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    ds = dataset_from_csv(tmp_path / "r.tsv", stimulus_column="image",
                          feature_columns=["category", "size"])
    assert ds.sizes["neuron"] == 4


def test_csv_errors(table, tmp_path):
    path, df = table
    with pytest.raises(ValueError, match=r"column\(s\) \['stim', 'colour'\] not found"):
        dataset_from_csv(path, stimulus_column="stim", feature_columns=["colour"])
    with pytest.raises(ValueError, match=r"response column\(s\) \['category'\] are not numeric"):
        dataset_from_csv(path, stimulus_column="image")          # category left as a unit
    bad = df.copy()
    bad.loc[4, "n2"] = np.nan
    bad.to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(ValueError, match=r"in column\(s\) \['n2'\] for 1 stimuli .*'img04'"):
        dataset_from_csv(tmp_path / "nan.csv", stimulus_column="image",
                         feature_columns=["category", "size"])
    kept = dataset_from_csv(tmp_path / "nan.csv", stimulus_column="image",
                            feature_columns=["category", "size"], allow_nan=True)
    assert np.isnan(kept["response"].sel(stimulus="img04", neuron="n2"))
    dup = df.copy()
    dup.loc[5, "image"] = "img00"
    dup.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ValueError, match=r"repeat, e.g. \['img00'\]"):
        dataset_from_csv(tmp_path / "dup.csv", stimulus_column="image",
                         feature_columns=["category"])
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        dataset_from_csv(tmp_path / "nowhere.csv", stimulus_column="image")


def test_labelled_features_are_matched_by_stimulus_id():
    x = np.arange(6.0).reshape(3, 2)
    table = pd.DataFrame({"animate": [1, 0, 0], "size": [0.1, 0.2, 0.3]}, index=list("abc"))
    shuffled = table.loc[["c", "a", "b"]]
    ds = dataset_from_arrays(x, stimulus_ids=["a", "b", "c"], features=shuffled)
    np.testing.assert_array_equal(ds["feature_animate"].values, [1, 0, 0])
    np.testing.assert_array_equal(ds["feature_size"].values, [0.1, 0.2, 0.3])
    series = table["animate"].loc[["b", "c", "a"]]
    ds = dataset_from_arrays(x, stimulus_ids=["a", "b", "c"], features={"animate": series})
    np.testing.assert_array_equal(ds["feature_animate"].values, [1, 0, 0])
    # a larger feature table is fine: the stimuli's rows are picked out
    ds = dataset_from_arrays(x[:2], stimulus_ids=["c", "a"], features=table)
    np.testing.assert_array_equal(ds["feature_animate"].values, [0, 1])
    # the default 0..n-1 index (and plain arrays) mean stimulus order
    ds = dataset_from_arrays(x, stimulus_ids=["z", "y", "x"], features=table.reset_index())
    np.testing.assert_array_equal(ds["feature_animate"].values, [1, 0, 0])
    with pytest.raises(ValueError, match=r"feature 'animate' .* lacks 1 stimulus id\(s\), "
                                         r"e\.g\. \['d'\].*reset_index"):
        dataset_from_arrays(x, stimulus_ids=["a", "b", "d"], features=table)
    with pytest.raises(ValueError, match=r"repeated labels \(e\.g\. \['a'\]\)"):
        dataset_from_arrays(x, stimulus_ids=["a", "b", "c"],
                            features={"f": pd.Series([1, 2, 3], index=list("aab"))})


@pytest.mark.parametrize(("ids", "message"), [
    ([1.0, np.nan, 2.0], r"1 stimulus id\(s\) are empty or NaN \(at position\(s\) \[1\]\)"),
    (["a", None, "c"], r"empty or NaN \(at position\(s\) \[1\]\)"),
    (["a", "b", " "], r"empty or NaN \(at position\(s\) \[2\]\)"),
    (["a", 1, "1"], r"stimulus ids mix types: 'a' \(str\), 1 \(number\)"),
])
def test_bad_stimulus_ids_are_refused(ids, message):
    with pytest.raises(ValueError, match=message):
        dataset_from_arrays(np.zeros((3, 2)), stimulus_ids=ids)


def test_feature_nan_is_refused_unless_allowed(table, tmp_path):
    with pytest.raises(ValueError, match=r"feature 'x' is missing \(NaN\) for 1 stimuli "
                                         r"\(ids \['b'\]\).*allow_nan=True"):
        dataset_from_arrays(np.zeros((3, 2)), stimulus_ids=["a", "b", "c"],
                            features={"x": [1, np.nan, 2]})
    _, df = table
    df = df.copy()
    df.loc[2, "category"] = np.nan
    df.to_csv(tmp_path / "f.csv", index=False)
    with pytest.raises(ValueError, match=r"feature 'category' is missing .*'img02'"):
        dataset_from_csv(tmp_path / "f.csv", stimulus_column="image",
                         feature_columns=["category", "size"])
    ds = dataset_from_csv(tmp_path / "f.csv", stimulus_column="image",
                          feature_columns=["category", "size"], allow_nan=True)
    assert pd.isna(ds["feature_category"].sel(stimulus="img02").item())


def test_csv_ids_and_response_columns_are_checked(table, tmp_path):
    path, df = table
    blank = df.copy()
    blank.loc[3, "image"] = None
    blank.to_csv(tmp_path / "blank.csv", index=False)
    with pytest.raises(ValueError, match=r"1 stimulus id\(s\) are empty or NaN \(at "
                                         r"position\(s\) \[3\]\)"):
        dataset_from_csv(tmp_path / "blank.csv", stimulus_column="image",
                         feature_columns=["category", "size"])
    numbered = df.assign(image=np.arange(6))
    numbered.to_csv(tmp_path / "numbered.csv", index=False)
    with pytest.raises(ValueError, match="response_columns include the stimulus column 'image'"):
        dataset_from_csv(tmp_path / "numbered.csv", stimulus_column="image",
                         response_columns=["image", "n0"])
    with pytest.raises(ValueError, match=r"response_columns repeat \['n1'\]"):
        dataset_from_csv(path, stimulus_column="image", response_columns=["n1", "n0", "n1"])
