"""Crossnobis (and run averaging) with stimuli repeated within runs, unequally across runs:
``run_weights="rows"`` pools the rows as rsatoolbox does, ``"equal"`` (the default) averages
each run first and weighs the runs equally."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import squareform as scipy_squareform

from rsa_bias.analysis.rsa.crossnobis import noise_precision, stack_runs
from rsa_bias.analysis.rsa.forms import condensed
from rsa_bias.analysis.rsa.rdms import rdm
from rsa_bias.interop import from_rsatoolbox_dataset

rt_data = pytest.importorskip("rsatoolbox.data")
rt_rdm = pytest.importorskip("rsatoolbox.rdm")

IDS = np.array(["owl", "cup", "dog", "car", "fig", "bee"])  # unsorted: rsatoolbox sorts them
N_RUNS, N_UNITS = 4, 20


def long_rows(counts: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``(n_rows, unit)`` with stimulus ids and run labels; ``counts[r, s]`` rows of
    stimulus ``s`` in run ``r``, shuffled within the run. Signal + run offset + row noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(len(IDS), N_UNITS))
    offset = 0.5 * rng.normal(size=(N_RUNS, len(IDS), N_UNITS))  # run-specific patterns
    rows, ids, runs = [], [], []
    for r in range(N_RUNS):
        idx = rng.permutation(np.repeat(np.arange(len(IDS)), counts[r]))
        rows.append(signal[idx] + offset[r, idx] + rng.normal(size=(len(idx), N_UNITS)))
        ids.append(IDS[idx])
        runs.append(np.full(len(idx), 10 * (r + 1)))
    return np.concatenate(rows), np.concatenate(ids), np.concatenate(runs)


def unbalanced_counts() -> np.ndarray:
    """1-3 rows per (run, stimulus), different between runs for every stimulus."""
    counts = np.random.default_rng(42).integers(1, 4, size=(N_RUNS, len(IDS)))
    counts[0], counts[1] = 1, 3  # so no stimulus has equal counts in every run
    return counts


def labelled(x: np.ndarray, ids: np.ndarray) -> xr.DataArray:
    return xr.DataArray(x, dims=("stimulus", "voxel"), coords={"stimulus": ids})


def rsatoolbox_square(x: np.ndarray, ids: np.ndarray, runs: np.ndarray | None, method: str, *,
                      noise: np.ndarray | None = None, remove_mean: bool = False) -> np.ndarray:
    """rsatoolbox's RDM of the rows, in our stimulus order (first appearance)."""
    obs = {"stimulus": ids} if runs is None else {"stimulus": ids, "run": runs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rsatoolbox casts descriptors
        r = rt_rdm.calc_rdm(rt_data.Dataset(x, obs_descriptors=obs), method=method,
                            descriptor="stimulus", noise=noise, remove_mean=remove_mean,
                            cv_descriptor=None if runs is None else "run")
    order = list(r.pattern_descriptors["stimulus"])
    wanted = [order.index(s) for s in dict.fromkeys(ids.tolist())]
    return r.get_matrices()[0][np.ix_(wanted, wanted)]


def run_means(x: np.ndarray, ids: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """``(run, stimulus, unit)``: the mean of each stimulus's rows in each run, by loops."""
    stimuli = list(dict.fromkeys(ids.tolist()))
    return np.array([[x[(runs == r) & (ids == s)].mean(axis=0) for s in stimuli]
                     for r in np.unique(runs)])


def crossnobis_over_run_pairs(means: np.ndarray, precision: np.ndarray | None) -> np.ndarray:
    """Direct crossnobis of run-averaged patterns: the mean over pairs of distinct runs q < r
    of ``(x_qi - x_qj) Λ (x_ri - x_rj)ᵀ / P``."""
    n_runs, n, p = means.shape
    prec = np.eye(p) if precision is None else precision
    estimates = []
    for q in range(n_runs):
        for r in range(q + 1, n_runs):
            d = np.zeros((n, n))
            for i in range(n):
                for j in range(n):
                    dq, dr = means[q, i] - means[q, j], means[r, i] - means[r, j]
                    d[i, j] = dq @ prec @ dr / p
            estimates.append(d)
    return np.mean(estimates, axis=0)


@pytest.fixture(scope="module")
def unbalanced() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return long_rows(unbalanced_counts())


@pytest.fixture(scope="module")
def precision() -> np.ndarray:
    return noise_precision(np.random.default_rng(7).normal(size=(60, N_UNITS)))


# ----------------------------------------------------------------- the two references

@pytest.mark.parametrize("with_noise", [False, True])
def test_rows_matches_rsatoolbox_on_unbalanced_runs(unbalanced, precision, with_noise) -> None:
    x, ids, runs = unbalanced
    prec = precision if with_noise else None
    ours = rdm(labelled(x, ids), method="crossnobis", runs=runs, noise=prec, run_weights="rows")
    theirs = rsatoolbox_square(x, ids, runs, "crossnobis", noise=prec)
    np.testing.assert_allclose(ours.values, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("with_noise", [False, True])
def test_equal_matches_direct_mean_over_run_pairs(unbalanced, precision, with_noise) -> None:
    x, ids, runs = unbalanced
    prec = precision if with_noise else None
    ours = rdm(labelled(x, ids), method="crossnobis", runs=runs, noise=prec)  # the default
    expected = crossnobis_over_run_pairs(run_means(x, ids, runs), prec)
    np.testing.assert_allclose(ours.values, expected, rtol=0, atol=1e-10)
    explicit = rdm(labelled(x, ids), method="crossnobis", runs=runs, noise=prec,
                   run_weights="equal")
    np.testing.assert_array_equal(explicit.values, ours.values)


def test_the_two_weightings_really_differ_on_unbalanced_runs(unbalanced) -> None:
    x, ids, runs = unbalanced
    equal = rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights="equal")
    rows = rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights="rows")
    assert np.max(np.abs(equal.values - rows.values)) > 0.01
    # rsatoolbox is the pooled one, not the default
    theirs = rsatoolbox_square(x, ids, runs, "crossnobis")
    assert np.max(np.abs(equal.values - theirs)) > 0.01


@pytest.mark.parametrize("with_noise", [False, True])
def test_balanced_runs_agree_everywhere(precision, with_noise) -> None:
    """One row per stimulus per run: both weightings, the direct reference and rsatoolbox."""
    prec = precision if with_noise else None
    x, ids, runs = long_rows(np.ones((N_RUNS, len(IDS)), dtype=int), seed=3)
    equal = rdm(labelled(x, ids), method="crossnobis", runs=runs, noise=prec)
    rows = rdm(labelled(x, ids), method="crossnobis", runs=runs, noise=prec, run_weights="rows")
    np.testing.assert_allclose(rows.values, equal.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(equal.values, rsatoolbox_square(x, ids, runs, "crossnobis",
                                                               noise=prec), rtol=0, atol=1e-10)
    np.testing.assert_allclose(equal.values,
                               crossnobis_over_run_pairs(run_means(x, ids, runs), prec),
                               rtol=0, atol=1e-10)


def test_equal_counts_in_every_run_make_the_weightings_equal() -> None:
    """Repeats within runs alone do not matter: only counts that differ between runs do."""
    counts = np.tile(np.array([1, 2, 3, 1, 2, 3]), (N_RUNS, 1))  # per stimulus, same each run
    x, ids, runs = long_rows(counts, seed=4)
    equal = rdm(labelled(x, ids), method="crossnobis", runs=runs)
    rows = rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights="rows")
    np.testing.assert_allclose(rows.values, equal.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rows.values, rsatoolbox_square(x, ids, runs, "crossnobis"),
                               rtol=0, atol=1e-10)


# ----------------------------------------------------------------- other paths

def test_rows_through_rsatoolbox_dataset_and_stack_runs(unbalanced, precision) -> None:
    x, ids, runs = unbalanced
    ds = rt_data.Dataset(x, obs_descriptors={"stimulus": ids, "run": runs})
    theirs = rsatoolbox_square(x, ids, runs, "crossnobis", noise=precision)
    via_interop = rdm(from_rsatoolbox_dataset(ds), method="crossnobis", noise=precision,
                      run_weights="rows")
    np.testing.assert_allclose(via_interop.values, theirs, rtol=0, atol=1e-10)
    stacked = stack_runs(x, runs=runs, stimulus_ids=ids)  # numpy rows, counts in n_rows
    order = [IDS.tolist().index(s) for s in stacked.stimulus.values.tolist()]
    np.testing.assert_array_equal(stacked["n_rows"].values, unbalanced_counts()[:, order])
    via_stack = rdm(stacked, method="crossnobis", noise=precision, run_weights="rows")
    np.testing.assert_allclose(via_stack.values, theirs, rtol=0, atol=1e-10)


def test_rows_with_remove_mean_and_float32_match_rsatoolbox(unbalanced) -> None:
    x, ids, runs = unbalanced
    theirs = rsatoolbox_square(x, ids, runs, "crossnobis", remove_mean=True)
    ours = rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights="rows",
               remove_mean=True)
    np.testing.assert_allclose(ours.values, theirs, rtol=0, atol=1e-10)
    single = rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights="rows",
                 remove_mean=True, dtype="float32")
    assert single.dtype == np.float32
    np.testing.assert_allclose(single.values, theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("ours_name", "theirs_name"), [("sqeuclidean", "euclidean"),
                                                         ("correlation", "correlation")])
