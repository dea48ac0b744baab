"""Binary tasks: exact balance and independence in every split, features match the bits."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsa_bias.config import ENUMERATE_MAX_BITS, FeatureSpec, TaskConfig
from rsa_bias.tasks import feature_function, make_binary_task
from rsa_bias.tasks.binary import feature_matrix

SPLITS = ("train", "val", "test")


# --- independent reference implementation ----------------------------------------------------


def _bits(ds: xr.Dataset) -> np.ndarray:
    """0/1 bits from the coded inputs, checking the coding is exactly ±1 or 0/1."""
    x = ds.inputs.values
    if ds.attrs["coding"] == "pm1":
        assert set(np.unique(x)) <= {-1.0, 1.0}
        return (x > 0).astype(int)
    assert set(np.unique(x)) <= {0.0, 1.0}
    return x.astype(int)


def _expected_feature(kind: str, block: np.ndarray) -> np.ndarray:
    k = block.shape[1]
    if kind == "linear":
        assert k == 1
        return block[:, 0]
    if kind == "threshold":
        return (block.sum(axis=1) > k / 2).astype(int)
    if kind == "parity":
        return block.sum(axis=1) % 2
    raise AssertionError(kind)


def assert_features_match_bits(ds: xr.Dataset, features: tuple[FeatureSpec, ...]) -> None:
    """Blocks are contiguous, in feature order, distractors last; values recomputed."""
    bits = _bits(ds)
    roles = ds.input_role.values
    n_feature_bits = sum(f.k for f in features)
    assert list(roles[n_feature_bits:]) == ["distractor"] * (len(roles) - n_feature_bits)
    start = 0
    for f in features:
        assert list(roles[start:start + f.k]) == [f.name] * f.k
        expected = _expected_feature(f.type, bits[:, start:start + f.k])
        np.testing.assert_array_equal(ds[f"feature_{f.name}"].values, expected)
        start += f.k


def assert_exactly_balanced(ds: xr.Dataset) -> None:
    """In every split each feature is 50/50 and every joint value has n / 2^F members."""
    names = ds.attrs["feature_names"]
    for split in SPLITS:
        sub = ds.isel(stimulus=ds.split.values == split)
        n = sub.sizes["stimulus"]
        assert n > 0, split
        values = np.stack([sub[f"feature_{name}"].values for name in names], axis=1)
        assert set(np.unique(values)) <= {0, 1}
        np.testing.assert_array_equal(values.sum(axis=0) * 2, n, err_msg=split)
        for combo in itertools.product((0, 1), repeat=len(names)):
            count = int(np.all(values == np.array(combo), axis=1).sum())
            assert count * 2 ** len(names) == n, (split, combo, count, n)


def assert_distinct_inputs(ds: xr.Dataset) -> None:
    ids = ds.stimulus.values
    assert len(np.unique(ids)) == len(ids)
    assert len(np.unique(ds.inputs.values, axis=0)) == len(ids)
    by_split = [set(ids[ds.split.values == s]) for s in SPLITS]
    for a, b in itertools.combinations(by_split, 2):
        assert not a & b


def assert_split_sizes(ds: xr.Dataset, cfg: TaskConfig) -> None:
    counts = {s: int((ds.split.values == s).sum()) for s in SPLITS}
    assert counts["val"] == cfg.val_size
    assert counts["test"] == cfg.test_size
    if cfg.n_train == "all":
        assert counts["train"] == 2 ** cfg.n_bits - cfg.val_size - cfg.test_size
    else:
        assert counts["train"] == cfg.n_train
    assert ds.sizes["stimulus"] == sum(counts.values())
    assert ds.sizes["input"] == cfg.n_bits


def check_task(cfg: TaskConfig) -> xr.Dataset:
    ds = make_binary_task(cfg)
    assert_split_sizes(ds, cfg)
    assert_exactly_balanced(ds)
    assert_features_match_bits(ds, cfg.features)
    assert_distinct_inputs(ds)
    return ds


# --- feature types and codings ---------------------------------------------------------------

FEATURE_SETS = {
    "linear": (FeatureSpec("a", "linear", 1),),
    "threshold3": (FeatureSpec("t", "threshold", 3),),
    "threshold5": (FeatureSpec("t", "threshold", 5),),
    "parity2": (FeatureSpec("p", "parity", 2),),
    "parity3": (FeatureSpec("p", "parity", 3),),
    "parity4": (FeatureSpec("p", "parity", 4),),
    "easy_hard": (FeatureSpec("easy", "linear", 1), FeatureSpec("hard", "parity", 4)),
    "mixed3": (FeatureSpec("a", "linear", 1), FeatureSpec("t", "threshold", 3),
               FeatureSpec("p", "parity", 2)),
    "two_thresholds": (FeatureSpec("t3", "threshold", 3), FeatureSpec("t5", "threshold", 5)),
}


@pytest.mark.parametrize("coding", ["pm1", "01"])
@pytest.mark.parametrize("features", FEATURE_SETS.values(), ids=FEATURE_SETS.keys())
def test_every_split_exactly_balanced_and_independent(features, coding):
    n_distractor = max(2, 8 - sum(f.k for f in features))  # at least 8 bits: 256 inputs
    cfg = TaskConfig(features=features, n_distractor=n_distractor, coding=coding, val_size=32,
                     test_size=32, seed=3)
    check_task(cfg)


@pytest.mark.parametrize("features", [FEATURE_SETS["easy_hard"], FEATURE_SETS["mixed3"]],
                         ids=["easy_hard", "mixed3"])
def test_integer_n_train_balanced(features):
    cfg = TaskConfig(features=features, n_distractor=4, n_train=64, val_size=32,
                     test_size=32, seed=1)
    check_task(cfg)


@pytest.mark.parametrize(("coding", "values"), [("pm1", {-1.0, 1.0}), ("01", {0.0, 1.0})])
def test_input_coding(small_task_cfg, coding, values):
    cfg = TaskConfig(features=small_task_cfg.features, n_distractor=3, coding=coding,
                     val_size=64, test_size=64)
    ds = make_binary_task(cfg)
    assert ds.inputs.dtype == np.float32
    assert set(np.unique(ds.inputs.values)) == values
    assert ds.attrs["coding"] == coding


def test_codings_describe_the_same_inputs(small_task_cfg):
    pm1 = make_binary_task(TaskConfig(features=small_task_cfg.features, n_distractor=3,
                                      coding="pm1", val_size=64, test_size=64))
    zo = make_binary_task(TaskConfig(features=small_task_cfg.features, n_distractor=3,
                                     coding="01", val_size=64, test_size=64))
    np.testing.assert_array_equal(pm1.stimulus.values, zo.stimulus.values)
    np.testing.assert_array_equal(pm1.inputs.values, 2 * zo.inputs.values - 1)


def test_attrs_and_feature_matrix(small_task):
    assert small_task.attrs["feature_names"] == ["easy", "hard"]
    assert small_task.attrs["feature_types"] == ["linear", "parity"]
    fm = feature_matrix(small_task)
    np.testing.assert_array_equal(fm[:, 0], small_task.feature_easy.values)
    np.testing.assert_array_equal(fm[:, 1], small_task.feature_hard.values)


def test_distractors_vary(small_task):
    bits = _bits(small_task)
    distractors = bits[:, small_task.input_role.values == "distractor"]
    assert distractors.shape[1] == 3
    # the full space is enumerated: every distractor bit is exactly balanced overall
    np.testing.assert_array_equal(distractors.sum(axis=0) * 2, small_task.sizes["stimulus"])


def test_feature_function_registry():
    block = np.array([[0, 0, 1], [1, 1, 0], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(feature_function("parity")(block), [1, 0, 1, 0])
    np.testing.assert_array_equal(feature_function("threshold")(block), [0, 1, 1, 0])
    np.testing.assert_array_equal(feature_function("linear")(block), [0, 1, 1, 0])
    with pytest.raises(ValueError, match="parity"):
        feature_function("majority")


# --- seeds -----------------------------------------------------------------------------------


def test_same_seed_gives_identical_dataset(small_task_cfg):
    xr.testing.assert_identical(make_binary_task(small_task_cfg), make_binary_task(small_task_cfg))


def test_different_task_seed_changes_split_assignment(small_task_cfg):
    a = make_binary_task(small_task_cfg)
    b = make_binary_task(dataclasses.replace(small_task_cfg, seed=1))
    for split in ("val", "test"):
        ids_a = set(a.stimulus.values[a.split.values == split])
        ids_b = set(b.stimulus.values[b.split.values == split])
        assert ids_a != ids_b, split


# --- large input spaces are sampled ----------------------------------------------------------


@pytest.fixture(scope="module")
def sampled_cfg() -> TaskConfig:
    features = (FeatureSpec("easy", "linear", 1), FeatureSpec("hard", "parity", 4),
                FeatureSpec("maj", "threshold", 3))
    n_distractor = ENUMERATE_MAX_BITS + 4 - 8  # 26 bits: sampled, not enumerated
    return TaskConfig(features=features, n_distractor=n_distractor, n_train=256,
                      val_size=64, test_size=64, seed=5)


def test_sampled_space_balanced_independent_distinct(sampled_cfg):
    assert sampled_cfg.n_bits > ENUMERATE_MAX_BITS
    ds = check_task(sampled_cfg)
    distractors = _bits(ds)[:, ds.input_role.values == "distractor"]
    # distractor bits are drawn, not fixed: every one of them takes both values
    assert np.all(distractors.min(axis=0) == 0) and np.all(distractors.max(axis=0) == 1)


def test_sampled_space_deterministic(sampled_cfg):
    xr.testing.assert_identical(make_binary_task(sampled_cfg), make_binary_task(sampled_cfg))


def test_sampled_space_needs_integer_n_train(sampled_cfg):
    cfg = dataclasses.replace(sampled_cfg, n_train="all")
    with pytest.raises(ValueError, match=r"task\.n_train"):
        make_binary_task(cfg)


# --- impossible requests ---------------------------------------------------------------------


def test_too_small_input_space_refused():
    cfg = TaskConfig(features=FEATURE_SETS["easy_hard"], n_distractor=0, val_size=16,
                     test_size=16)  # 5 bits: 32 inputs, all held out, none left to train on
    with pytest.raises(ValueError, match="leaking") as info:
        make_binary_task(cfg)
    assert "distinct inputs" in str(info.value)
    assert "task.n_distractor" in str(info.value)


def test_too_large_integer_n_train_refused():
    cfg = TaskConfig(features=FEATURE_SETS["easy_hard"], n_distractor=3, n_train=132,
                     val_size=64, test_size=64)  # 260 > 256 inputs
    with pytest.raises(ValueError, match="distinct inputs"):
        make_binary_task(cfg)


@pytest.mark.parametrize("key", ["val_size", "test_size", "n_train"])
def test_split_size_not_multiple_of_cells_refused(key):
    sizes = {"val_size": 32, "test_size": 32, "n_train": 64, key: 34}  # 2 features: 4 cells
    cfg = TaskConfig(features=FEATURE_SETS["easy_hard"], n_distractor=4, **sizes)
    with pytest.raises(ValueError, match=rf"task\.{key}") as info:
        make_binary_task(cfg)
    assert "multiple of 4" in str(info.value)


# --- property test over random small tasks ---------------------------------------------------

_feature = st.one_of(
    st.just(("linear", 1)),
    st.sampled_from([3, 5]).map(lambda k: ("threshold", k)),
    st.integers(2, 4).map(lambda k: ("parity", k)),
)


@st.composite
def small_tasks(draw) -> TaskConfig:
    kinds = draw(st.lists(_feature, min_size=1, max_size=3)
                 .filter(lambda ks: sum(k for _, k in ks) <= 8))
    features = tuple(FeatureSpec(f"f{i}", t, k) for i, (t, k) in enumerate(kinds))
    n_distractor = draw(st.integers(0, 3))
    n_bits = sum(k for _, k in kinds) + n_distractor
    cells = 2 ** len(features)
    per_cell = 2 ** n_bits // cells  # inputs available in each joint-value cell
    val = draw(st.integers(1, max(1, per_cell // 3)))
    test = draw(st.integers(1, max(1, per_cell // 3)))
    if val + test >= per_cell:
        n_distractor += 2  # make room
    n_train = draw(st.one_of(st.just("all"), st.integers(1, max(1, per_cell // 3))))
    return TaskConfig(features=features, n_distractor=n_distractor, coding=draw(
        st.sampled_from(["pm1", "01"])), n_train=n_train if n_train == "all" else n_train * cells,
        val_size=val * cells, test_size=test * cells, seed=draw(st.integers(0, 2**16)))


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(cfg=small_tasks())
def test_property_balanced_independent_distinct(cfg):
    check_task(cfg)
