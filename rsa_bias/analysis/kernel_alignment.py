"""Centred kernel alignment (CKA) with biased and unbiased HSIC, minibatches and inference.

For representations X (n × p) and Y (n × q) of the same n stimuli, with Gram
matrices K, L,

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L)).

Two HSIC estimators are offered (``hsic=...``), because "CKA" means different
numbers in different packages:

``"biased"``
    Gretton et al. (2005): HSIC = tr(K H L H) / (n − 1)², H = I − 11'/n. This is
    the CKA of Kornblith et al. (2019). For the linear kernel it is computed in
    feature space, tr(K H L H) = ||Yc'Xc||_F², never forming an n × n matrix.
``"unbiased"``
    Song et al. (2012): with K̃, L̃ the Gram matrices with their diagonal set to
    zero,

        HSIC_u = [tr(K̃L̃) + 1'K̃1 · 1'L̃1 / ((n−1)(n−2)) − 2/(n−2) · 1'K̃L̃1] / (n(n−3)).

    Needs n ≥ 4. Its expectation is 0 for independent inputs, so CKA with it is
    ~0 for unrelated representations (the biased one is not) and can be
    negative; negative values are returned as they are. For the linear kernel
    it is also computed exactly in feature space: with centred X (HSIC_u is
    invariant to translating either input), k_i = ||x_i||², 1'K̃1 = −Σk and
    K̃1 = −k, so only ||Yc'Xc||_F² and the row norms are needed.

If a self-HSIC in the denominator is not positive (a constant input, or an
unbiased estimate on too few stimuli), CKA is undefined: :func:`cka` raises a
``ValueError`` naming the input; the resampling functions record ``NaN`` for
such replicates and warn with their count.

Kernels (``kernel=...``): ``"linear"`` and ``"rbf"``, exp(−d²/(2σ²)) with
σ² = bandwidth² × median of the squared distances over the full n × n matrix
(diagonal zeros included), as in Kornblith et al.'s reference code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from rsa_bias.analysis._align import align_stimuli, as_labelled, finite_values

ArrayLike = np.ndarray | xr.DataArray


# --- inputs ------------------------------------------------------------------------------------


def _matrix(x: xr.DataArray, name: str) -> np.ndarray:
    """``(stimulus, unit)`` float64 values of a labelled input, refusing NaN/inf."""
    other = [d for d in x.dims if d != "stimulus"]
    if len(other) > 1:
        raise ValueError(f"{name} has dims {x.dims}; expected (stimulus, unit): select or stack "
                         f"the extra dims {other[1:]} first")
    values = finite_values(x.transpose("stimulus", *other), name)
    return values.reshape(values.shape[0], -1)


def _align_to(ref: xr.DataArray, other: xr.DataArray, names: tuple[str, str]) -> xr.DataArray:
    """``other`` in the stimulus order of ``ref`` (no copy when the ids already match)."""
    ids_ref, ids = ref["stimulus"].values, other["stimulus"].values
    if np.array_equal(ids_ref, ids) and len(np.unique(ids)) == len(ids):
        return other
    return align_stimuli(ref, other, names=list(names))[1]


def _labelled_pair(x: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("x", "y"),
                   ) -> tuple[xr.DataArray, xr.DataArray]:
    a = as_labelled(x, name=names[0])
    b = as_labelled(y, name=names[1])
    return a, _align_to(a, b, names)


def paired_values(x: ArrayLike, y: ArrayLike, names: tuple[str, str] = ("x", "y"),
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``(stimulus, unit)`` arrays of ``x`` and ``y``, aligned on stimulus ids."""
    a, b = _labelled_pair(x, y, names)
    return _matrix(a, names[0]), _matrix(b, names[1])


def _check_choice(value: str, registry: Mapping[str, object], what: str) -> None:
    if value not in registry:
        raise ValueError(f"unknown {what} {value!r}; valid: {sorted(registry)}")


# --- kernels -----------------------------------------------------------------------------------


