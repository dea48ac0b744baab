"""Random MLPs on a grid: batched outputs equal per-network references; draws are paired."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsa_bias.analysis.complexity import fourier_frequency, lz_complexity, polynomial_order
from rsa_bias.networks.random_mlp import grid_points, random_mlp_outputs, random_mlp_parameters

POINTS = grid_points(16)


def reference(points, params, act, *, residual=False, layer_norm=False):
    """One network at a time, in float64, with layer norm written out."""
    out = []
    x = torch.as_tensor(points, dtype=torch.float64)
    for i in range(params[0][0].shape[0]):
        h = x
        for j, (w, b) in enumerate(params[:-1]):
            pre = h @ w[i].T + b[i]
            if layer_norm:
                mu = pre.mean(-1, keepdim=True)
                var = ((pre - mu) ** 2).mean(-1, keepdim=True)
                pre = (pre - mu) / torch.sqrt(var + 1e-5)
            h = h + act(pre) if residual and j > 0 else act(pre)
        w, b = params[-1]
        out.append((h @ w[i].T + b[i])[:, 0])
    return torch.stack(out)


def test_grid_points_are_raster_ordered_y_then_x():
    pts = grid_points(5)
    assert pts.shape == (25, 2)
    img = pts.reshape(5, 5, 2)
    np.testing.assert_array_equal(img[:, 0, 0], np.linspace(-1, 1, 5))  # y down axis 0
    np.testing.assert_array_equal(img[0, :, 1], np.linspace(-1, 1, 5))  # x along axis 1
    assert grid_points(7, ndim=1).shape == (7, 1)


@pytest.mark.parametrize("residual, layer_norm", [(False, False), (True, False),
                                                  (False, True), (True, True)])
@pytest.mark.parametrize("act_name, act", [("tanh", torch.tanh),
                                           ("sine", torch.sin),
                                           ("gaussian", lambda t: torch.exp(-t**2 / 2))])
def test_batched_outputs_equal_a_per_network_reference(act_name, act, residual, layer_norm):
    kw = dict(n_networks=5, depth=3, width=8, scale=2.0, seed=3)
    got = random_mlp_outputs(POINTS, activation=act_name, residual=residual,
                             layer_norm=layer_norm, chunk=2, **kw)
    params = random_mlp_parameters(in_features=2, depth=3, width=8, scale=2.0, seed=3,
                                   n_networks=5)
    want = reference(POINTS, params, act, residual=residual, layer_norm=layer_norm)
    assert got.shape == (5, 256) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4 * want.abs().max())


def test_chunking_and_seed():
    a = random_mlp_outputs(POINTS, n_networks=7, activation="relu", depth=2, width=8, chunk=3)
    b = random_mlp_outputs(POINTS, n_networks=7, activation="relu", depth=2, width=8, chunk=7)
    torch.testing.assert_close(a, b)
    c = random_mlp_outputs(POINTS, n_networks=7, activation="relu", depth=2, width=8, seed=1)
    assert not torch.allclose(a, c)


def test_draws_are_paired_across_scale_depth_and_families():
    base = random_mlp_parameters(n_networks=4, in_features=2, depth=3, width=6, scale=1.0)
    big = random_mlp_parameters(n_networks=4, in_features=2, depth=3, width=6, scale=30.0)
    for (w1, b1), (w2, b2) in zip(base, big, strict=True):
        torch.testing.assert_close(w2, 30 * w1)
        torch.testing.assert_close(b2, 30 * b1)
    deeper = random_mlp_parameters(n_networks=4, in_features=2, depth=5, width=6, scale=1.0)
    for (w1, _), (w2, _) in zip(base[:-1], deeper[:3], strict=True):
        torch.testing.assert_close(w1, w2)
    torch.testing.assert_close(base[-1][0], deeper[-1][0])  # the same output layer
    assert all(float(w.abs().max()) <= 1.0 for w, _ in base)
    normal = random_mlp_parameters(n_networks=4, in_features=2, depth=3, width=6, scale=2.0,
                                   init="normal")
    scaled = random_mlp_parameters(n_networks=4, in_features=2, depth=3, width=6, scale=2.0,
                                   init="scaled_normal")
    torch.testing.assert_close(scaled[1][0], normal[1][0] / np.sqrt(6))
    torch.testing.assert_close(scaled[0][0], normal[0][0] / np.sqrt(2))


def test_uniform_draws_have_the_variance_of_u_minus_a_a():
    (w, _), *_ = random_mlp_parameters(n_networks=200, in_features=2, depth=1, width=64,
                                       scale=5.0)
    assert float(w.var()) == pytest.approx(25 / 3, rel=0.03)


def test_relu_depth_one_complexity_does_not_depend_on_the_scale():
    """A depth-1 ReLU network at scale A is A² times the one at scale 1 plus a constant
    (ReLU is positively homogeneous; the draws are paired), and the measures ignore both."""
    pts = grid_points(32)
    values = [random_mlp_outputs(pts, n_networks=6, activation="relu", depth=1, width=16,
                                 scale=a).double().numpy().reshape(6, 32, 32)
              for a in (0.1, 1.0, 100.0)]
    for measure, kw in ((fourier_frequency, {}), (polynomial_order, {"max_order": 6}),
                        (lz_complexity, {})):
        got = [measure(v, **kw) for v in values]
        np.testing.assert_allclose(got[0], got[1], atol=1e-5)
        np.testing.assert_allclose(got[2], got[1], atol=1e-5)
    # tanh is not homogeneous: its functions grow complex with the scale
    tanh = [fourier_frequency(random_mlp_outputs(
        pts, n_networks=6, activation="tanh", depth=3, width=16, scale=a
    ).double().numpy().reshape(6, 32, 32)).mean() for a in (1.0, 30.0)]
    assert tanh[1] > 1.5 * tanh[0]


@pytest.mark.parametrize("kw, match", [
    ({"init": "xavier"}, "unknown init"),
    ({"activation": "softsign"}, "unknown activation"),
    ({"scale": 0.0}, "scale"),
    ({"scale": float("nan")}, "scale"),
    ({"depth": -1}, "depth"),
    ({"n_networks": 0}, "n_networks"),
])
def test_bad_arguments_get_clear_errors(kw, match):
    args = dict(n_networks=2, activation="relu", depth=2, width=4, scale=1.0) | kw
    with pytest.raises(ValueError, match=match):
        random_mlp_outputs(POINTS, **args)


def test_bad_points_and_grid():
    with pytest.raises(ValueError, match="n_points, in_features"):
        random_mlp_outputs(np.zeros(5), n_networks=1, activation="relu", depth=1)
    with pytest.raises(ValueError, match=">= 2"):
        grid_points(1)


def test_float64_outputs_resolve_nearly_constant_networks():
    """The same networks in float64 agree with float32 to its precision; a deep sigmoid
    network at A = 0.1 varies by ~3e-5 of its value, which float32 renders as a few
    rounding steps (complex by every measure) and float64 as the smooth function it is."""
    pts = grid_points(64)
    kw = {"n_networks": 4, "activation": "tanh", "depth": 3, "scale": 1.0}
    single = random_mlp_outputs(pts, **kw)
    double = random_mlp_outputs(pts, **kw, dtype="float64")
    assert single.dtype == torch.float32 and double.dtype == torch.float64
    torch.testing.assert_close(single.double(), double, rtol=0, atol=1e-4)
    kw = {"n_networks": 4, "activation": "sigmoid", "depth": 7, "scale": 0.1}
    rounded, smooth = (random_mlp_outputs(pts, **kw, dtype=d).double().numpy().reshape(-1, 64, 64)
                       for d in ("float32", "float64"))
    assert fourier_frequency(smooth, boundary="mirror").max() < 0.05
    assert fourier_frequency(rounded, boundary="mirror").min() > 0.2
    with pytest.raises(ValueError, match="dtype"):
        random_mlp_outputs(pts, **kw, dtype="float16")
