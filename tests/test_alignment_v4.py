"""The unit-neuron alignment experiment: V4 against a tiny random CNN, and the simulated ground
truth. References: alignment_score called directly on the same activations (the package's own
in-memory path), and the ordering the construction guarantees (one-to-one features vs the same
features rotated)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn.exceptions import ConvergenceWarning

from rsa_bias.analysis import alignment_score
from rsa_bias.brain import load_v4
from rsa_bias.experiments import random_models
from rsa_bias.experiments.alignment_v4 import (
    alignment_ground_truth,
    alignment_table,
    alignment_vs_v4,
)
from rsa_bias.experiments.brain_scores import v4_responses
from rsa_bias.experiments.trifeature_cnn import all_layer_activations

KW = {"n_perm": 4, "n_boot": 3, "cv": 3, "image_size": 32}


@pytest.fixture(scope="module")
def v4():
    return load_v4().isel(stimulus=slice(0, 120), neuron=slice(0, 4))


@pytest.fixture(scope="module")
def acts(v4):
    return all_layer_activations(random_models({"relu": {}}), v4["image"], layers=["conv_0"],
                                 image_size=32)


@pytest.fixture(scope="module")
def result(v4, acts):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the tiny run converges
        return alignment_vs_v4({}, v4, activations=acts, **KW)


def test_documented_dims_and_the_direct_score(v4, acts, result):
    assert result.score.dims == ("model", "layer")
    assert result.neuron_score.dims == ("model", "layer", "neuron")
    assert result.model.values.tolist() == ["relu"] and result.layer.values.tolist() == ["conv_0"]
    assert int(result.n_unconverged.item()) == 0
    y = v4_responses(v4).mean("repeat")
    ref = alignment_score(acts["relu", "conv_0"], y, n_perm=4, n_boot=3, cv=3)
    for v in ("score", "ci_low", "ci_high", "p_value"):
        assert float(result[v].item()) == pytest.approx(float(ref[v]), abs=1e-9)
    np.testing.assert_allclose(result.alpha.values[0, 0], ref.alpha.values)
    assert result.attrs["function"] == "alignment_vs_v4" and result.attrs["n_perm"] == 4


def test_forward_passes_give_the_same_result(v4, result):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        again = alignment_vs_v4(random_models({"relu": {}}), v4, layers=["conv_0"], **KW)
    xr.testing.assert_identical(again.drop_attrs(), result.drop_attrs())


def test_another_seed_draws_other_resamples(v4, acts, result):
    other = alignment_vs_v4({}, v4, activations=acts, **{**KW, "seed": 1})
    assert float(other.ci_low.item()) != float(result.ci_low.item())


def test_missing_images_are_refused(v4, acts):
    short = {k: a.isel(stimulus=slice(0, 100)) for k, a in acts.items()}
    with pytest.raises(ValueError, match="lack activations"):
        alignment_vs_v4({}, v4, activations=short, **KW)
    with pytest.raises(ValueError, match="n_jobs"):
        alignment_vs_v4({}, v4, activations=acts, n_jobs=0, **KW)


@pytest.fixture(scope="module")
def truth():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return alignment_ground_truth(layers=["conv_0"], n_per_cell=20, n_per_feature=3,
                                      n_perm=5, n_boot=3, cv=3)


def test_ground_truth_rows_order_as_constructed(truth):
    s = truth.score.to_series()
    assert s.index.tolist() == ["generating features", "rotated features",
                                "random kaiming relu conv_0"]
    assert s["generating features"] > 0.8
    assert s["generating features"] > s["rotated features"] + 0.3
    assert float(truth.p_value.sel(row="generating features")) == pytest.approx(1 / 6)
    assert truth.n_units.sel(row="generating features") == 3
    assert int(truth.n_unconverged.sum()) == 0


def test_table_lists_v4_then_simulated_rows(result, truth):
    table = alignment_table(result, truth)
    assert table["neurons"].tolist() == ["V4"] + ["simulated"] * 3
    assert table["units"].iloc[0] == "relu conv_0"
    assert table["score"].iloc[1] == pytest.approx(float(truth.score[0]))
