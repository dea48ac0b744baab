"""CKA over many pieces at once: minibatches of stimuli and every pair of layers.

* :func:`minibatch_cka` — Nguyen, Raghu & Kornblith (2021): HSIC averaged over
  minibatches, then normalised; streams through any number of stimuli.
* :func:`cka_matrix` — CKA between every layer of one mapping and every layer of
  another, each layer prepared once.

Both use the estimators and kernels of :mod:`rsa_bias.analysis.similarity._hsic`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sized

import numpy as np
import xarray as xr

from rsa_bias._values import check_count
from rsa_bias.analysis._inputs import (
    ArrayLike,
    align_to,
    as_labelled,
    as_lazy_labelled,
    canonical_order,
    is_dask_backed,
    labelled_pair,
    paired_values,
    stimulus_matrix,
)
from rsa_bias.analysis.similarity._hsic import (
    _choose_form,
    _hsic,
    _normalise,
    _prepare,
    _prepared_pair,
    _Rep,
    _three_hsic,
    _validate,
    _values_in_id_order,
)
from rsa_bias.provenance import result_attrs

# --- minibatch CKA (Nguyen, Raghu & Kornblith 2021) --------------------------------------------


def _batch_rows(n: int, batch_size: int, seed: int | None) -> list[np.ndarray]:
    """The rows of each batch: ``n // batch_size`` nearly equal parts of ``0..n-1`` (shuffled
    first when ``seed`` is given), each in ascending order (HSIC does not depend on the order
    of a batch's rows, and a lazily read file is then read forward)."""
    if n // batch_size < 1:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} stimuli")
    order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
    return [np.sort(idx) for idx in np.array_split(order, n // batch_size)]


def _array_batches(x: ArrayLike, y: ArrayLike, batch_size: int, seed: int | None,
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if is_dask_backed(x) or is_dask_backed(y):
        yield from _lazy_batches(x, y, batch_size, seed)
        return
    xv, yv = _values_in_id_order(x, y)  # batches follow the ids, not the row order
    for idx in _batch_rows(xv.shape[0], batch_size, seed):
        yield xv[idx], yv[idx]


def _lazy_batches(x: ArrayLike, y: ArrayLike, batch_size: int, seed: int | None,
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The batches of Dask-backed inputs (an activation file opened with ``chunks=``), each
    read only when its turn comes: memory holds one batch, not the whole arrays."""
    a, b = labelled_pair(as_lazy_labelled(x, "x"), as_lazy_labelled(y, "y"))
    a = canonical_order(a)
    b = align_to(a, b, ("x", "y"))
    for idx in _batch_rows(a.sizes["stimulus"], batch_size, seed):
        yield (stimulus_matrix(a.isel(stimulus=idx), "x batch"),
               stimulus_matrix(b.isel(stimulus=idx), "y batch"))


_END = object()


def _zipped(x: Iterable, y: Iterable) -> Iterator[tuple[object, object]]:
    """Pairs of batches of ``x`` and ``y``; refuses iterables of different lengths, saying
    how many batches each gave (zip would silently drop the extra ones)."""
    if isinstance(x, Sized) and isinstance(y, Sized) and len(x) != len(y):
        raise ValueError(f"x has {len(x)} batches but y has {len(y)}: minibatch_cka pairs "
                         "the batches of x and y one to one")
    ys = iter(y)
    count = 0
    for xb in x:
        try:
            yb = next(ys)
        except StopIteration:
            raise ValueError(f"x gave more batches than y (at least {count + 1}); y gave "
                             f"{count}: minibatch_cka pairs the batches of x and y one to "
                             "one") from None
        yield xb, yb
        count += 1
    if next(ys, _END) is not _END:
        raise ValueError(f"y gave more batches than x (at least {count + 1}); x gave {count}: "
                         "minibatch_cka pairs the batches of x and y one to one")


def _batch_pairs(x: object, y: object, batch_size: int | None, seed: int | None,
                 ) -> Iterable[tuple[ArrayLike, ArrayLike]]:
    if batch_size is not None:
        check_count(batch_size, "batch_size")
        if y is None:
            raise ValueError("batch_size needs both x and y as arrays")
        return _array_batches(x, y, batch_size, seed)
    if isinstance(x, (np.ndarray, xr.DataArray)):
        raise ValueError("x is an array: pass batch_size=..., or pass iterables of batches")
    return x if y is None else _zipped(x, y)


def _shifts(dx: int, dy: int) -> np.ndarray:
    """Powers of two that move (HSIC(x, y), HSIC(x, x), HSIC(y, y)) by 2**dx in x, 2**dy in y."""
    return np.array([2 * dx + 2 * dy, 4 * dx, 4 * dy])


def _add(sums: np.ndarray, ref: tuple[int, int] | None, h: tuple[float, float, float],
         a: _Rep, b: _Rep) -> tuple[np.ndarray, tuple[int, int]]:
    """Add one batch's HSICs to running sums kept in units of 2**ref (the largest batch
    scales so far), so that batches rescaled by different powers of two add up exactly."""
    ref = ref or (a.log2_scale, b.log2_scale)
    new = (max(ref[0], a.log2_scale), max(ref[1], b.log2_scale))
    with np.errstate(under="ignore"):
        return (np.ldexp(sums, _shifts(ref[0] - new[0], ref[1] - new[1]))
                + np.ldexp(h, _shifts(a.log2_scale - new[0], b.log2_scale - new[1])), new)


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
    x, y : iterable of batches, or xarray.DataArray / numpy.ndarray; y optional
        One of

        * ``x`` an iterable of ``(x_batch, y_batch)`` pairs and ``y=None``;
        * ``x`` and ``y`` iterables of batches (paired one to one; iterables of
          different lengths are refused, with how many batches each gave);
        * ``x`` and ``y`` whole arrays / DataArrays with ``batch_size``: they are
          aligned on stimulus ids and cut into ``n // batch_size`` nearly equal batches
          (``numpy.array_split``) of at least ``batch_size`` stimuli each (in ascending
          stimulus-id order — the row order for numpy — or shuffled from that order when
          ``seed`` is given, so the result does not depend on the row order of labelled
          inputs). Dask-backed inputs (``read_activations(path, chunks={})``) are read one
          batch at a time.

        Batches are ``(stimulus, unit)`` arrays or DataArrays (aligned per batch).
    batch_size : int, optional
        Stimuli per batch for whole-array inputs (a positive integer, ≥ 4 for unbiased);
        required for them, and not used with iterables of batches.
    kernel, bandwidth
        As in :func:`~rsa_bias.analysis.similarity.cka`; the RBF bandwidth is set by the
        median rule within each batch.
    hsic : {"biased", "unbiased"}, default "unbiased"
        The HSIC estimator of each batch. The default differs from :func:`cka`'s
        ``"biased"``: the biased estimator's bias does not average out over minibatches, the
        unbiased one's mean is unbiased (Nguyen, Raghu & Kornblith 2021).
    seed : int, optional
        Shuffles whole-array inputs before batching. The default ``None`` differs from the
        package's ``seed=0`` because here it means "keep the input order", not a draw.

    Returns
    -------
    float
        With one batch this is :func:`~rsa_bias.analysis.similarity.cka` with the
        same estimator. Batches of extreme magnitude are rescaled by powers of two
        and their HSICs combined in common units, so the value is scale-invariant.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 10))
    >>> w, noise = rng.normal(size=(10, 5)), rng.normal(size=(100, 5))
    >>> y = x @ w + noise
    >>> round(minibatch_cka(x, y, batch_size=25), 3)
    0.513
    >>> batches = [(x[i:i + 25], y[i:i + 25]) for i in range(0, 100, 25)]
    >>> round(minibatch_cka(batches), 3)  # the same four batches, given one by one
    0.513
    """
    names = ("x batch", "y batch")
    sums, ref, count = np.zeros(3), None, 0
    for xb, yb in _batch_pairs(x, y, batch_size, seed):
        xv, yv = paired_values(xb, yb, names=names)
        a, b = _prepared_pair(xv, yv, kernel=kernel, hsic=hsic, bandwidth=bandwidth,
                              names=names)
        sums, ref = _add(sums, ref, _three_hsic(a, b, hsic), a, b)
        count += 1
    if count == 0:
        raise ValueError("no batches were given")
    return _normalise(*(sums / count))


# --- CKA between every pair of layers ----------------------------------------------------------


def _prepare_layers(layers: Mapping[str, ArrayLike], ref: xr.DataArray, ref_name: str, *,
                    kernel: str, hsic: str, bandwidth: float) -> dict[str, tuple[_Rep, float]]:
    out = {}
    for name, layer in layers.items():
        aligned = align_to(ref, as_labelled(layer, name=str(name)), (ref_name, name))
        values = stimulus_matrix(aligned, str(name))
        _validate(values.shape[0], kernel=kernel, hsic=hsic, bandwidth=bandwidth)
        form = _choose_form(kernel, values.shape[0], values.shape[1], values.shape[1])
        rep = _prepare(values, kernel=kernel, hsic=hsic, bandwidth=bandwidth, form=form,
                       name=str(name))
        out[name] = (rep, _hsic(rep, rep, hsic))
    return out


def _streamed_matrix(layers_a, layers_b, **opts) -> xr.DataArray:
    """``cka_matrix`` of Dask-backed layers: each pair streamed by ``cka`` (bounded memory;
    every pair reads its two layers again)."""
    from rsa_bias.analysis.similarity.cka import cka

    names_b = list(layers_a if layers_b is None else layers_b)
    values = np.empty((len(layers_a), len(names_b)))
    for i, xa in enumerate(layers_a.values()):
        for j, nb in enumerate(names_b):
            if layers_b is None and j < i:
                values[i, j] = values[j, i]
                continue
            values[i, j] = cka(xa, (layers_a if layers_b is None else layers_b)[nb], **opts)
    return xr.DataArray(values, dims=("layer_a", "layer_b"), name="cka",
                        coords={"layer_a": list(layers_a), "layer_b": names_b},
                        attrs=result_attrs("cka_matrix", **opts))


def cka_matrix(layers_a: Mapping[str, ArrayLike], layers_b: Mapping[str, ArrayLike] | None = None,
               *, kernel: str = "linear", hsic: str = "biased",
               bandwidth: float = 0.5) -> xr.DataArray:
    """CKA between every layer of ``layers_a`` and every layer of ``layers_b``.

    Each layer is prepared once (centred features and its self-HSIC, or its
    centred Gram matrix for the RBF kernel or when it has more units than stimuli,
    roughly: the cheaper form); each pair then costs one cross product.

    Parameters
    ----------
    layers_a : mapping of str to xarray.DataArray or numpy.ndarray
        Layer name -> DataArray ("stimulus", "unit") or array ``(n, p)``. All layers
        are aligned on the stimulus ids of the first layer of ``layers_a``; must not be
        empty.
    layers_b : mapping of str to xarray.DataArray or numpy.ndarray, optional
        The layers to compare with, in the same form; ``None`` compares ``layers_a``
        with itself (each pair computed once).
    kernel, hsic, bandwidth
        As in :func:`~rsa_bias.analysis.similarity.cka`. Dask-backed (chunked) layers are
        streamed pair by pair through :func:`~rsa_bias.analysis.similarity.cka` (linear
        kernel only), in bounded memory.

    Returns
    -------
    xarray.DataArray with dims ("layer_a", "layer_b")
        CKA of every pair of layers, labelled with the layer names; flat attrs record
        ``kernel``, ``hsic`` and ``bandwidth``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, w, noise = (rng.normal(size=s) for s in [(100, 10), (10, 5), (100, 5)])
    >>> m = cka_matrix({"a": x, "b": x @ w + noise})
    >>> m.dims, m.values.round(3).tolist()
    (('layer_a', 'layer_b'), [[1.0, 0.488], [0.488, 1.0]])
    """
    if not layers_a:
        raise ValueError("layers_a is empty")
    if any(is_dask_backed(v) for v in [*layers_a.values(), *(layers_b or {}).values()]):
        return _streamed_matrix(layers_a, layers_b, kernel=kernel, hsic=hsic,
                                bandwidth=bandwidth)
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
                        attrs=result_attrs("cka_matrix", **opts))