def test_other_methods_average_rows_or_runs(unbalanced, ours_name, theirs_name) -> None:
    """``"rows"``: the mean of all rows of a stimulus (rsatoolbox's calc_rdm); ``"equal"``:
    the mean of its per-run means."""
    x, ids, runs = unbalanced
    rows = rdm(labelled(x, ids), method=ours_name, runs=runs, run_weights="rows")
    np.testing.assert_allclose(rows.values, rsatoolbox_square(x, ids, None, theirs_name),
                               rtol=0, atol=1e-10)
    equal = rdm(labelled(x, ids), method=ours_name, runs=runs)
    mean_of_runs = run_means(x, ids, runs).mean(axis=0)
    np.testing.assert_allclose(equal.values, rdm(mean_of_runs, method=ours_name).values,
                               rtol=0, atol=1e-12)
    assert np.max(np.abs(rows.values - equal.values)) > 1e-3


def test_one_row_per_pattern_needs_no_counts() -> None:
    """3-D input (no ``n_rows``): one row per pattern, so both weightings coincide."""
    x = np.random.default_rng(5).normal(size=(3, 5, 8))
    np.testing.assert_array_equal(rdm(x, method="crossnobis", run_weights="rows").values,
                                  rdm(x, method="crossnobis").values)
    ids, runs = np.tile(IDS[:5], 3), np.repeat([0, 1, 2], 5)
    assert "n_rows" not in stack_runs(x.reshape(15, 8), runs=runs, stimulus_ids=ids).coords


