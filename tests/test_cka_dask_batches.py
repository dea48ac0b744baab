"""minibatch_cka on Dask-backed inputs: read one batch at a time, with the in-memory value."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rsa_bias.analysis.similarity.cka_batches import minibatch_cka


def related(seed: int, n: int, p: int, q: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    return x, x @ rng.normal(size=(p, q)) + rng.normal(size=(n, q))


def test_minibatch_cka_reads_dask_inputs_one_batch_at_a_time(monkeypatch):
    """A Dask-backed pair (an activation file opened lazily) is read batch by batch, and
    gives the in-memory value; labelled inputs in another row order are aligned first."""
    dask = pytest.importorskip("dask")
    import dask.array as da

    from rsa_bias.analysis.similarity import cka_batches

    x, y = related(11, 40, 6, 5)
    events = []

    def lazy(values, name):  # an on-disk array: records which chunk is read, and when
        def read(start):
            events.append((name, start))
            return values[start:start + 10]
        return da.concatenate([da.from_delayed(dask.delayed(read)(s), (10, values.shape[1]),
                                               values.dtype) for s in range(0, 40, 10)])

    real = cka_batches._three_hsic
    monkeypatch.setattr(cka_batches, "_three_hsic",
                        lambda *a: events.append(("hsic", None)) or real(*a))
    got = minibatch_cka(lazy(x, "x"), lazy(y, "y"), batch_size=10)
    assert got == pytest.approx(minibatch_cka(x, y, batch_size=10), abs=1e-12)
    first = events.index(("hsic", None))
    assert sorted(events[:first]) == [("x", 0), ("y", 0)]  # only the first batch before it
    assert {("x", 30), ("y", 30)} <= set(events[events.index(("hsic", None), first + 1):])
    # labelled, rows of y reversed: aligned on the ids before batching, as in memory
    ids = np.arange(40)
    xd = xr.DataArray(lazy(x, "x"), dims=("stimulus", "unit"), coords={"stimulus": ids})
    yd = xr.DataArray(lazy(y[::-1].copy(), "y"), dims=("stimulus", "unit"),
                      coords={"stimulus": ids[::-1]})
    assert minibatch_cka(xd, yd, batch_size=10, seed=3) == pytest.approx(
        minibatch_cka(x, y, batch_size=10, seed=3), abs=1e-12)
