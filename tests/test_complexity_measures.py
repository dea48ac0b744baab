"""The complexity measures on functions with known answers, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from numpy.polynomial import legendre
from scipy.ndimage import uniform_filter

from rsa_bias.analysis.complexity import (
    fourier_frequency,
    lz76,
    lz_complexity,
    polynomial_order,
    random_reference,
)

N = 64
X = np.linspace(-1, 1, N)
PERIODIC = np.arange(N) / N  # one period over the grid


def stripes(kx: int, ky: int = 0) -> np.ndarray:
    """A plane wave of ``kx`` cycles along x and ``ky`` along y, periodic on the grid."""
    return np.cos(2 * np.pi * (ky * PERIODIC[:, None] + kx * PERIODIC[None, :]) + 0.3)


def fourier_reference(f: np.ndarray) -> float:
    """The definition over the full fftn spectrum, written out with loops over frequencies."""
    mag = np.abs(np.fft.fftn(f))
    ky, kx = np.fft.fftfreq(f.shape[0]) * f.shape[0], np.fft.fftfreq(f.shape[1]) * f.shape[1]
    num = den = 0.0
    top = 0.0
    for i, a in enumerate(ky):
        for j, b in enumerate(kx):
            r = round(float(np.hypot(a, b)))
            top = max(top, r)
            if i == 0 and j == 0:
                continue
            num += mag[i, j] * r
            den += mag[i, j]
    return num / den / top


def test_sinusoids_are_ordered_by_frequency_and_give_k_over_max_radius():
    ks = [1, 2, 4, 8, 16]
    got = fourier_frequency(np.stack([stripes(k) for k in ks]))
    top = round(np.hypot(N // 2, N // 2))
    np.testing.assert_allclose(got, np.array(ks) / top, atol=1e-12)
    assert np.all(np.diff(got) > 0)
    # a diagonal wave of (3, 4) cycles has radius 5
    assert fourier_frequency(stripes(3, 4)) == pytest.approx(5 / top, abs=1e-12)


def test_fourier_matches_the_full_spectrum_definition_on_random_and_odd_grids():
    rng = np.random.default_rng(0)
    for shape in [(16, 16), (15, 20), (9, 8)]:
        f = rng.standard_normal(shape) + np.linspace(0, 3, shape[1])
        assert fourier_frequency(f) == pytest.approx(fourier_reference(f), rel=1e-12)


def test_polynomials_of_known_order():
    px = legendre.legval(X, [0, 0, 0, 1])   # P_3(x)
    py = legendre.legval(X, [0, 0, 1])      # P_2(y)
    assert polynomial_order(py[:, None] * px[None, :], max_order=10) == pytest.approx(
        5 / 20, abs=1e-10)
    assert polynomial_order(np.broadcast_to(px, (N, N)), max_order=5) == pytest.approx(
        3 / 10, abs=1e-10)
    # a sum of P_1(x) and P_4(y) with equal coefficients: mean order (1 + 4) / 2 over 2 * 6
    mixed = legendre.legval(X, [0, 1])[None, :] + legendre.legval(X, [0, 0, 0, 0, 1])[:, None]
    assert polynomial_order(mixed, max_order=6) == pytest.approx(2.5 / 12, abs=1e-10)
    # in 1-D: P_7 with max_order 10
    assert polynomial_order(legendre.legval(X, [0] * 7 + [1]), ndim=1,
                            max_order=10) == pytest.approx(0.7, abs=1e-10)


def test_polynomial_order_matches_a_per_function_lstsq_fit():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((3, 20, 24))
    vy, vx = (legendre.legvander(np.linspace(-1, 1, n), 4) for n in (20, 24))
    basis = np.einsum("yi,xj->yxij", vy, vx).reshape(20 * 24, -1)
    total = np.add.outer(np.arange(5), np.arange(5)).ravel()
    want = []
    for g in f:
        c = np.abs(np.linalg.lstsq(basis, g.ravel(), rcond=None)[0])
        c[0] = 0
        want.append(c @ total / c.sum() / 8)
    np.testing.assert_allclose(polynomial_order(f, max_order=4), want, rtol=1e-10)


def test_lz76_counts_the_phrases_of_kaspar_and_schuster():
    assert lz76("0001101001000101") == 6        # 0 . 001 . 10 . 100 . 1000 . 101
    assert lz76([0, 1, 0, 1, 0, 1, 0, 1]) == 3  # 0 . 1 . 010101
    assert lz76(b"aaaa") == 2 and lz76("a") == 1 and lz76([]) == 0
    assert lz76("abcabcabcd") == 4              # a . b . c . abcabcd (copy, overlapping)
    rng = np.random.default_rng(2)
    seq = rng.integers(0, 2, 500)
    assert lz76(seq) == lz76("".join(map(str, seq)))


def lz76_reference(s: str) -> int:
    """Phrase count by brute force: at each start, the longest earlier-starting copy."""
    n, i, count = len(s), 0, 0
    while i < n:
        length = 0
        while i + length < n and any(s[j:j + length + 1] == s[i:i + length + 1]
                                     for j in range(i)):
            length += 1
        count += 1
        i += length + 1
    return count


def test_lz76_matches_a_brute_force_parse():
    rng = np.random.default_rng(3)
    for levels, n in [(2, 60), (3, 80), (5, 40), (2, 1), (2, 2)]:
        s = "".join(map(str, rng.integers(0, levels, n)))
        assert lz76(s) == lz76_reference(s), s


def test_constant_and_random_fields_lie_at_the_ends_of_every_scale():
    rng = np.random.default_rng(4)
    noise = rng.uniform(size=(20, N, N))
    const = np.full((N, N), 3.0)
    for measure, factor in ((fourier_frequency, 4), (polynomial_order, 2)):
        assert measure(const) == 0.0
        assert 0.45 < measure(noise).mean() < 0.65
        assert measure(noise).min() > factor * measure(stripes(2))
    assert lz_complexity(const) < 0.01
    assert lz_complexity(noise).mean() == pytest.approx(1.0, abs=0.05)
    assert lz_complexity(stripes(2)) < 0.1
    # smoother noise is more compressible, monotonically in the smoothing width
    smooth = [lz_complexity(uniform_filter(noise, size=(1, s, s), mode="wrap")).mean()
              for s in (1, 4, 16)]
    assert smooth[0] > smooth[1] > smooth[2] > 0.1


def test_binary_lz_sees_one_level_set_and_more_levels_see_the_rest():
    # x and x * (1 + ripple along y) have the same sign everywhere and a mid-range of 0, so
    # binarised they are the same image; the ripple shows only with more levels
    ramp = np.broadcast_to(X, (N, N))
    ripple = ramp * (1 + 0.5 * np.sin(2 * np.pi * 6 * PERIODIC))[:, None]
    binary = (ramp > 0).astype(int).ravel()
    want = lz76(binary) / random_reference(N * N, 2)
    assert lz_complexity(ramp) == pytest.approx(want)
    assert lz_complexity(ripple) == pytest.approx(want)
    assert lz_complexity(ripple, levels=8) > 2 * lz_complexity(ramp, levels=8)
    # 8 levels: the ends of the scale hold, and 8-level symbols are parsed as the sequence
    rng = np.random.default_rng(9)
    noise = rng.uniform(size=(10, N, N))
    assert lz_complexity(np.full((N, N), 2.0), levels=8) < 0.01
    assert lz_complexity(noise, levels=8).mean() == pytest.approx(1.0, abs=0.05)
    symbols = np.clip(np.floor((ripple - ripple.min()) / np.ptp(ripple) * 8), 0, 7)
    assert lz_complexity(ripple, levels=8) == pytest.approx(
        lz76(symbols.astype(int).ravel()) / random_reference(N * N, 8))


def test_measures_are_invariant_to_offset_and_positive_scale():
    rng = np.random.default_rng(5)
    f = rng.standard_normal((4, 32, 32)).cumsum(axis=2)
    for measure in (fourier_frequency, polynomial_order, lz_complexity):
        kw = {"max_order": 6} if measure is polynomial_order else {}
        np.testing.assert_allclose(measure(7.5 * f - 3.0, **kw), measure(f, **kw), atol=1e-12)


def test_lz_complexity_of_tokens_equals_the_phrase_count_over_the_random_reference():
    rng = np.random.default_rng(6)
    tokens = rng.integers(3, 9, size=(5, 128))   # uses 6 of a 16-token vocabulary
    got = lz_complexity(tokens, ndim=1, levels=16)
    want = [lz76(row) / random_reference(128, 16) for row in tokens]
    np.testing.assert_allclose(got, want)
    repeated = np.tile([1, 2, 3, 4], 32)
    assert lz_complexity(repeated, ndim=1, levels=16) < 0.15


def test_leading_axes_and_dataarray_labels_are_kept():
    rng = np.random.default_rng(7)
    f = rng.standard_normal((2, 3, 16, 16))
    assert fourier_frequency(f).shape == (2, 3)
    da = xr.DataArray(f, dims=("activation", "network", "y", "x"),
                      coords={"activation": ["relu", "tanh"], "network": [5, 6, 7]})
    out = polynomial_order(da, max_order=3)
    assert out.dims == ("activation", "network")
    assert list(out["network"].values) == [5, 6, 7]
    np.testing.assert_allclose(out.values, polynomial_order(f, max_order=3))
    assert out.attrs["function"] == "polynomial_order"
    assert isinstance(lz_complexity(f[0, 0]), float)


@pytest.mark.parametrize("call, match", [
    (lambda: fourier_frequency(np.zeros(5), ndim=2), "ndim=1"),
    (lambda: fourier_frequency(np.zeros((4, 4)), ndim=3), "unknown ndim"),
    (lambda: polynomial_order(np.zeros((8, 8)), max_order=10), "max_order"),
    (lambda: polynomial_order(np.zeros((8, 8)), max_order=0), "max_order"),
    (lambda: lz_complexity(np.zeros((8, 8)), levels=1), "levels"),
    (lambda: lz_complexity(np.zeros((8, 8)), levels=300), "at most 255"),
    (lambda: fourier_frequency(np.full((4, 4), np.nan)), "NaN"),
    (lambda: fourier_frequency(np.zeros((4, 4), complex)), "Complex"),
    (lambda: lz76(np.zeros((2, 2))), "1-D"),
    (lambda: lz76([0.5, 1]), "integers"),
])
def test_bad_input_gets_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mirror_boundary_removes_the_wrap_around_step():
    ramp = np.broadcast_to(X, (N, N))
    # periodic: the ramp's wrap-around is a step, whose spectrum decays slowly
    assert fourier_frequency(ramp) > 0.15
    assert fourier_frequency(ramp, boundary="mirror") < 0.05
    # mirror = the periodic measure of the explicitly mirrored function
    rng = np.random.default_rng(8)
    f = rng.standard_normal((3, 10, 12)).cumsum(axis=1)
    ext = np.concatenate([f, f[:, :, ::-1]], axis=2)
    ext = np.concatenate([ext, ext[:, ::-1, :]], axis=1)
    np.testing.assert_allclose(fourier_frequency(f, boundary="mirror"), fourier_frequency(ext),
                               rtol=1e-12)
    waves = np.stack([np.broadcast_to(np.cos(np.pi * k * (X + 1) / 2), (N, N)) for k in (2, 8)])
    assert np.all(np.diff(fourier_frequency(waves, boundary="mirror")) > 0)
    with pytest.raises(ValueError, match="unknown boundary"):
        fourier_frequency(ramp, boundary="wrap")