# ----------------------------------------------------------------- record and errors

def test_result_records_run_weights(unbalanced) -> None:
    x, ids, runs = unbalanced
    for weights in ("equal", "rows"):
        out = rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights=weights)
        assert out.attrs["run_weights"] == weights
        assert json.loads(out.attrs["config_json"])["run_weights"] == weights
    assert rdm(labelled(x, ids), runs=runs).attrs["run_weights"] == "equal"
    assert "n_rows_i" not in condensed(rdm(labelled(x, ids), runs=runs)).coords


def test_bad_run_weights_are_refused(unbalanced) -> None:
    x, ids, runs = unbalanced
    with pytest.raises(ValueError, match=r"unknown run_weights option 'pool'; valid: "
                                         r"\['equal', 'rows'\]"):
        rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights="pool")
    stacked = stack_runs(x, runs=runs, stimulus_ids=ids)
    with pytest.raises(ValueError, match="positive row counts"):
        rdm(stacked.assign_coords(n_rows=0 * stacked.n_rows), method="crossnobis",
            run_weights="rows")
    with pytest.raises(ValueError, match=r"expected \('run', 'stimulus'\)"):
        rdm(stacked.assign_coords(n_rows=("stimulus", np.ones(len(IDS)))), method="crossnobis",
            run_weights="rows")


def test_pooled_formula_by_hand(unbalanced) -> None:
    """The formula of the module docstring, fold by fold: train on the mean of all other
    runs' rows, test on the held-out run's mean, average over folds."""
    x, ids, runs = unbalanced
    means = run_means(x, ids, runs)
    stimuli = list(dict.fromkeys(ids.tolist()))
    folds = []
    for r in np.unique(runs):
        train = np.array([x[(runs != r) & (ids == s)].mean(axis=0) for s in stimuli])
        test = means[list(np.unique(runs)).index(r)]
        k = train @ test.T
        folds.append(np.diag(k)[:, None] + np.diag(k)[None] - k - k.T)
    expected = np.mean(folds, axis=0) / N_UNITS
    ours = rdm(labelled(x, ids), method="crossnobis", runs=runs, run_weights="rows")
    np.testing.assert_allclose(ours.values, expected, rtol=0, atol=1e-10)
    assert scipy_squareform(ours.values, checks=False).shape == (15,)
