"""Conversion to and from rsatoolbox objects keeps values, stimulus ids and descriptors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bias.analysis.rsa.compare import compare_rdms
from rsa_bias.analysis.rsa.rdms import rdm
from rsa_bias.interop import (
    COMPARE_METHOD_NAMES,
    RDM_METHOD_NAMES,
    from_rsatoolbox_dataset,
    from_rsatoolbox_rdms,
    to_rsatoolbox_dataset,
    to_rsatoolbox_rdms,
)

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.rdm import calc_rdm  # noqa: E402
from rsatoolbox.rdm import compare as rt_compare  # noqa: E402


@pytest.fixture
def runs_patterns() -> xr.DataArray:
    rng = np.random.default_rng(0)
    ids = np.array(["dog", "cat", "car", "cup", "owl"])
    return xr.DataArray(rng.normal(size=(3, 5, 7)), dims=("run", "stimulus", "voxel"),
                        coords={"run": [10, 20, 30], "stimulus": ids,
                                "animate": ("stimulus", [1, 1, 0, 0, 1]),
                                "voxel": np.arange(100, 107)})


def test_dataset_round_trip_with_runs(runs_patterns: xr.DataArray) -> None:
    ds = to_rsatoolbox_dataset(runs_patterns)
    assert ds.measurements.shape == (15, 7)
    np.testing.assert_array_equal(ds.obs_descriptors["run"], np.repeat([10, 20, 30], 5))
    np.testing.assert_array_equal(ds.obs_descriptors["stimulus"][:5], runs_patterns.stimulus)
    back = from_rsatoolbox_dataset(ds)
    xr.testing.assert_identical(back.transpose(*runs_patterns.dims), runs_patterns)


def test_dataset_round_trip_without_runs(runs_patterns: xr.DataArray) -> None:
    single = runs_patterns.isel(run=0, drop=True)
    back = from_rsatoolbox_dataset(to_rsatoolbox_dataset(single))
    xr.testing.assert_identical(back, single)


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_rdm_through_rsatoolbox_dataset_matches(runs_patterns: xr.DataArray) -> None:
    ds = to_rsatoolbox_dataset(runs_patterns)
    for ours_name, theirs in RDM_METHOD_NAMES.items():
        noise = np.eye(7) if ours_name == "mahalanobis" else None
        theirs_rdm = calc_rdm(ds, method=theirs, descriptor="stimulus", cv_descriptor="run",
                              noise=noise)
        ours = rdm(runs_patterns, method=ours_name, noise=noise)
        back = from_rsatoolbox_rdms(theirs_rdm).sel(stimulus_i=ours.stimulus_i,
                                                     stimulus_j=ours.stimulus_j)
        np.testing.assert_allclose(back.values, ours.values, atol=1e-10, err_msg=ours_name)


def test_rdms_round_trip_single_and_stack(runs_patterns: xr.DataArray) -> None:
    one = rdm(runs_patterns)
    converted = to_rsatoolbox_rdms(one)
    assert converted.n_rdm == 1 and list(converted.pattern_descriptors["stimulus"]) == list(
        one.stimulus_i.values)
    np.testing.assert_array_equal(converted.pattern_descriptors["animate"], [1, 1, 0, 0, 1])
    back = from_rsatoolbox_rdms(converted)
    xr.testing.assert_allclose(back, one)
    assert back.dims == one.dims and back.attrs["method"] == "correlation"
    stack = xr.concat([one, 2 * one], dim="subject").assign_coords(subject=["s1", "s2"])
    stack_back = from_rsatoolbox_rdms(to_rsatoolbox_rdms(stack))
    assert stack_back.dims == ("subject", "stimulus_i", "stimulus_j")
    np.testing.assert_array_equal(stack_back.subject.values, ["s1", "s2"])
    np.testing.assert_allclose(stack_back.values, stack.values)


def test_comparisons_agree_through_conversion(runs_patterns: xr.DataArray) -> None:
    a = xr.concat([rdm(runs_patterns.isel(run=k)) for k in range(3)], dim="run")
    b = rdm(runs_patterns, method="sqeuclidean")
    for ours_name, theirs in COMPARE_METHOD_NAMES.items():
        expected = rt_compare(to_rsatoolbox_rdms(a), to_rsatoolbox_rdms(b), method=theirs)
        np.testing.assert_allclose(compare_rdms(a, b, method=ours_name).values, expected[:, 0],
                                   atol=1e-10, err_msg=ours_name)


def test_unlabelled_rsatoolbox_rdms_get_default_labels() -> None:
    vectors = np.random.default_rng(1).random((3, 6))
    out = from_rsatoolbox_rdms(rsatoolbox.rdm.RDMs(vectors))
    assert out.dims == ("rdm", "stimulus_i", "stimulus_j")
    np.testing.assert_array_equal(out.stimulus_i.values, np.arange(4))
    with pytest.raises(ValueError, match="leading dims"):
        to_rsatoolbox_rdms(out.expand_dims(seed=2))