def squared_distances(xc: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows, clipped at 0 with an exact zero diagonal."""
    gram = xc @ xc.T
    norms = np.diag(gram).copy()
    d = norms[:, None] + norms[None, :] - 2.0 * gram
    np.maximum(d, 0.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def _linear_gram(xc: np.ndarray, bandwidth: float) -> np.ndarray:
    return xc @ xc.T


def _rbf_gram(xc: np.ndarray, bandwidth: float) -> np.ndarray:
    d = squared_distances(xc)
    median = float(np.median(d))
    if median <= 0:
        raise ValueError("rbf kernel: the median squared distance between stimuli is 0 (at least "
                         "half of the stimulus pairs coincide), so the median bandwidth is "
                         "undefined; use kernel='linear' or remove duplicate stimuli")
    return np.exp(-d / (2.0 * bandwidth**2 * median))


KERNELS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "linear": _linear_gram,
    "rbf": _rbf_gram,
}


# --- HSIC estimators on prepared representations -----------------------------------------------


@dataclass(frozen=True)
class _Rep:
    """One representation prepared for HSIC: centred features or a Gram matrix.

    ``gram`` is H K H for the biased estimator and K̃ (zero diagonal) for the
    unbiased one; ``rows`` = K̃1 and ``total`` = 1'K̃1 (unbiased only). In
    feature form (linear kernel, centred features) ``rows`` = −||x_i||².
    """

    n: int
    feats: np.ndarray | None = None
    gram: np.ndarray | None = None
    rows: np.ndarray | None = None
    total: float = 0.0


def _double_centre(gram: np.ndarray) -> np.ndarray:
    rows = gram.mean(axis=0)
    return gram - rows[:, None] - rows[None, :] + rows.mean()


def _biased_features(xc: np.ndarray) -> _Rep:
    return _Rep(xc.shape[0], feats=xc)


def _biased_gram(gram: np.ndarray) -> _Rep:
    return _Rep(gram.shape[0], gram=_double_centre(gram))


def _unbiased_features(xc: np.ndarray) -> _Rep:
    norms = np.einsum("ij,ij->i", xc, xc)
    return _Rep(xc.shape[0], feats=xc, rows=-norms, total=-float(norms.sum()))


def _unbiased_gram(gram: np.ndarray) -> _Rep:
    gram = gram.copy()
    np.fill_diagonal(gram, 0.0)
    rows = gram.sum(axis=1)
    return _Rep(gram.shape[0], gram=gram, rows=rows, total=float(rows.sum()))


def _biased_finish(a: _Rep, b: _Rep, inner: float) -> float:
    return inner / (a.n - 1) ** 2


def _unbiased_finish(a: _Rep, b: _Rep, inner: float) -> float:
    n = a.n
    rows = float(a.rows @ b.rows)
    return (inner + a.total * b.total / ((n - 1) * (n - 2)) - 2.0 * rows / (n - 2)) / (n * (n - 3))


@dataclass(frozen=True)
class _Estimator:
    features: Callable[[np.ndarray], _Rep]
    gram: Callable[[np.ndarray], _Rep]
    finish: Callable[[_Rep, _Rep, float], float]
    min_stimuli: int


HSIC_ESTIMATORS: dict[str, _Estimator] = {
    "biased": _Estimator(_biased_features, _biased_gram, _biased_finish, 2),
    "unbiased": _Estimator(_unbiased_features, _unbiased_gram, _unbiased_finish, 4),
}


def _inner(a: _Rep, b: _Rep) -> float:
    """tr(K L) of the prepared (centred / zero-diagonal) Gram matrices."""
    if a.feats is not None and b.feats is not None:
        cross = a.feats.T @ a.feats if a is b else b.feats.T @ a.feats
        value = float(np.vdot(cross, cross))
        return value - float(a.rows @ b.rows) if a.rows is not None else value
    if a.gram is not None and b.gram is not None:
        return float(np.vdot(a.gram, b.gram))
    f, g = (a, b) if a.feats is not None else (b, a)
    # The zero diagonal of an unbiased K̃ makes the diag(k) correction vanish.
    return float(np.vdot(f.feats, g.gram @ f.feats))


def _hsic(a: _Rep, b: _Rep, hsic: str) -> float:
    return HSIC_ESTIMATORS[hsic].finish(a, b, _inner(a, b))


def _choose_form(kernel: str, n: int, p: int, q: int) -> str:
    """Feature space when it is cheaper (roughly: stimuli outnumber units), else Gram."""
    if kernel == "linear" and p * q + p * p + q * q <= n * (p + q):
        return "features"
    return "gram"


def _prepare(values: np.ndarray, *, kernel: str, hsic: str, bandwidth: float,
             form: str) -> _Rep:
    est = HSIC_ESTIMATORS[hsic]
    xc = values - values.mean(axis=0)
    if form == "features":
        if kernel != "linear":
            raise ValueError(f"the feature-space form needs kernel='linear', not {kernel!r}")
        return est.features(xc)
    return est.gram(KERNELS[kernel](xc, bandwidth))


def _validate(n: int, *, kernel: str, hsic: str, bandwidth: float) -> None:
    _check_choice(kernel, KERNELS, "kernel")
    _check_choice(hsic, HSIC_ESTIMATORS, "hsic estimator")
    need = HSIC_ESTIMATORS[hsic].min_stimuli
    if n < need:
        raise ValueError(f"hsic={hsic!r} needs at least {need} stimuli, got {n}"
                         + ("; use hsic='biased' for fewer" if hsic == "unbiased" else ""))
    if kernel == "rbf" and not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")


def _normalise(hxy: float, hxx: float, hyy: float, *, names: tuple[str, str] = ("x", "y"),
               strict: bool = True) -> float:
    """HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y)); each self-HSIC must be positive."""
    for value, name in ((hxx, names[0]), (hyy, names[1])):
        if not value > 0:
            if not strict:
                return float("nan")
            raise ValueError(
                f"HSIC({name}, {name}) = {value:.3g} is not positive, so CKA is undefined: "
                f"{name} is constant over stimuli, or (hsic='unbiased') there are too few "
                "stimuli to estimate its self-similarity; use more stimuli or hsic='biased'")
    return float(hxy / np.sqrt(hxx) / np.sqrt(hyy))


def _three_hsic(a: _Rep, b: _Rep, hsic: str) -> tuple[float, float, float]:
    return _hsic(a, b, hsic), _hsic(a, a, hsic), _hsic(b, b, hsic)


def _prepared_pair(xv: np.ndarray, yv: np.ndarray, *, kernel: str, hsic: str,
                   bandwidth: float, form: str | None = None) -> tuple[_Rep, _Rep]:
    _validate(xv.shape[0], kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    form = form or _choose_form(kernel, xv.shape[0], xv.shape[1], yv.shape[1])
    opts = {"kernel": kernel, "hsic": hsic, "bandwidth": bandwidth, "form": form}
    return _prepare(xv, **opts), _prepare(yv, **opts)


def _cka_arrays(xv: np.ndarray, yv: np.ndarray, *, kernel: str = "linear", hsic: str = "biased",
                bandwidth: float = 0.5, form: str | None = None, strict: bool = True) -> float:
    """CKA of aligned float arrays; ``form`` forces "features" or "gram" (default: cheaper)."""
    a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth, form=form)
    return _normalise(*_three_hsic(a, b, hsic), strict=strict)


# --- public point estimates --------------------------------------------------------------------


def hsic(x: ArrayLike, y: ArrayLike, *, kernel: str = "linear", hsic: str = "biased",
         bandwidth: float = 0.5) -> float:
    """Hilbert–Schmidt independence criterion between two representations.

    Parameters
    ----------
    x, y : xarray.DataArray with dims ("stimulus", "unit"), or (n, p) / (n, q) arrays
        Labelled inputs are aligned on stimulus ids; differing id sets are refused.
    kernel : ``"linear"`` or ``"rbf"`` (median-rule bandwidth, see module docstring).
    hsic : ``"biased"`` (tr(KHLH)/(n−1)²) or ``"unbiased"`` (Song et al. 2012; n ≥ 4).
    bandwidth : RBF σ as a fraction of the median pairwise distance.

    Returns
    -------
    float
        The estimate; the unbiased one can be negative.
    """
    xv, yv = paired_values(x, y)
    a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth)
    return _hsic(a, b, hsic)


def cka(x: ArrayLike, y: ArrayLike, *, kernel: str = "linear", hsic: str = "biased",
        bandwidth: float = 0.5) -> float:
    """Centred kernel alignment between two representations of the same stimuli.

    Parameters
    ----------
    x, y : xarray.DataArray with dims ("stimulus", "unit"), or (n, p) / (n, q) arrays
        Any name works for the second dim (``unit``, ``voxel``, ``neuron``).
        Labelled inputs are aligned on stimulus ids; differing id sets are
        refused with an error naming the missing ids.
    kernel : ``"linear"`` or ``"rbf"``.
    hsic : ``"biased"`` (Kornblith et al. 2019) or ``"unbiased"`` (Song et al.
        2012; needs ≥ 4 stimuli, ~0 for independent inputs, can be negative).
    bandwidth : RBF σ as a fraction of the median pairwise distance
        (σ² = bandwidth² · median of the squared distances).

    Returns
    -------
    float
        CKA; 1 for identical inputs. Linear CKA is computed in feature space
        (||Yc'Xc||²_F / (||Xc'Xc||_F ||Yc'Yc||_F) for the biased estimator) when
        that is cheaper — roughly when stimuli outnumber units — and from the
        n × n Gram matrices otherwise; both give the same number.

    Raises
    ------
    ValueError
        Unknown kernel/estimator (listing valid ones), NaN/inf values,
        mismatched stimuli, too few stimuli, or a non-positive self-HSIC
        (constant input; too few stimuli for the unbiased estimator).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 10))
    >>> round(cka(x, 3 * x @ np.linalg.qr(rng.normal(size=(10, 10)))[0]), 6)
    1.0
    >>> abs(cka(x, rng.normal(size=(200, 10)), hsic="unbiased")) < 0.05
    True
    """
    xv, yv = paired_values(x, y)
    return _cka_arrays(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth)


# --- minibatch CKA (Nguyen, Raghu & Kornblith 2021) --------------------------------------------


def _array_batches(x: ArrayLike, y: ArrayLike, batch_size: int, seed: int | None,
                   ) -> Iterator[tuple[xr.DataArray, xr.DataArray]]:
    a, b = _labelled_pair(x, y)
    n = a.sizes["stimulus"]
    if batch_size < 1 or n // batch_size < 1:
        raise ValueError(f"batch_size={batch_size} does not fit {n} stimuli")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    for idx in np.array_split(order, n // batch_size):
        yield a.isel(stimulus=idx), b.isel(stimulus=idx)


def _batch_pairs(x: object, y: object, batch_size: int | None, seed: int | None,
                 ) -> Iterable[tuple[ArrayLike, ArrayLike]]:
    if batch_size is not None:
        if y is None:
            raise ValueError("batch_size needs both x and y as arrays")
        return _array_batches(x, y, batch_size, seed)
    if isinstance(x, (np.ndarray, xr.DataArray)):
        raise ValueError("x is an array: pass batch_size=..., or pass iterables of batches")
    return x if y is None else zip(x, y, strict=True)


def minibatch_cka(x: object, y: object = None, *, batch_size: int | None = None,
                  kernel: str = "linear", hsic: str = "unbiased", bandwidth: float = 0.5,
                  seed: int | None = None) -> float:
    """Minibatch CKA: HSIC averaged over minibatches, then normalised.

    Nguyen, Raghu & Kornblith (2021):
    ``CKA = mean_b HSIC(X_b, Y_b) / sqrt(mean_b HSIC(X_b, X_b) · mean_b HSIC(Y_b, Y_b))``
    with the unbiased HSIC on each minibatch b. Only three running sums are kept
    and no matrix larger than a batch is formed (batch × batch for the Gram
    form, units × units in feature space), so it streams through any number of
    stimuli. Every batch counts equally, whatever its size.

    Parameters
    ----------
    x, y : one of
        * ``x`` an iterable of ``(x_batch, y_batch)`` pairs and ``y=None``;
        * ``x`` and ``y`` iterables of batches (zipped, must be equally long);
        * ``x`` and ``y`` whole arrays / DataArrays with ``batch_size``: they are
          aligned on stimulus ids and cut into ``n // batch_size`` batches of
          ``batch_size`` or ``batch_size + 1`` stimuli (in order, or shuffled
          when ``seed`` is given).
        Batches are ``(stimulus, unit)`` arrays or DataArrays (aligned per batch).
    batch_size : stimuli per batch for whole-array inputs (≥ 4 for unbiased).
    kernel, hsic, bandwidth : as in :func:`cka`; the RBF bandwidth is set by the
        median rule within each batch.
    seed : shuffles whole-array inputs before batching.

    Returns
    -------
    float
        With one batch this is :func:`cka` with the same estimator.
    """
    sums, count = np.zeros(3), 0
    for xb, yb in _batch_pairs(x, y, batch_size, seed):
        xv, yv = paired_values(xb, yb, names=("x batch", "y batch"))
        a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth)
        sums += _three_hsic(a, b, hsic)
        count += 1
    if count == 0:
        raise ValueError("no batches were given")
    return _normalise(*(sums / count))


# --- CKA between every pair of layers ----------------------------------------------------------


def _prepare_layers(layers: Mapping[str, ArrayLike], ref: xr.DataArray, ref_name: str, *,
                    kernel: str, hsic: str, bandwidth: float) -> dict[str, tuple[_Rep, float]]:
    out = {}
    for name, layer in layers.items():
        values = _matrix(_align_to(ref, as_labelled(layer, name=str(name)), (ref_name, name)),
                         str(name))
        _validate(values.shape[0], kernel=kernel, hsic=hsic, bandwidth=bandwidth)
        form = _choose_form(kernel, values.shape[0], values.shape[1], values.shape[1])
        rep = _prepare(values, kernel=kernel, hsic=hsic, bandwidth=bandwidth, form=form)
        out[name] = (rep, _hsic(rep, rep, hsic))
    return out


def cka_matrix(layers_a: Mapping[str, ArrayLike], layers_b: Mapping[str, ArrayLike] | None = None,
               *, kernel: str = "linear", hsic: str = "biased",
               bandwidth: float = 0.5) -> xr.DataArray:
    """CKA between every layer of ``layers_a`` and every layer of ``layers_b``.

    Each layer is prepared once (centred features and its self-HSIC, or its
    centred Gram matrix when it has more units than stimuli); each pair then
    costs one cross product.

    Parameters
    ----------
    layers_a, layers_b : mapping of layer name -> DataArray ("stimulus", "unit") or array
        All layers are aligned on the stimulus ids of the first layer of
        ``layers_a``. ``layers_b=None`` compares ``layers_a`` with itself.
    kernel, hsic, bandwidth : as in :func:`cka`.

    Returns
    -------
    xarray.DataArray with dims ("layer_a", "layer_b")
    """
    if not layers_a:
        raise ValueError("layers_a is empty")
    ref_name = next(iter(layers_a))
    ref = as_labelled(layers_a[ref_name], name=str(ref_name))
    opts = {"kernel": kernel, "hsic": hsic, "bandwidth": bandwidth}
    reps_a = _prepare_layers(layers_a, ref, ref_name, **opts)
    reps_b = reps_a if layers_b is None else _prepare_layers(layers_b, ref, ref_name, **opts)
    values = np.empty((len(reps_a), len(reps_b)))
    for i, (ra, ha) in enumerate(reps_a.values()):
        for j, (rb, hb) in enumerate(reps_b.values()):
            if layers_b is None and j < i:
                values[i, j] = values[j, i]
                continue
            values[i, j] = _normalise(_hsic(ra, rb, hsic), ha, hb)
    return xr.DataArray(values, dims=("layer_a", "layer_b"), name="cka",
                        coords={"layer_a": list(reps_a), "layer_b": list(reps_b)},
                        attrs={"method": "cka_matrix", **opts})


# --- inference ---------------------------------------------------------------------------------
