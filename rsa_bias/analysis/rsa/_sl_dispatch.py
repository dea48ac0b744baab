"""Running the chunks of a searchlight: in this thread, on Dask's local threads, or on a
``dask.distributed`` cluster, with a tqdm progress bar over the centres."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rsa_bias.analysis.rsa._sl_kernels import SearchlightState, chunk


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _local(state: SearchlightState, bounds, update: Callable[[int], None],
           n_workers: int | None) -> Iterator[tuple[int, int, dict]]:
    if len(bounds) == 1:
        out = chunk(state, *bounds[0])
        update(out[1] - out[0])
        yield out
        return
    import dask
    from dask.callbacks import Callback

    class Bar(Callback):
        def _posttask(self, key, result, dsk, state_, worker_id):
            if isinstance(result, tuple) and len(result) == 3:
                update(result[1] - result[0])

    tasks = [dask.delayed(chunk, pure=False)(state, a, b) for a, b in bounds]
    with Bar():
        yield from dask.compute(*tasks, scheduler="threads", num_workers=n_workers)


def _distributed(state: SearchlightState, bounds, update: Callable[[int], None],
                 client) -> Iterator[tuple[int, int, dict]]:
    from distributed import as_completed

    shared = client.scatter(state, broadcast=True)
    futures = [client.submit(chunk, shared, a, b, pure=False) for a, b in bounds]
    for future in as_completed(futures):
        out = future.result()
        update(out[1] - out[0])
        yield out


def run_chunks(state: SearchlightState, *, chunk_size: int, progress: bool, client,
               n_workers: int | None, desc: str) -> list[tuple[int, int, dict]]:
    """Every chunk's ``(start, stop, outputs)``, in order of ``start``."""
    from tqdm.auto import tqdm

    bounds = chunk_bounds(len(state.spheres), chunk_size)
    with tqdm(total=len(state.spheres), desc=desc, unit="centre", disable=not progress) as bar:
        if client is None:
            parts = list(_local(state, bounds, bar.update, n_workers))
        elif isinstance(client, str):
            from distributed import Client

            with Client(client) as c:
                parts = list(_distributed(state, bounds, bar.update, c))
        else:
            parts = list(_distributed(state, bounds, bar.update, client))
    return sorted(parts, key=lambda p: p[0])
