"""RDM comparison: agreement with rsatoolbox and scipy, alignment, NaNs, properties, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.stats
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from realdata import rsa92_rdms
from scipy.spatial.distance import squareform as scipy_squareform

from rsa_bias.analysis.rsa.compare import compare_rdms, rank_rows
from rsa_bias.analysis.rsa.forms import condensed

rt_rdm = pytest.importorskip("rsatoolbox.rdm")

RSATOOLBOX_NAMES = {"pearson": "corr", "spearman": "spearman", "rho_a": "rho-a",
                    "kendall_tau_a": "tau-a", "kendall_tau_b": "kendall", "cosine": "cosine",
                    "cosine_cov": "cosine_cov", "corr_cov": "corr_cov"}




def reference(va: np.ndarray, vb: np.ndarray, method: str, **kw) -> np.ndarray:
    return rt_rdm.compare(rt_rdm.RDMs(va), rt_rdm.RDMs(vb), method=RSATOOLBOX_NAMES[method],
                          **kw)


def labelled_stack(vectors: np.ndarray, dim: str, ids: np.ndarray) -> xr.DataArray:
    square = np.stack([scipy_squareform(v, checks=False) for v in vectors])
    return xr.DataArray(square, dims=(dim, "stimulus_i", "stimulus_j"),
                        coords={dim: [f"{dim}{k}" for k in range(len(vectors))],
                                "stimulus_i": ids, "stimulus_j": ids})


@pytest.fixture(scope="module")
def random_vectors() -> tuple[np.ndarray, np.ndarray]:
    """5 and 3 RDM vectors over 12 stimuli; some rows coarse-grained so they hold ties."""
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 66)), rng.random((3, 66)) + 0.3 * rng.random((1, 66))
    a[1] = np.round(a[1] * 4)
    b[0] = np.round(b[0] * 2)
    return a, b


@pytest.fixture(scope="module")
def rsa92() -> tuple[xr.DataArray, xr.DataArray]:
    """Human-IT RDMs (8 = 4 subjects x 2 sessions) and 8 model RDMs of the 92 images."""
    return rsa92_rdms()


# ----------------------------------------------------------------- rsatoolbox agreement

@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_matches_rsatoolbox_on_random_stacks(random_vectors, method: str) -> None:
    a, b = random_vectors
    ids = np.arange(12)
    ours = compare_rdms(labelled_stack(a, "model", ids), labelled_stack(b, "subject", ids),
                        method=method)
    assert ours.dims == ("model", "subject")
    np.testing.assert_allclose(ours.values, reference(a, b, method), rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_matches_rsatoolbox_on_real_92_image_rdms(rsa92, method: str) -> None:
    hit, models = rsa92
    ours = compare_rdms(models, hit, method=method)
    expected = reference(condensed(models).values, condensed(hit).values, method)
    np.testing.assert_allclose(ours.transpose("model", "subject").values, expected, rtol=0,
                               atol=1e-10)


def test_real_data_known_result(rsa92) -> None:
    """Kriegeskorte 2008: monkey IT matches human IT far better than V1 or animacy does."""
    hit, models = rsa92
    r = compare_rdms(models, hit.mean("subject"), method="spearman")
    assert float(r.sel(model="monkeyIT")) > float(r.sel(model="V1")) + 0.1


@pytest.mark.parametrize("method", ["cosine_cov", "corr_cov"])
def test_sigma_k_matches_rsatoolbox(random_vectors, method: str) -> None:
    a, b = random_vectors
    sigma_k = np.linspace(0.5, 2.0, 12)
    ids = np.arange(12)
    ours = compare_rdms(labelled_stack(a, "m", ids), labelled_stack(b, "s", ids),
                        method=method, sigma_k=sigma_k)
    np.testing.assert_allclose(ours.values, reference(a, b, method, sigma_k=sigma_k), atol=1e-10)
    assert not np.allclose(ours.values, reference(a, b, method))


@pytest.mark.parametrize("method", sorted(RSATOOLBOX_NAMES))
def test_shared_nan_entries_match_rsatoolbox(random_vectors, method: str) -> None:
    a, b = (v.copy() for v in random_vectors)
    a[:, [2, 30, 31]] = np.nan
    b[:, [2, 30, 31]] = np.nan
    ids = np.arange(12)
    ours = compare_rdms(labelled_stack(a, "m", ids), labelled_stack(b, "s", ids), method=method)
    np.testing.assert_allclose(ours.values, reference(a, b, method), rtol=0, atol=1e-10)


# ----------------------------------------------------------------- scipy agreement

def tau_a_brute_force(x: np.ndarray, y: np.ndarray) -> float:
    i, j = np.triu_indices(x.size, 1)
    return float(np.sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])) / i.size)


def test_matches_scipy_statistics(random_vectors) -> None:
    a, b = random_vectors
    checks = {"pearson": lambda x, y: scipy.stats.pearsonr(x, y).statistic,
              "spearman": lambda x, y: scipy.stats.spearmanr(x, y).statistic,
              "kendall_tau_b": lambda x, y: scipy.stats.kendalltau(x, y).statistic,
              "kendall_tau_a": tau_a_brute_force,
              "cosine": lambda x, y: x @ y / np.linalg.norm(x) / np.linalg.norm(y)}
    for method, fn in checks.items():
        ours = compare_rdms(a[1], b[0], method=method)
        assert isinstance(ours, float)
        assert float(ours) == pytest.approx(fn(a[1], b[0]), abs=1e-12), method


def test_rho_a_equals_spearman_without_ties(random_vectors) -> None:
    a, b = random_vectors
    m = a.shape[1]
    rho = float(compare_rdms(a[0], b[1], method="spearman"))
    rho_a = float(compare_rdms(a[0], b[1], method="rho_a"))
    assert rho_a == pytest.approx(rho, abs=1e-12)
    spearman_with_ties = float(compare_rdms(a[1], b[0], method="spearman"))
    assert float(compare_rdms(a[1], b[0], method="rho_a")) != pytest.approx(spearman_with_ties)
    assert m == 66


def test_rank_rows_matches_scipy_rankdata(random_vectors) -> None:
    a, _ = random_vectors
    np.testing.assert_array_equal(rank_rows(a), scipy.stats.rankdata(a, axis=1))


def test_different_nan_entries_are_dropped_pairwise(random_vectors) -> None:
    a, b = (v.copy() for v in random_vectors)
    a[0, [1, 5]] = np.nan
    b[2, [7]] = np.nan
    ours = compare_rdms(a, b, method="spearman")
    for i in range(5):
        for j in range(3):
            keep = ~np.isnan(a[i]) & ~np.isnan(b[j])
            expected = scipy.stats.spearmanr(a[i, keep], b[j, keep]).statistic
            assert ours.values[i, j] == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------- labels and alignment

def test_aligns_on_stimulus_ids(random_vectors) -> None:
    a, b = random_vectors
    ids = np.array([f"s{k}" for k in range(12)])
    la, lb = labelled_stack(a, "model", ids), labelled_stack(b, "subject", ids)
    perm = np.random.default_rng(1).permutation(12)
    shuffled = lb.isel(stimulus_i=perm, stimulus_j=perm)
    for method in ("spearman", "cosine_cov"):
        np.testing.assert_allclose(compare_rdms(la, shuffled, method=method).values,
                                   compare_rdms(la, lb, method=method).values, atol=1e-12)
        # positions alone (ignoring ids) would give something else
        assert not np.allclose(compare_rdms(la.values, shuffled.values, method=method).values,
                               compare_rdms(la, lb, method=method).values)
    np.testing.assert_allclose(compare_rdms(la, condensed(shuffled.isel(subject=0))).values,
                               compare_rdms(la, lb.isel(subject=0)).values, atol=1e-12)


def test_mismatched_ids_are_named_and_inner_join_works(random_vectors) -> None:
    a, b = random_vectors
    la = labelled_stack(a, "model", np.arange(12))
    lb = labelled_stack(b, "subject", np.r_[np.arange(11), 99])
    with pytest.raises(ValueError, match=r"stimuli differ: 1 ids of a are missing from b "
                                         r"\(e.g. \[11\]\).*\[99\]"):
        compare_rdms(la, lb)
    inner = compare_rdms(la, lb, join="inner", method="pearson")
    expected = compare_rdms(la.isel(stimulus_i=slice(0, 11), stimulus_j=slice(0, 11)),
                            lb.isel(stimulus_i=slice(0, 11), stimulus_j=slice(0, 11)),
                            method="pearson")
    np.testing.assert_allclose(inner.values, expected.values, atol=1e-12)


def test_result_dims_and_coords(random_vectors) -> None:
    a, _ = random_vectors
    la = labelled_stack(a, "model", np.arange(12))
    self_sim = compare_rdms(la, la, method="pearson")
    assert self_sim.dims == ("model_a", "model_b")
    np.testing.assert_array_equal(self_sim.model_b.values, la.model.values)
    np.testing.assert_allclose(np.diag(self_sim.values), 1.0)
    np.testing.assert_allclose(self_sim.values, self_sim.values.T, atol=1e-12)
    one = compare_rdms(la, la.isel(model=2))
    assert one.dims == ("model",) and float(one.sel(model="model2")) == pytest.approx(1.0)
    assert one.attrs["method"] == "spearman"


# ----------------------------------------------------------------- properties

rdm_vectors = arrays(np.float64, 15, elements=st.floats(1e-3, 100) | st.just(0.0))


@settings(max_examples=30, deadline=None)
@given(v=rdm_vectors, method=st.sampled_from(sorted(RSATOOLBOX_NAMES)))
def test_self_similarity_is_one(v: np.ndarray, method: str) -> None:
    constant = np.ptp(v) == 0
    centred_constant = method in ("pearson", "spearman", "kendall_tau_b", "corr_cov") and constant
    ties = len(set(v.tolist())) < v.size
    if centred_constant or np.all(v == 0) or (method in ("rho_a", "kendall_tau_a") and ties):
        return  # undefined (or, for the tie-uncorrected ranks, below 1 by definition)
    value = float(compare_rdms(v, v, method=method))
    assert value == pytest.approx(1.0, abs=1e-9) or (method == "cosine_cov" and constant)


@settings(max_examples=30, deadline=None)
@given(v=rdm_vectors, w=rdm_vectors)
def test_spearman_invariant_to_monotone_maps_pearson_is_not(v: np.ndarray, w: np.ndarray) -> None:
    base = float(compare_rdms(v, w, method="spearman"))
    monotone = 3 * v + v**3  # strictly increasing on v >= 0, keeps distinct values distinct
    assert float(compare_rdms(monotone, w, method="spearman")) == pytest.approx(base, abs=1e-9)
    assert float(compare_rdms(w, v, method="spearman")) == pytest.approx(base, abs=1e-12)


def test_pearson_not_invariant_to_monotone_maps(random_vectors) -> None:
    a, b = random_vectors
    p = float(compare_rdms(a[0], b[1], method="pearson"))
    assert float(compare_rdms(np.exp(5 * a[0]), b[1], method="pearson")) != pytest.approx(p)


# ----------------------------------------------------------------- errors

def test_errors_are_clear(random_vectors) -> None:
    a, _ = random_vectors
    with pytest.raises(ValueError, match=r"unknown comparison method 'kendall'; valid: "):
        compare_rdms(a[0], a[1], method="kendall")
    with pytest.raises(ValueError, match="at least 3"):
        compare_rdms(np.zeros((2, 2)), np.zeros((2, 2)))
    asym = scipy_squareform(a[0])
    asym[0, 1] += 1
    with pytest.raises(ValueError, match="not symmetric"):
        compare_rdms(asym, a[1])
    with pytest.raises(ValueError, match="expected a condensed vector"):
        compare_rdms(np.zeros((3, 4, 5)), a[1])
    with pytest.raises(ValueError, match="not the length of a condensed RDM"):
        compare_rdms(np.zeros(7), a[1])
    with pytest.raises(ValueError, match="sigma_k is used only by"):
        compare_rdms(a[0], a[1], method="pearson", sigma_k=np.ones(12))
    with pytest.raises(ValueError, match=r"sigma_k has shape \(12, 12\)"):
        compare_rdms(a[0], a[1], method="cosine_cov", sigma_k=np.eye(12))
    with pytest.raises(ValueError, match="inf"):
        compare_rdms(np.r_[np.inf, a[1][1:]], a[1])
    with pytest.raises(ValueError, match="dims"):
        compare_rdms(xr.DataArray(np.zeros((3, 3)), dims=("x", "y")), a[1])
