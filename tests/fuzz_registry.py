"""The registry of the fuzz suite: every public analysis function that takes labelled data,
with how to call it on small labelled inputs.

A :class:`Case` names the labelled inputs a call takes (built fresh by :func:`inputs`) and
the call itself. ``tests/test_fuzz.py`` permutes, mislabels and corrupts those inputs.
Every name of ``rsa_bias.analysis.public_names()`` is either a case here or listed in
:data:`EXEMPT` with the reason; the suite fails on a public function that is neither, so new
functions join the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

import rsa_bias.analysis as an
from rsa_bias import interop
from rsa_bias.brain.simulated import factorial_stimuli, simulate_population

#: Stimulus-like dims of results; they are sorted by id before results are compared.
STIMULUS_DIMS = ("stimulus", "stimulus_i", "stimulus_j")


def inputs() -> dict[str, object]:
    """Small labelled inputs: 24 factorial stimuli (features a, b, c), two representations
    and responses with repeats, their RDMs and stacks of RDMs. Ids are shuffled integers,
    so that an implementation by position and one by id differ."""
    stim = factorial_stimuli({"a": 2, "b": 2, "c": 3}, repeats=2)
    rng = np.random.default_rng(7)
    ids = rng.permutation(100)[: stim.sizes["stimulus"]] + 1000
    stim = stim.assign_coords(stimulus=ids)
    pop = simulate_population(stim, {"a": 0.5, "b": 0.2, "c": 0.1}, n_neurons=12,
                              noise_ratio=0.3, n_repeats=3, seed=1)
    feats = {f"feature_{k}": stim[f"feature_{k}"] for k in "abc"}
    split = np.where(stim["exemplar"].values == 0, "val", "test")
    act = xr.DataArray(np.tanh(pop["signal"].values @ rng.normal(size=(12, 9)))
                       + 0.3 * rng.normal(size=(24, 9)), dims=("stimulus", "unit"),
                       coords={"stimulus": ids, **feats, "split": ("stimulus", split)},
                       attrs={"feature_names": ["a", "b", "c"]})
    resp_rep = pop["response"].rename(neuron="neuron")
    resp = resp_rep.mean("repeat")
    models = xr.concat([an.rdm(act, method=m) for m in ("correlation", "euclidean")],
                       dim="model").assign_coords(model=["corr", "eucl"])
    data = xr.concat([an.rdm(resp_rep.isel(repeat=r), method="correlation")
                      for r in range(3)], dim="subject").assign_coords(subject=[0, 1, 2])
    long = xr.concat([resp_rep.isel(repeat=r) for r in range(3)], dim="stimulus")
    return {"stimuli": stim, "act": act, "resp": resp, "resp_rep": resp_rep,
            "rdm_a": an.rdm(act), "rdm_b": an.rdm(resp), "models": models, "data": data,
            "long": long, "runs": np.repeat(np.arange(3), 24),
            "feature_rdms": an.feature_model_rdms(stim)}


@dataclass(frozen=True)
class Case:
    """One public function: the labelled inputs it takes and how to call it."""

    call: Callable[..., object]
    labelled: tuple[str, ...]          # inputs (keys of inputs()) that are labelled data
    fixed: tuple[str, ...] = ()        # other inputs it needs, passed unchanged
    seeded: bool = False               # results drawn with a seed (intervals, nulls, folds)
    nan_ok: tuple[str, ...] = ()       # inputs where NaN is a missing value, kept by design


def _spheres():
    """Searchlight spheres over the 9 units of ``act`` as a 3 x 3 x 1 mask."""
    return an.searchlight_spheres(np.ones((3, 3, 1), bool), np.eye(4), radius_mm=1.5)


def _fit_score(act, resp):
    enc = an.RidgeEncoder(alphas=np.logspace(-2, 4, 7)).fit(act, resp)
    return {"score": enc.score(act, resp), "pred": enc.predict(act), "alpha": enc.alpha_}


CASES: dict[str, Case] = {
    "rdm": Case(lambda act: an.rdm(act, method="euclidean"), ("act",)),
    "rdm[correlation]": Case(lambda act: an.rdm(act), ("act",)),
    "rdm[crossnobis]": Case(lambda long, runs: an.rdm(long, method="crossnobis", runs=runs),
                            ("long",), ("runs",)),
    "condensed": Case(lambda rdm_a: an.condensed(rdm_a), ("rdm_a",), nan_ok=("rdm_a",)),
    "squareform": Case(lambda rdm_a: an.squareform(an.condensed(rdm_a)), ("rdm_a",),
                       nan_ok=("rdm_a",)),
    "noise_precision": Case(lambda act: an.noise_precision(act - act.mean("stimulus")),
                            ("act",)),
    "stack_runs": Case(lambda long, runs: an.stack_runs(long, runs=runs), ("long",), ("runs",)),
    "compare_rdms": Case(lambda rdm_a, rdm_b: an.compare_rdms(rdm_a, rdm_b),
                         ("rdm_a", "rdm_b"), nan_ok=("rdm_a", "rdm_b")),
    "rdm_noise_ceiling": Case(lambda data: an.rdm_noise_ceiling(data), ("data",)),
    "blocked_rdm_comparison": Case(lambda act, resp: an.blocked_rdm_comparison(
        act, resp, block_size=7), ("act", "resp")),
    "searchlight_rdms": Case(lambda act: an.searchlight_rdms(act, spheres=_spheres()), ("act",)),
    "searchlight_rsa": Case(lambda act, models: an.searchlight_rsa(
        act, models, spheres=_spheres(), chunk_size=4), ("act", "models"), nan_ok=("models",)),
    "evaluate_models": Case(lambda models, data: an.evaluate_models(models, data, n_boot=40),
                            ("models", "data"), seeded=True),
    "permutation_test": Case(lambda models, data: an.permutation_test(models, data, n_perm=40),
                             ("models", "data"), seeded=True),
    "pairwise_model_tests": Case(lambda models, data: an.pairwise_model_tests(
        an.evaluate_models(models, data, n_boot=40)), ("models", "data"), seeded=True),
    "cka": Case(lambda act, resp: an.cka(act, resp), ("act", "resp")),
    "cka[rbf]": Case(lambda act, resp: an.cka(act, resp, kernel="rbf"), ("act", "resp")),
    "hsic": Case(lambda act, resp: an.hsic(act, resp), ("act", "resp")),
    "minibatch_cka": Case(lambda act, resp: an.minibatch_cka(act, resp, batch_size=8, seed=0),
                          ("act", "resp"), seeded=True),
    "cka_matrix": Case(lambda act, resp: an.cka_matrix({"act": act}, {"resp": resp}),
                       ("act", "resp")),
    "cka_bootstrap": Case(lambda act, resp: an.cka_bootstrap(act, resp, n_boot=40),
                          ("act", "resp"), seeded=True),
    "cka_permutation": Case(lambda act, resp: an.cka_permutation(act, resp, n_perm=40),
                            ("act", "resp"), seeded=True),
    "procrustes_distance": Case(lambda act, resp: an.procrustes_distance(act, resp),
                                ("act", "resp")),
    "canonical_correlations": Case(lambda act, resp: an.canonical_correlations(act, resp),
                                   ("act", "resp")),
    "cca_similarity": Case(lambda act, resp: an.cca_similarity(act, resp), ("act", "resp")),
    "svcca": Case(lambda act, resp: an.svcca(act, resp), ("act", "resp")),
    "alignment_score": Case(lambda act, resp: an.alignment_score(act, resp, cv=2, n_perm=3,
                                                                 n_boot=3),
                            ("act", "resp"), seeded=True),
    "RidgeEncoder": Case(_fit_score, ("act", "resp")),
    "cross_validated_scores": Case(lambda act, resp_rep: an.cross_validated_scores(
        act, resp_rep, cv=3, n_splits=5), ("act", "resp_rep"), seeded=True),
    "streamed_ridge_scores": Case(lambda act, resp: an.streamed_ridge_scores(
        act, resp, cv=3, alphas=[0.1, 10.0]), ("act", "resp"), seeded=True),
    "response_noise_ceiling": Case(lambda resp_rep: an.response_noise_ceiling(
        resp_rep, n_splits=5), ("resp_rep",), seeded=True),
    "feature_variance_explained": Case(lambda act: an.feature_variance_explained(act),
                                       ("act",)),
    "pca_summary": Case(lambda act: an.pca_summary(act, split=None, n_pcs=3), ("act",)),
    "unit_tuning": Case(lambda act: an.unit_tuning(act, split=None), ("act",)),
    "feature_decomposition": Case(lambda act, stimuli: an.feature_decomposition(
        act, stimuli=stimuli), ("act", "stimuli")),
    "variance_shares": Case(lambda act, stimuli: an.variance_shares(act, stimuli=stimuli),
                            ("act", "stimuli")),
    "remove_features": Case(lambda act, stimuli: an.remove_features(
        act, stimuli=stimuli, features=["a"]), ("act", "stimuli")),
    "equalise_feature_variance": Case(lambda act, stimuli: an.equalise_feature_variance(
        act, stimuli=stimuli), ("act", "stimuli")),
    "attribute_cka": Case(lambda act, resp, stimuli: an.attribute_cka(
        act, resp, stimuli=stimuli), ("act", "resp", "stimuli")),
    "attribute_rsa": Case(lambda act, resp, stimuli: an.attribute_rsa(
        act, resp, stimuli=stimuli), ("act", "resp", "stimuli")),
    "attribute_encoding": Case(lambda act, resp, stimuli: an.attribute_encoding(
        act, resp, stimuli=stimuli, cv=3, estimator=an.RidgeEncoder(alphas=[0.1, 10.0])),
        ("act", "resp", "stimuli"), seeded=True),
    "compare_controlled": Case(lambda act, resp, stimuli: an.compare_controlled(
        act, resp, stimuli=stimuli, cv=3, measures=("rsa", "cka")),
        ("act", "resp", "stimuli"), seeded=True),
    "feature_model_rdms": Case(lambda stimuli: an.feature_model_rdms(stimuli), ("stimuli",)),
    "rdm_variance_partition": Case(lambda rdm_b, feature_rdms: an.rdm_variance_partition(
        rdm_b, feature_rdms), ("rdm_b", "feature_rdms")),
    "residualise_rdm": Case(lambda rdm_b, feature_rdms: an.residualise_rdm(
        rdm_b, feature_rdms), ("rdm_b", "feature_rdms")),
    "class_mean_direction": Case(lambda act: an.class_mean_direction(act, feature="c"),
                                 ("act",)),
    "pcs_needed": Case(lambda act: an.pcs_needed(act, max_pcs=5), ("act",)),
    "readout_reliance": Case(lambda act, stimuli: an.readout_reliance(
        act, a="a", b="b", stimuli=stimuli), ("act", "stimuli")),
    # interop: the round trips through rsatoolbox keep the labels
    "to_rsatoolbox_dataset": Case(lambda act: interop.from_rsatoolbox_dataset(
        interop.to_rsatoolbox_dataset(act)), ("act",), nan_ok=("act",)),
    "to_rsatoolbox_rdms": Case(lambda models: interop.from_rsatoolbox_rdms(
        interop.to_rsatoolbox_rdms(models)), ("models",), nan_ok=("models",)),
}

#: Public names that take no labelled data, with the reason (their inputs are checked by
#: the bad-value tests of their own modules).
EXEMPT: dict[str, str] = {
    "correct_pvalues": "takes p-values, not labelled data (its bad values are fuzzed here)",
    "spearman_brown": "takes reliabilities (numbers)",
    "variance_explained_arrays": "plain arrays by design (the engine of "
                                 "feature_variance_explained, which is fuzzed)",
    "normalise_by_final": "takes a result Dataset of feature_variance_explained",
    "AlphaGridWarning": "a warning class",
    **{name: "takes functions on a grid, not stimulus-labelled data (bad values are tested "
             "in test_complexity_measures)"
       for name in ("fourier_frequency", "polynomial_order", "lz_complexity")},
    "lz76": "takes one symbol sequence (bad values tested in test_complexity_measures)",
    "searchlight_spheres": "takes a mask and its affine (geometry; bad values tested in "
                           "test_searchlight)",
    "searchlight_to_nifti": "takes a searchlight_rsa result (tested in test_searchlight)",
    "random_reference": "takes a length and an alphabet size (numbers)",
}


def case_names_for(public: list[str]) -> set[str]:
    """The public function each case name covers (``"rdm[correlation]"`` -> ``"rdm"``)."""
    return {name.split("[")[0] for name in CASES} & set(public)
