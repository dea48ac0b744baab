"""Where the runs of a sweep execute: in this process, in local worker processes, or on a
Dask distributed cluster.

Every executor is a context manager with ``submit(fn, *args) -> future`` whose futures have
``.result()``, so a sweep is written once for all three. Workers get one torch and BLAS
thread each, since parallel runs that each start several threads only wait for one another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor


def one_thread() -> None:
    """Limit torch and the BLAS libraries of this process to one thread."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


class _Inline:
    """Runs each submitted call at once in this process (``jobs=1``, no scheduler)."""

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller via .result()
            fut.set_exception(exc)
        return fut


class _DaskExecutor:
    """Adapter over a ``distributed.Client``: impure tasks, one call per submit."""

    def __init__(self, client) -> None:
        self.client = client

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)


@contextlib.contextmanager
def executor(jobs: int = 1, scheduler: str | None = None, *, timeout: float = 10.0) -> Iterator:
    """An executor for ``jobs`` parallel runs.

    Parameters
    ----------
    jobs : number of local worker processes (``scheduler=None`` or ``"local"``).
    scheduler : ``None`` for local processes; ``"local"`` for a Dask ``LocalCluster`` of
        ``jobs`` single-threaded worker processes (its dashboard shows progress); or the
        address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``, whose workers
        need rsa_bias installed and the config file and output folder at the same paths.
    timeout : seconds to wait for a remote scheduler to answer.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    if scheduler is None:
        if jobs == 1:
            yield _Inline()
            return
        with ProcessPoolExecutor(jobs, initializer=one_thread) as pool:
            yield pool
        return
    from distributed import Client, LocalCluster
    if scheduler == "local":
        with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(one_thread)
            yield _DaskExecutor(client)
        return
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except OSError as exc:
        raise ValueError(f"could not reach the Dask scheduler at {scheduler!r} ({exc}); "
                         "start one with `dask scheduler` or use --scheduler local") from exc
    with client:
        client.run(one_thread)
        yield _DaskExecutor(client)
