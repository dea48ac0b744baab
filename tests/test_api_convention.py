"""The API convention of docs/api.md, checked on every public function: a new function that
breaks it fails here."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import xarray as xr
from public_api import documented_parameters, public_functions, public_objects

import rsa_bias
from rsa_bias import analysis

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

#: Shared concepts: always keyword-only (``stimuli`` may be the one data argument).
CONCEPTS = {"stimuli", "features", "seed", "method", "n_boot", "n_perm", "ci", "join",
            "estimator", "cv", "hsic", "kernel", "bandwidth", "readout", "split",
            "fit_split", "eval_split", "orthogonalise", "progress"}

#: Names refused in favour of the one name per concept (for the data, among the positional
#: parameters; ``activation=`` as a keyword is a nonlinearity, as in ``ModelConfig``).
DATA_SYNONYMS = {"activation": "x", "X": "x", "Y": "y"}
SYNONYMS = {"compare": "compare_method", "metric": "method", "mode": "readout",
            "random_state": "seed", "rng": "seed", "n_bootstrap": "n_boot",
            "n_permutations": "n_perm", "feature_names": "features",
            "stimulus_set": "stimuli", "alpha": "alphas"}

#: The default of each concept, wherever it has one.
DEFAULTS = {"seed": 0, "hsic": "biased", "kernel": "linear", "bandwidth": 0.5, "n_boot": 1000,
            "n_perm": 1000, "ci": 0.95, "join": "exact", "cv": 5, "compare_method": "spearman",
            "rdm_method": "correlation", "orthogonalise": "sequential", "estimator": None}

#: Defaults that differ on purpose; the parameter's docstring entry must say why ("differ").
DEFAULT_EXCEPTIONS = {
    ("rsa_bias.minibatch_cka", "hsic"), ("rsa_bias.minibatch_cka", "seed"),
    ("rsa_bias.attribute_rsa", "rdm_method"), ("rsa_bias.attribute_rsa", "compare_method"),
    ("rsa_bias.compare_controlled", "rdm_method"),
    ("rsa_bias.compare_controlled", "compare_method"),
    ("rsa_bias.RidgeEncoder", "cv"), ("rsa_bias.networks.initialise", "seed"),
}

#: Functions whose RDM comparison default is the ``method`` parameter.
COMPARISONS = ("rsa_bias.compare_rdms", "rsa_bias.evaluate_models", "rsa_bias.permutation_test",
               "rsa_bias.rdm_noise_ceiling")

#: Functions allowed more positional data: with the reason.
POSITIONAL_EXCEPTIONS = {
    "rsa_bias.variance_explained_arrays": "a kernel on four plain arrays (fit and evaluation "
                                          "representations and features)",
}


def _positional(fn) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values() if p.kind in POSITIONAL]


FUNCTIONS = dict(public_functions())
#: Functions and the classes whose constructor is rsa_bias's own (not an exception's or a
#: torch module's inherited one).
OBJECTS = {n: o for n, o in public_objects()
           if not inspect.isclass(o)
           or (getattr(o.__init__, "__module__", None) or "").startswith("rsa_bias")
           or hasattr(o, "__dataclass_fields__")}


def test_the_walk_finds_the_whole_public_api():
    names = set(FUNCTIONS)
    assert {"rsa_bias.rdm", "rsa_bias.cka", "rsa_bias.feature_variance_explained",
            "rsa_bias.brain.load_haxby", "rsa_bias.store.read_activations",
            "rsa_bias.training.train", "rsa_bias.experiments.run_experiment",
            "rsa_bias.plotting.plot_rdm"} <= names
    assert len(names) > 90


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_data_first_then_keyword_only_options(name):
    fn = FUNCTIONS[name]
    positional = _positional(fn)
    data = [p for p in positional if not (p.name == "cfg" or p.name.endswith("_cfg"))]
    if name not in POSITIONAL_EXCEPTIONS:
        assert len(data) <= 2, f"{name}: options {[p.name for p in data[2:]]} must be keyword-only"
    for i, p in enumerate(positional):
        concept = p.name in CONCEPTS or p.name.endswith("_method")
        if concept and not (i == 0 and p.name == "stimuli"):
            pytest.fail(f"{name}: {p.name!r} is a shared concept and must be keyword-only")


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_one_name_per_concept(name):
    obj = OBJECTS[name]
    params = inspect.signature(obj).parameters
    bad = {p: SYNONYMS[p] for p in params if p in SYNONYMS}
    bad.update({p.name: DATA_SYNONYMS[p.name] for p in params.values()
                if p.kind in POSITIONAL and p.name in DATA_SYNONYMS})
    assert not bad, f"{name}: use {bad}"
    if "stimuli" in params:
        annotation = str(params["stimuli"].annotation)
        assert "Dataset" in annotation, f"{name}: stimuli= is a stimulus set, not {annotation}"


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_defaults_agree_or_say_why(name):
    obj = OBJECTS[name]
    params = inspect.signature(obj).parameters
    expected = dict(DEFAULTS)
    if name in COMPARISONS:
        expected["method"] = "spearman"
    for key, want in expected.items():
        p = params.get(key)
        if p is None or p.default is inspect.Parameter.empty:
            continue
        if (name, key) in DEFAULT_EXCEPTIONS:
            entry = documented_parameters(obj).get(key, "")
            assert "differ" in entry, f"{name}: say in the docstring why {key}= differs"
            continue
        assert p.default == want, f"{name}: {key}={p.default!r}, elsewhere {want!r}"


def test_exceptions_are_still_real():
    """An exception that no longer differs is removed from the list (and from docs/api.md)."""
    for name, key in DEFAULT_EXCEPTIONS:
        default = inspect.signature(OBJECTS[name]).parameters[key].default
        assert default != DEFAULTS.get(key, "spearman"), (name, key)


def test_rsa_bias_all_is_the_analysis_list():
    assert rsa_bias.__all__ == ["__version__", *analysis.public_names()]
    assert {"noise_precision", "stack_runs", "AlphaGridWarning"} <= set(rsa_bias.__all__)
    fams = [set(analysis._family(f).__all__) for f in analysis.FAMILIES]
    assert sum(len(f) for f in fams) == len(set().union(*fams))  # no name in two families
    for name in analysis.public_names():
        assert getattr(rsa_bias, name) is getattr(analysis, name)


def test_scalar_measures_return_floats():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 3))
    d1, d2 = rsa_bias.rdm(x), rsa_bias.rdm(y)
    values = [rsa_bias.cka(x, y), rsa_bias.hsic(x, y), rsa_bias.compare_rdms(d1, d2),
              rsa_bias.procrustes_distance(x, y), rsa_bias.cca_similarity(x, y[:, :2]),
              rsa_bias.svcca(x, y), rsa_bias.minibatch_cka(x, y, batch_size=6)]
    assert all(type(v) is float for v in values)
    stack = xr.concat([d1, d2], dim="model")
    assert isinstance(rsa_bias.compare_rdms(stack, d2), xr.DataArray)


# --- calls written for the earlier signatures ---------------------------------------------------


def _stimuli(n=16):
    codes = np.arange(n)
    return xr.Dataset(coords={"stimulus": codes, "feature_a": ("stimulus", codes % 2),
                              "feature_b": ("stimulus", (codes // 2) % 2),
                              "split": ("stimulus", np.where((codes // 4) % 2, "test", "val"))},
                      attrs={"feature_names": ["a", "b"]})


def _rep(stim, seed=0):
    rng = np.random.default_rng(seed)
    a = np.where(stim.feature_a.values == 1, 1.0, -1.0)
    values = np.outer(a, rng.normal(size=6)) + 0.3 * rng.normal(size=(stim.sizes["stimulus"], 6))
    return xr.DataArray(values, dims=("stimulus", "unit"),
                        coords={"stimulus": stim.stimulus.values})


LEGACY = [
    (lambda s, x, y: analysis.variance_shares(x, s),
     lambda s, x, y: analysis.variance_shares(x, stimuli=s), "stimuli="),
    (lambda s, x, y: analysis.variance_shares(x.assign_coords(s.coords), ["a"]),
     lambda s, x, y: analysis.variance_shares(x.assign_coords(s.coords), features=["a"]),
     "features="),
    (lambda s, x, y: analysis.remove_features(x, ["a"], s),
     lambda s, x, y: analysis.remove_features(x, stimuli=s, features=["a"]), "features="),
    (lambda s, x, y: analysis.feature_variance_explained(activation=x, stimuli=s),
     lambda s, x, y: analysis.feature_variance_explained(x, stimuli=s), "activation="),
    (lambda s, x, y: analysis.attribute_rsa(x, y, s, compare="cosine"),
     lambda s, x, y: analysis.attribute_rsa(x, y, stimuli=s, compare_method="cosine"),
     "compare="),
    (lambda s, x, y: analysis.cross_validated_scores(X=x, Y=y, alphas=[1.0, 10.0], cv=4),
     lambda s, x, y: analysis.cross_validated_scores(
         x, y, estimator=analysis.RidgeEncoder([1.0, 10.0]), cv=4), "estimator="),
    (lambda s, x, y: analysis.procrustes_distance(x, y, metric="angular"),
     lambda s, x, y: analysis.procrustes_distance(x, y, method="angular"), "metric="),
    (lambda s, x, y: analysis.spearman_brown(0.5, 3.0),
     lambda s, x, y: analysis.spearman_brown(0.5, factor=3.0), "factor="),
]


@pytest.mark.parametrize(("old", "new", "says"), LEGACY)
def test_old_calls_warn_and_give_the_same_numbers(old, new, says):
    stim = _stimuli()
    x, y = _rep(stim, 0), _rep(stim, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = old(stim, x, y)
    future = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert any(says in m for m in future), future
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the new form warns of nothing
        want = new(stim, x, y)
    if isinstance(want, (xr.Dataset, xr.DataArray)):
        xr.testing.assert_allclose(got, want)
    else:
        np.testing.assert_allclose(got, want)


def test_old_and_new_names_together_are_refused():
    x = _rep(_stimuli())
    with pytest.raises(TypeError, match="both 'metric'"):
        analysis.procrustes_distance(x, x, metric="angular", method="euclidean")
    with pytest.raises(TypeError, match="takes 2 positional"):
        analysis.attribute_cka(x, x, None, None, None)


def test_wrapped_functions_keep_their_new_signature():
    sig = inspect.signature(analysis.variance_shares)
    assert list(sig.parameters)[:1] == ["x"]
    assert sig.parameters["stimuli"].kind is inspect.Parameter.KEYWORD_ONLY
