"""Every public analysis function that returns labelled results records how they were computed,
through the one helper (``rsa_bias.provenance.result_attrs``)."""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pytest
import xarray as xr

import rsa_bias
from rsa_bias.brain import factorial_stimuli, simulate_population


def _functions(d):
    """Three random functions on a 16 x 16 grid, labelled by ``network``."""
    return xr.DataArray(d["rng"].normal(size=(3, 16, 16)), dims=("network", "y", "x"),
                        coords={"network": [10, 11, 12]})


def _spheres():
    """Searchlight spheres over the 8 units of ``x`` as a 2 x 2 x 2 mask."""
    return rsa_bias.searchlight_spheres(np.ones((2, 2, 2), bool), np.eye(4), radius_mm=1.5)


REQUIRED = ("function", "method", "config_json", "rsa_bias_version", "created", "git_sha")


@pytest.fixture(scope="module")
def data():
    stim = factorial_stimuli({"a": 2, "b": 2}, repeats=4)
    brain = simulate_population(stim, {"a": 0.5, "b": 0.2}, n_neurons=12, noise_ratio=0.3,
                                n_repeats=4, seed=0)
    model = simulate_population(stim, {"a": 0.7}, n_neurons=8, seed=1)
    x = model.response.rename(neuron="unit").assign_coords(
        split=("stimulus", np.where(np.arange(16) % 2, "val", "test")))
    y = brain.response.mean("repeat")
    rng = np.random.default_rng(0)
    rdms = xr.concat([rsa_bias.rdm(x), rsa_bias.rdm(y)], dim="model")
    subjects = xr.concat([rsa_bias.rdm(y + rng.normal(size=y.shape)) for _ in range(4)],
                         dim="subject")
    return {"stim": stim, "x": x, "y": y, "responses": brain.response, "rdms": rdms,
            "subjects": subjects, "rng": rng}


CALLS = {
    "rdm": lambda d: rsa_bias.rdm(d["x"]),
    "compare_rdms": lambda d: rsa_bias.compare_rdms(d["rdms"], d["subjects"]),
    "rdm_noise_ceiling": lambda d: rsa_bias.rdm_noise_ceiling(d["subjects"]),
    "blocked_rdm_comparison": lambda d: rsa_bias.blocked_rdm_comparison(d["x"], d["y"],
                                                                        block_size=5),
    "searchlight_rdms": lambda d: rsa_bias.searchlight_rdms(d["x"], spheres=_spheres()),
    "searchlight_rsa": lambda d: rsa_bias.searchlight_rsa(d["x"], d["rdms"], spheres=_spheres()),
    "evaluate_models": lambda d: rsa_bias.evaluate_models(d["rdms"], d["subjects"], n_boot=20),
    "permutation_test": lambda d: rsa_bias.permutation_test(d["rdms"], d["subjects"], n_perm=20),
    "pairwise_model_tests": lambda d: rsa_bias.pairwise_model_tests(
        rsa_bias.evaluate_models(d["rdms"], d["subjects"], n_boot=20)),
    "cka_matrix": lambda d: rsa_bias.cka_matrix({"x": d["x"], "y": d["y"]}),
    "cka_bootstrap": lambda d: rsa_bias.cka_bootstrap(d["x"], d["y"], n_boot=20),
    "alignment_score": lambda d: rsa_bias.alignment_score(d["x"], d["y"], cv=2, n_perm=3,
                                                          n_boot=3),
    "cka_permutation": lambda d: rsa_bias.cka_permutation(d["x"], d["y"], n_perm=20),
    "cross_validated_scores": lambda d: rsa_bias.cross_validated_scores(d["x"], d["responses"],
                                                                         cv=4),
    "response_noise_ceiling": lambda d: rsa_bias.response_noise_ceiling(d["responses"]),
    "streamed_ridge_scores": lambda d: rsa_bias.streamed_ridge_scores(d["x"], d["y"], cv=4),
    "feature_variance_explained": lambda d: rsa_bias.feature_variance_explained(d["x"]),
    "normalise_by_final": lambda d: rsa_bias.normalise_by_final(
        rsa_bias.feature_variance_explained(xr.concat([d["x"], 2 * d["x"]], dim="step"))),
    "pca_summary": lambda d: rsa_bias.pca_summary(d["x"]),
    "unit_tuning": lambda d: rsa_bias.unit_tuning(d["x"]),
    "feature_decomposition": lambda d: rsa_bias.feature_decomposition(d["x"]),
    "variance_shares": lambda d: rsa_bias.variance_shares(d["x"]),
    "remove_features": lambda d: rsa_bias.remove_features(d["x"], features=["a"]),
    "equalise_feature_variance": lambda d: rsa_bias.equalise_feature_variance(d["x"]),
    "attribute_cka": lambda d: rsa_bias.attribute_cka(d["x"], d["y"]),
    "attribute_rsa": lambda d: rsa_bias.attribute_rsa(d["x"], d["y"]),
    "attribute_encoding": lambda d: rsa_bias.attribute_encoding(d["x"], d["y"], cv=4),
    "compare_controlled": lambda d: rsa_bias.compare_controlled(d["x"], d["y"], cv=4),
    "feature_model_rdms": lambda d: rsa_bias.feature_model_rdms(d["stim"]),
    "rdm_variance_partition": lambda d: rsa_bias.rdm_variance_partition(
        rsa_bias.rdm(d["y"]), rsa_bias.feature_model_rdms(d["stim"])),
    "residualise_rdm": lambda d: rsa_bias.residualise_rdm(rsa_bias.rdm(d["y"]),
                                                          rsa_bias.feature_model_rdms(d["stim"])),
    "class_mean_direction": lambda d: rsa_bias.class_mean_direction(d["x"], feature="a"),
    "pcs_needed": lambda d: rsa_bias.pcs_needed(d["x"]),
    "readout_reliance": lambda d: rsa_bias.readout_reliance(d["x"], a="a", b="b"),
    "fourier_frequency": lambda d: rsa_bias.fourier_frequency(_functions(d)),
    "polynomial_order": lambda d: rsa_bias.polynomial_order(_functions(d), max_order=4),
    "lz_complexity": lambda d: rsa_bias.lz_complexity(_functions(d)),
}
#: Reshapes that keep their input's attrs rather than describing a computation.
RESHAPES = {"condensed", "squareform", "stack_runs"}


def test_every_labelled_result_is_listed():
    """A new public function returning an xarray object must join CALLS (or RESHAPES)."""
    labelled = set()
    for name in rsa_bias.__all__[1:]:
        obj = getattr(rsa_bias, name)
        if inspect.isfunction(obj):
            ret = str(inspect.signature(obj).return_annotation)
            if "xr." in ret or "xarray" in ret:
                labelled.add(name)
    assert labelled - RESHAPES <= set(CALLS), sorted(labelled - RESHAPES - set(CALLS))


@pytest.mark.parametrize("name", sorted(CALLS))
def test_result_records_how_it_was_computed(data, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alpha-grid and orthogonality notices on tiny data
        out = CALLS[name](data)
    attrs = out.attrs
    missing = [k for k in REQUIRED if k not in attrs]
    assert not missing, f"{name} result lacks {missing}"
    assert attrs["function"] == name
    config = json.loads(attrs["config_json"])
    assert config["function"] == name and config["method"] == attrs["method"]
    assert attrs["rsa_bias_version"] == rsa_bias.__version__
