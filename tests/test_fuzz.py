"""Fuzz suite over the registry of public analysis functions (tests/fuzz_registry.py).

For every function that takes labelled data:

* permuting the stimuli of its labelled inputs (each input in its own random order) leaves
  every result unchanged — seeded intervals, nulls and folds included;
* inputs whose stimulus ids differ (a missing stimulus, ids of another type) are refused;
* NaN, inf, complex and empty inputs are refused with a ValueError.

Hypothesis draws the permutations and where the bad value goes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from fuzz_registry import CASES, EXEMPT, STIMULUS_DIMS, case_names_for, inputs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rsa_bias.analysis as an

FUZZ = settings(max_examples=8, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
BAD_KINDS = ("nan", "inf", "complex", "empty")


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    return inputs()


def _call(case, values: dict) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return case.call(**{k: values[k] for k in case.labelled + case.fixed})


# --------------------------------------------------------------------------- comparing


def _sorted(obj):
    """A labelled result with its stimulus dims in ascending id order (pairs by id pair)."""
    for dim in STIMULUS_DIMS:
        if dim in obj.dims and dim in obj.coords:
            obj = obj.isel({dim: np.argsort(obj[dim].values, kind="stable")})
    if "pair" in obj.dims and "stimulus_i" in obj.coords:
        i, j = obj["stimulus_i"].values, obj["stimulus_j"].values
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        obj = obj.isel(pair=np.lexsort((hi, lo)))
    return obj


def flatten(result, prefix: str = "") -> dict[str, np.ndarray]:
    """Every number of a result as arrays keyed by name, stimulus dims sorted by id."""
    if isinstance(result, dict):
        out = {}
        for k, v in result.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(result, tuple | list):
        out = {}
        for i, v in enumerate(result):
            out.update(flatten(v, f"{prefix}{i}."))
        return out
    if isinstance(result, xr.Dataset):
        result = _sorted(result)
        return {f"{prefix}{k}": np.asarray(v.values) for k, v in result.data_vars.items()}
    if isinstance(result, xr.DataArray):
        return {prefix or "value": np.asarray(_sorted(result).values)}
    return {prefix or "value": np.asarray(result)}


def assert_same(a, b) -> None:
    fa, fb = flatten(a), flatten(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        if fa[k].dtype.kind in "fc":
            np.testing.assert_allclose(fa[k], fb[k], rtol=1e-8, atol=1e-10, equal_nan=True,
                                       err_msg=k)
        else:
            np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


# --------------------------------------------------------------------------- perturbing


def permuted(values: dict, names: tuple[str, ...], rng: np.random.Generator) -> dict:
    """``values`` with every labelled input in ``names`` in its own random stimulus order."""
    out = dict(values)
    for name in names:
        v = values[name]
        if name == "long":  # long format: the run labels follow their rows
            order = rng.permutation(v.sizes["stimulus"])
            out["long"], out["runs"] = v.isel(stimulus=order), values["runs"][order]
            continue
        if "stimulus" in v.dims:
            v = v.isel(stimulus=rng.permutation(v.sizes["stimulus"]))
        if "stimulus_i" in v.dims:
            order = rng.permutation(v.sizes["stimulus_i"])
            v = v.isel(stimulus_i=order, stimulus_j=order)
        out[name] = v
    return out


def _relabelled(v, fn):
    dims = [d for d in STIMULUS_DIMS if d in v.dims]
    if not dims and "pair" in v.dims:
        dims = ["stimulus_i", "stimulus_j"]
    return v.assign_coords({d: fn(v[d].values) for d in dims})


def _bad_value(v: xr.DataArray, kind: str, position: int) -> xr.DataArray:
    if kind == "empty":
        return v.isel({d: [] for d in v.dims if d in STIMULUS_DIMS or d == "pair"})
    values = v.values.astype(complex if kind == "complex" else float)
    bad = 1j if kind == "complex" else (np.nan if kind == "nan" else np.inf)
    if "stimulus_i" in v.dims:  # an off-diagonal dissimilarity, kept symmetric
        square = values.reshape(-1, *values.shape[-2:])
        k, i, j = np.unravel_index(position % square.size, square.shape)
        if i == j:
            j = (i + 1) % square.shape[-1]
        for a, b in ((i, j), (j, i)):
            square[k, a, b] = square[k, a, b] + bad if kind == "complex" else bad
        return v.copy(data=square.reshape(values.shape))
    flat = values.reshape(-1)
    k = position % flat.size
    flat[k] = flat[k] + bad if kind == "complex" else bad
    return v.copy(data=values)


# --------------------------------------------------------------------------- the tests


def test_every_public_function_is_registered():
    public = an.public_names()
    missing = set(public) - case_names_for(public) - set(EXEMPT)
    assert not missing, f"add these public functions to tests/fuzz_registry.py: {missing}"
    assert not set(EXEMPT) - set(public)


@pytest.mark.parametrize("name", list(CASES))
@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_permuting_stimuli_changes_nothing(name, seed, data):
    case = CASES[name]
    reference = _call(case, data)
    again = _call(case, permuted(data, case.labelled, np.random.default_rng(seed)))
    assert_same(reference, again)


def _multi_input_cases():
    return [(n, k) for n, c in CASES.items() if len(c.labelled) > 1 for k in c.labelled]


@pytest.mark.parametrize(("name", "which"), _multi_input_cases())
@pytest.mark.parametrize("how", ["missing", "other_type"])
def test_mismatched_stimulus_ids_are_refused(name, which, how, data):
    case = CASES[name]
    v = data[which]
    if how == "missing" and case.labelled == (which, "stimuli"):
        pytest.skip("activations of a subset of the stimulus set are valid by design")
    if how == "missing":
        dims = {d: slice(1, None) for d in v.dims if d in STIMULUS_DIMS}
        bad = v.isel(dims) if dims else _relabelled(v, lambda ids: ids + 10**6)
    else:
        bad = _relabelled(v, lambda ids: ids.astype(str))
    with pytest.raises(ValueError, match="stimul|ids"):
        _call(case, {**data, which: bad})


def _numeric_inputs():
    return [(n, k) for n, c in CASES.items() for k in c.labelled if k != "stimuli"]


@pytest.mark.parametrize(("name", "which"), _numeric_inputs())
@pytest.mark.parametrize("kind", BAD_KINDS)
@FUZZ
@given(position=st.integers(0, 10**6))
def test_bad_values_are_refused(name, which, kind, position, data):
    case = CASES[name]
    if kind == "nan" and which in case.nan_ok:
        pytest.skip("NaN dissimilarities are missing values by design (as rsatoolbox)")
    bad = _bad_value(data[which], kind, position)
    extra = {"runs": data["runs"][:0]} if which == "long" and kind == "empty" else {}
    with pytest.raises(ValueError):
        _call(case, {**data, which: bad, **extra})


@pytest.mark.parametrize("p", [[0.2, 1.5], [-0.1, 0.5], [0.1, np.inf], [0.3 + 0.1j, 0.2]])
def test_correct_pvalues_refuses_values_that_are_not_probabilities(p):
    with pytest.raises(ValueError, match=r"\[0, 1\]|Complex"):
        an.correct_pvalues(np.array(p))
