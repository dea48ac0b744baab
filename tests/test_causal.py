"""Causal checks (variance is not importance): class-mean directions, PCs needed to decode a
feature, read-out reliance on conflicting features, and steering a network along a
direction; on constructed layers and hand-set networks whose answers are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from torch import nn

import rsa_bias
from rsa_bias.networks import CNN, MLP
from rsa_bias.training import steer, steering_table
from rsa_bias.training.activations import capture


def _labelled(values, feats: dict, split, ids=None) -> xr.DataArray:
    ids = np.arange(len(values)) if ids is None else ids
    coords = {"stimulus": ids, "split": ("stimulus", np.asarray(split)),
              **{f"feature_{k}": ("stimulus", np.asarray(v)) for k, v in feats.items()}}
    return xr.DataArray(values, dims=("stimulus", "unit"), coords=coords,
                        attrs={"feature_names": list(feats)})


@pytest.fixture(scope="module")
def factorial():
    """Five ±1 factors with standard deviations 10, 3, 2, 1.5, 0.1 (a, n1, n2, n3, b) in a
    full factorial (exactly orthogonal), rotated into 12 units; val and test hold the same
    32 cells; rows shuffled, ids not positions."""
    rng = np.random.default_rng(3)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=5)))
    z = np.vstack([signs, signs]) * np.array([10.0, 3.0, 2.0, 1.5, 0.1])
    q = np.linalg.qr(rng.normal(size=(12, 5)))[0]
    split = np.repeat(["val", "test"], 32)
    codes = (np.vstack([signs, signs]) > 0).astype(int)
    feats = dict(zip(["a", "n1", "n2", "n3", "b"], codes.T, strict=True))
    order = rng.permutation(64)
    x = _labelled(z @ q.T, feats, split, ids=rng.permutation(64) + 500)
    return x.isel(stimulus=order)


def test_low_variance_feature_needs_more_pcs_but_is_perfectly_decodable(factorial):
    out = rsa_bias.pcs_needed(factorial, max_pcs=12)
    needed = out.pcs_needed.to_series().to_dict()
    assert needed == {"a": 1.0, "n1": 2.0, "n2": 3.0, "n3": 4.0, "b": 5.0}
    acc_b = out.accuracy.sel(feature="b").values
    np.testing.assert_array_equal(acc_b[:4], 0.5)  # PCs 1-4 hold nothing of b: chance, exactly
    assert acc_b[4] == 1.0
    assert np.isnan(out.accuracy.values[:, 5:]).all()  # beyond the rank of 5
    np.testing.assert_allclose(out.variance_fraction.values[4], 1.0)
    variance = np.array([100, 9, 4, 2.25, 0.01])
    np.testing.assert_allclose(out.variance_fraction.values[:5], np.cumsum(variance) / 115.26)
    r2 = rsa_bias.feature_variance_explained(factorial, features=["a", "b"]).r2
    assert float(r2.sel(feature="b")) < 1e-3 < 0.8 < float(r2.sel(feature="a"))
    short = rsa_bias.pcs_needed(factorial, max_pcs=3, features=["a", "b"])
    assert short.sizes["n_pcs"] == 3 and np.isnan(float(short.pcs_needed.sel(feature="b")))
    assert float(short.pcs_needed.sel(feature="a")) == 1.0


def test_pcs_needed_matches_sklearn_pca_and_logistic_regression():
    rng = np.random.default_rng(0)
    n = 120
    a, b, c = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 3, n)
    x = (np.outer(2 * a - 1, rng.normal(size=10)) + 0.4 * np.outer(2 * b - 1, rng.normal(size=10))
         + np.eye(3)[c] @ rng.normal(size=(3, 10)) + rng.normal(size=(n, 10)))
    split = np.where(np.arange(n) < 60, "val", "test")
    out = rsa_bias.pcs_needed(_labelled(x, {"a": a, "b": b, "c": c}, split), target=0.8)
    fit, ev = split == "val", split == "test"
    for name, y in (("a", a), ("b", b), ("c", c)):
        want = []
        for k in range(1, 11):
            pca = PCA(n_components=k, whiten=True).fit(x[fit])
            lr = LogisticRegression(C=1.0, max_iter=1000).fit(pca.transform(x[fit]), y[fit])
            want.append(np.mean(lr.predict(pca.transform(x[ev])) == y[ev]))
        np.testing.assert_allclose(out.accuracy.sel(feature=name).values, want, atol=1e-12)
        hit = np.flatnonzero(np.array(want) >= 0.8)
        expected = hit[0] + 1.0 if hit.size else np.nan
        np.testing.assert_equal(float(out.pcs_needed.sel(feature=name)), expected)


def test_pcs_needed_refuses_bad_inputs(factorial):
    with pytest.raises(ValueError, match=r"no feature coord for \['z'\].*available"):
        rsa_bias.pcs_needed(factorial, features=["z"])
    with pytest.raises(ValueError, match="target"):
        rsa_bias.pcs_needed(factorial, target=1.5)
    with pytest.raises(ValueError, match="max_pcs"):
        rsa_bias.pcs_needed(factorial, max_pcs=0)
    with pytest.raises(ValueError, match="NaN"):
        rsa_bias.pcs_needed(factorial.where(factorial.unit != 3))
    with pytest.raises(ValueError, match="'split' coord"):
        rsa_bias.pcs_needed(factorial.drop_vars("split"))
    const = factorial.assign_coords(feature_a=("stimulus", np.zeros(64, int)))
    with pytest.raises(ValueError, match="constant on the fit split"):
        rsa_bias.pcs_needed(const, features=["a"])
    with pytest.raises(ValueError, match="carries no feature labels"):
        rsa_bias.pcs_needed(factorial.values)


def test_class_mean_direction_is_the_difference_of_class_means(factorial):
    d = rsa_bias.class_mean_direction(factorial, feature="b")
    val = factorial.where(factorial.split == "val", drop=True)
    b = val.feature_b.values
    want = val.values[b == 1].mean(0) - val.values[b == 0].mean(0)
    np.testing.assert_allclose(d.values, want, atol=1e-12)
    assert d.dims == ("unit",) and int(d.value_from) == 0 and int(d.value_to) == 1
    np.testing.assert_allclose(np.linalg.norm(d.values), 0.2)  # 2 x 0.1 along one axis
    stacked = xr.concat([factorial, 2 * factorial], dim="seed")
    np.testing.assert_allclose(rsa_bias.class_mean_direction(stacked, feature="b").values,
                               [want, 2 * want], atol=1e-12)


def test_class_mean_direction_of_a_multi_valued_feature():
    rng = np.random.default_rng(1)
    c = np.tile([0, 1, 2], 20)
    x = rng.normal(size=(60, 4)) + 3 * np.eye(4)[c]
    d = rsa_bias.class_mean_direction(_labelled(x, {"c": c}, ["val"] * 60), feature="c")
    assert d.dims == ("value_from", "value_to", "unit")
    means = np.stack([x[c == v].mean(0) for v in range(3)])
    np.testing.assert_allclose(d.sel(value_from=0, value_to=2).values, means[2] - means[0])
    np.testing.assert_allclose(d.values, -d.values.transpose(1, 0, 2), atol=1e-12)
    with pytest.raises(ValueError, match="one value"):
        rsa_bias.class_mean_direction(_labelled(x, {"k": np.zeros(60)}, ["val"] * 60),
                                      feature="k")
    with pytest.raises(ValueError, match="one feature"):
        rsa_bias.class_mean_direction(_labelled(x, {"c": c}, ["val"] * 60), feature=["c"])


def _margin_layer(strong_a: bool, seed: int = 0) -> xr.DataArray:
    """a and b independent, one encoded with margin 3, the other 0.5, plus noise units."""
    rng = np.random.default_rng(seed)
    cells = np.array(list(itertools.product([0, 1], [0, 1])) * 50)
    a, b = cells.T
    ma, mb = (3.0, 0.5) if strong_a else (0.5, 3.0)
    x = np.column_stack([ma * (2 * a - 1), mb * (2 * b - 1), np.zeros((200, 4))])
    x = x + 0.1 * rng.normal(size=x.shape)
    return _labelled(x, {"a": a, "b": b}, np.where(np.arange(200) < 100, "val", "test"))


def test_readout_follows_the_feature_with_the_larger_margin():
    strong = rsa_bias.readout_reliance(_margin_layer(True), a="a", b="b")
    assert float(strong.reliance_a) > 0.9 and float(strong.agree_accuracy) == 1.0
    np.testing.assert_allclose(float(strong.reliance_a + strong.reliance_b), 1.0)
    assert (int(strong.n_fit), int(strong.n_conflict), int(strong.n_agree)) == (50, 50, 50)
    weak = rsa_bias.readout_reliance(_margin_layer(False), a="a", b="b")
    assert float(weak.reliance_a) < 0.1
    swapped = rsa_bias.readout_reliance(_margin_layer(True), a="b", b="a")
    np.testing.assert_allclose(float(swapped.reliance_a), 1 - float(strong.reliance_a))


def test_readout_reliance_matches_a_direct_logistic_regression():
    x = _margin_layer(True, seed=4)
    x = x.copy(data=x.values + np.random.default_rng(5).normal(size=x.shape))  # noisier
    a, b, split = x.feature_a.values, x.feature_b.values, x.split.values
    train = (split == "val") & (a == b)
    conflict = (split == "test") & (a != b)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(x.values[train], a[train])
    want = np.mean(lr.predict(x.values[conflict]) == a[conflict])
    got = rsa_bias.readout_reliance(x.isel(stimulus=np.arange(200)[::-1]), a="a", b="b")
    np.testing.assert_allclose(float(got.reliance_a), want)


def test_readout_reliance_refuses_bad_inputs():
    x = _margin_layer(True)
    with pytest.raises(ValueError, match="binary"):
        rsa_bias.readout_reliance(x.assign_coords(feature_b=("stimulus", np.arange(200) % 3)),
                                  a="a", b="b")
    same = x.assign_coords(feature_b=x.feature_a)
    with pytest.raises(ValueError, match="no conflict stimuli"):
        rsa_bias.readout_reliance(same, a="a", b="b")
    opposite = x.assign_coords(feature_b=1 - x.feature_a)
    with pytest.raises(ValueError, match="agreeing stimuli of both values"):
        rsa_bias.readout_reliance(opposite, a="a", b="b")
    with pytest.raises(ValueError, match="two different"):
        rsa_bias.readout_reliance(x, a="a", b="a")
    with pytest.raises(ValueError, match=r"available: \['a', 'b'\]"):
        rsa_bias.readout_reliance(x, a="a", b="colour")
    stim = xr.Dataset(coords={c: x[c] for c in x.coords}).isel(stimulus=slice(5, None))
    with pytest.raises(ValueError, match="missing from the stimulus set"):
        rsa_bias.readout_reliance(x, a="a", b="b", stimuli=stim)


# --- steering a network --------------------------------------------------------------------

MARGINS = (0.5, 1.0, 1.5, 2.0)


def _steering_task() -> xr.Dataset:
    """Inputs (±m_a, ±m_b) for every split, a, b and margins m_a, m_b in MARGINS."""
    rows = list(itertools.product(["val", "test"], [0, 1], [0, 1], MARGINS, MARGINS))
    split, a, b, ma, mb = (np.array(c) for c in zip(*rows, strict=True))
    inputs = np.column_stack([(2 * a - 1) * ma, (2 * b - 1) * mb]).astype(np.float32)
    ids = np.random.default_rng(0).permutation(len(rows)) + 10
    return xr.Dataset({"inputs": (("stimulus", "input"), inputs)},
                      coords={"stimulus": ids, "split": ("stimulus", split),
                              "feature_a": ("stimulus", a), "feature_b": ("stimulus", b),
                              "margin_a": ("stimulus", ma)},
                      attrs={"feature_names": ["a", "b"]})


def _hand_set_mlp() -> MLP:
    """hidden_0 = relu((x_a, -x_a, x_b, -x_b)), hidden_1 = relu(identity): heads read
    a = h1 - h2 and b = h3 - h4, i.e. exactly the inputs."""
    net = MLP(2, ["a", "b"], depth=2, width=4, activation="relu")
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.hidden["hidden_0"].linear.weight.copy_(torch.tensor(
            [[1.0, 0], [-1, 0], [0, 1], [0, -1]]))
        net.hidden["hidden_1"].linear.weight.copy_(torch.eye(4))
        net.heads["a"].weight.copy_(torch.tensor([[1.0, -1, 0, 0]]))
        net.heads["b"].weight.copy_(torch.tensor([[0.0, 0, 1, -1]]))
    return net


SCALES = (0.1, 0.3, 0.5, 0.7, 1.0)


def test_steering_flips_exactly_the_stimuli_below_the_margin_bound():
    """Class means of hidden_0: (1.25, 0, ., .) for a = 1 and (0, 1.25, ., .) for a = 0, so a
    shift of s times their difference gives the a head relu(m - 1.25 s) - 1.25 s (for
    a = 1; mirrored for a = 0): a stimulus flips iff m_a < 2.5 s. The b units do not move."""
    stim, net = _steering_task(), _hand_set_mlp()
    out = steer(net, stimuli=stim, layer="hidden_0", feature="a", scales=SCALES)
    m = stim.margin_a.values[stim.split.values == "test"]
    want = [np.mean(m < 2.5 * s) for s in SCALES]
    np.testing.assert_allclose(out.flip_rate.sel(target_feature="a").values, want)
    np.testing.assert_allclose(want, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(out.flip_rate.sel(target_feature="b").values, 0.0)
    assert float(out.step_needed) == 0.5 and str(out.feature.values) == "a"
    np.testing.assert_array_equal(out.accuracy.values, [1.0, 1.0])
    h = capture(net, torch.as_tensor(stim.inputs.values[stim.split.values == "val"]),
                ["hidden_0"])["hidden_0"]
    np.testing.assert_allclose(float(out.relative_norm),
                               np.sqrt(2 * 1.25**2) / np.linalg.norm(h, axis=1).mean(), rtol=1e-6)
    coarse = steer(net, stimuli=stim, layer="hidden_0", feature="a", scales=(0.7, 0.3))
    np.testing.assert_allclose(float(coarse.step_needed), 0.3 + 0.25 / 0.5 * 0.4)
    never = steer(net, stimuli=stim, layer="hidden_0", feature="a", scales=(0.1,))
    assert np.isnan(float(never.step_needed))
    x = torch.as_tensor(stim.inputs.values)
    before = net(x)["a"].clone()
    net.train()
    steer(net, stimuli=stim, layer="hidden_1", feature="a", scales=(1.0,))
    assert net.training  # its mode is restored, and the hook removed:
    torch.testing.assert_close(net(x)["a"], before)


def test_steering_table_and_a_given_direction():
    stim, net = _steering_task(), _hand_set_mlp()
    table = steering_table(net, stimuli=stim, layer="hidden_0", scales=SCALES)
    assert list(table.feature.values) == ["a", "b"]
    diag = [table.flip_rate.sel(feature=f, target_feature=f).values for f in "ab"]
    np.testing.assert_allclose(diag, [[0, 0.25, 0.5, 0.75, 1.0]] * 2)
    np.testing.assert_array_equal(table.flip_rate.sel(feature="a", target_feature="b"), 0.0)
    np.testing.assert_array_equal(table.step_needed.values, [0.5, 0.5])
    h = capture(net, torch.as_tensor(stim.inputs.values), ["hidden_0"])["hidden_0"]
    act = xr.DataArray(h, dims=("stimulus", "unit"), coords={"stimulus": stim.stimulus.values})
    d = rsa_bias.class_mean_direction(act, stimuli=stim, feature="a")
    given = steer(net, stimuli=stim, layer="hidden_0", feature="a", scales=SCALES, direction=d)
    np.testing.assert_allclose(given.flip_rate.values, table.flip_rate.sel(feature="a").values)
    with pytest.raises(ValueError, match="direction has 3 values"):
        steer(net, stimuli=stim, layer="hidden_0", feature="a", direction=np.ones(3))


class _Tiny(nn.Module):
    """One identity layer; head c = its first three units (argmax), head d = the fourth."""

    layer_names = ["hidden"]

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 4)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.eye(4))
            self.hidden.bias.zero_()

    def layer(self, name):
        return self.hidden

    def forward(self, x):
        h = self.hidden(x)
        return {"c": h[:, :3], "d": h[:, 3]}


def test_steering_a_multi_valued_feature_moves_towards_the_next_value():
    """h = 2 e_c: at scale s a stimulus sits at 2 (1 - s) e_c + 2 s e_(c+1), whose argmax
    is c + 1 (mod 3) exactly when s > 0.5."""
    c, d = np.tile([0, 1, 2], 8), np.repeat([0, 1], 12)
    inputs = np.column_stack([2 * np.eye(3)[c], 2 * d - 1]).astype(np.float32)
    stim = xr.Dataset({"inputs": (("stimulus", "input"), inputs)},
                      coords={"split": ("stimulus", np.tile(["val", "test"], 12)),
                              "feature_c": ("stimulus", c), "feature_d": ("stimulus", d)},
                      attrs={"feature_names": ["c", "d"]})
    out = steer(_Tiny(), stimuli=stim, layer="hidden", feature="c", scales=(0.4, 0.6))
    np.testing.assert_array_equal(out.flip_rate.sel(target_feature="c").values, [0.0, 1.0])
    np.testing.assert_array_equal(out.flip_rate.sel(target_feature="d").values, [0.0, 0.0])
    np.testing.assert_allclose(float(out.step_needed), 0.5)
    with pytest.raises(ValueError, match="binary features"):
        steer(_Tiny(), stimuli=stim, layer="hidden", feature="c", direction=np.ones(4))


def test_steering_a_cnn_conv_layer_runs_on_feature_maps():
    torch.manual_seed(0)
    net = CNN(3, {"colour": 3, "big": 2}, channels=(4, 8), fc_widths=(8,))
    rng = np.random.default_rng(0)
    stim = xr.Dataset({"inputs": (("stimulus", "channel", "y", "x"),
                                  rng.normal(size=(40, 3, 8, 8)).astype(np.float32))},
                      coords={"split": ("stimulus", np.tile(["val", "test"], 20)),
                              "feature_colour": ("stimulus", np.arange(40) % 3),
                              "feature_big": ("stimulus", (np.arange(40) // 2) % 2)},
                      attrs={"feature_names": ["colour", "big"]})
    out = steering_table(net, stimuli=stim, layer="conv_0", scales=(0.5, 4.0))
    assert out.flip_rate.shape == (2, 2, 2)
    assert ((out.flip_rate >= 0) & (out.flip_rate <= 1)).all()


def test_steer_refuses_bad_inputs():
    stim, net = _steering_task(), _hand_set_mlp()
    with pytest.raises(ValueError, match=r"unknown layer 'fc'.*hidden_0"):
        steer(net, stimuli=stim, layer="fc", feature="a")
    with pytest.raises(ValueError, match=r"unknown feature 'z'.*\['a', 'b'\]"):
        steer(net, stimuli=stim, layer="hidden_0", feature="z")
    with pytest.raises(ValueError, match="scales"):
        steer(net, stimuli=stim, layer="hidden_0", feature="a", scales=(-1.0,))
    with pytest.raises(ValueError, match="'split' coord"):
        steer(net, stimuli=stim.drop_vars("split"), layer="hidden_0", feature="a")
    with pytest.raises(ValueError, match="fit_split 'train' holds no stimuli"):
        steer(net, stimuli=stim, layer="hidden_0", feature="a", fit_split="train")
    with pytest.raises(ValueError, match="NaN"):
        steer(net, stimuli=stim.assign(inputs=stim.inputs.where(stim.inputs > -1.9)),
              layer="hidden_0", feature="a")
    with pytest.raises(ValueError, match="features must be"):
        steering_table(net, stimuli=stim, layer="hidden_0", features="a")
