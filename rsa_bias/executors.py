"""Where the runs of a sweep execute: in this process, in local worker processes, or on a
Dask distributed cluster.

Every executor is a context manager with ``submit(fn, *args) -> future`` whose futures have
``.result()``, so a sweep is written once for all three. Workers get one torch and BLAS
thread each, since parallel runs that each start several threads only wait for one another.
A local worker exits when the process that started it dies (:func:`die_with_parent`), so a
killed sweep leaves no worker training and writing files.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from rsa_bias._atomic import pid_alive

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def one_thread() -> None:
    """Limit torch and the BLAS libraries of this process to one thread.

    The initializer of every worker process (local pool and Dask workers alike).

    Returns
    -------
    None
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def die_with_parent(parent_pid: int | None = None, *, pdeathsig: bool = True,
                    interval: float = 0.2) -> None:
    """Make this process exit as soon as its parent dies.

    On Linux the kernel kills it (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) the moment the parent
    thread that started it exits; everywhere, a daemon thread also checks every ``interval``
    seconds whether the parent changed (``os.getppid()``: an orphan is adopted by another
    process) and then ends this process with ``os._exit(1)``, without cleanup. A parent already
    dead when this is called ends it at once.

    Parameters
    ----------
    parent_pid : int, optional
        The process that started this one, as that process saw its own pid; default
        ``os.getppid()`` now. When the parent seen now differs and ``parent_pid`` is not
        running, the parent died before this call.
    pdeathsig : bool, default True
        Ask the Linux kernel for ``SIGKILL`` on the parent's death. The kernel counts the
        parent *thread* that forked this process, so pass False when that thread may end
        before the parent process does (only the polling thread then watches).
    interval : float, default 0.2
        Seconds between two checks of the polling thread.

    Returns
    -------
    None
    """
    parent = os.getppid()
    if pdeathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_pid is not None and parent != parent_pid and not pid_alive(parent_pid):
        os._exit(1)  # orphaned before the guard was set

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="rsa_bias-die-with-parent", daemon=True).start()


def worker_init(parent_pid: int | None = None, pdeathsig: bool = True) -> None:
    """The initializer of every local worker process: :func:`die_with_parent`, then
    :func:`one_thread`.

    Parameters
    ----------
    parent_pid : int, optional
        The pid of the process that started the pool (see :func:`die_with_parent`).
    pdeathsig : bool, default True
        Passed to :func:`die_with_parent`: True when the pool was made in its process's
        main thread (the thread that forks the workers lives as long as the process).

    Returns
    -------
    None
    """
    die_with_parent(parent_pid, pdeathsig=pdeathsig)
    one_thread()


class _Lazy:
    """The future of an in-process call: it runs at the first ``.result()``, so a caller that
    submits everything first still sees each call finish in turn (progress bars)."""

    def __init__(self, fn, args) -> None:
        self._call: tuple | None = (fn, args)
        self._future: Future = Future()

    def result(self):
        if self._call is not None:
            fn, args = self._call
            self._call = None
            try:
                self._future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller via .result()
                self._future.set_exception(exc)
        return self._future.result()


class _Inline:
    """Runs each submitted call in this process when its result is asked for (``jobs=1``,
    no scheduler)."""

    def submit(self, fn, *args) -> _Lazy:
        return _Lazy(fn, args)


class _DaskExecutor:
    """Adapter over a ``distributed.Client``: impure tasks, one call per submit, each asking
    for ``resources`` (run only on workers that have them)."""

    def __init__(self, client, resources: dict[str, float] | None = None) -> None:
        self.client = client
        self.resources = resources or None

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False, resources=self.resources)


@contextlib.contextmanager
def executor(jobs: int = 1, scheduler: str | None = None, *, timeout: float = 10.0,
             resources: dict[str, float] | None = None) -> Iterator:
    """An executor for ``jobs`` parallel runs, as a context manager.

    ``with executor(4) as pool: fut = pool.submit(fn, *args)``; ``fut.result()`` returns
    ``fn(*args)`` or raises its exception. Leaving the ``with`` block shuts down the local
    process pool (after its pending calls) or the ``LocalCluster``, or closes the client of a
    remote scheduler (the scheduler keeps running).

    Parameters
    ----------
    jobs : int, default 1
        Number of local worker processes (``scheduler=None`` or ``"local"``); must be at
        least 1. With ``scheduler=None`` and ``jobs=1`` every call runs at once in this
        process, at ``submit``. Not used with a remote scheduler (its workers run the
        calls).
    scheduler : str, optional
        ``None`` for local processes (a :class:`concurrent.futures.ProcessPoolExecutor`);
        ``"local"`` for a Dask ``LocalCluster`` of ``jobs`` single-threaded worker
        processes (started with ``dashboard_address=None``, so it serves no dashboard); or
        the address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``, whose
        workers need rsa_bias installed and the config file and output folder at the same
        paths.
    timeout : float, default 10.0
        Seconds to wait for a remote scheduler to answer.
    resources : dict of str to float, optional
        Dask worker resources every call needs, e.g. ``{"GPU": 1}``: the scheduler sends it
        only to workers started with them (``dask worker ADDRESS --resources "GPU=1"``), and
        a remote cluster none of whose workers has them (within ``timeout``) is refused. A
        ``LocalCluster`` gives each of its workers these resources; ``GPU`` is refused for
        it on a machine without CUDA. Needs a ``scheduler``.

    Yields
    ------
    executor
        An object with ``submit(fn, *args) -> future`` whose futures have ``.result()``:
        an in-process runner, a ``ProcessPoolExecutor``, or an adapter over a
        ``distributed.Client`` that submits impure tasks (every call runs, none is
        cached). Every worker process is limited to one thread (:func:`one_thread`), and a
        local pool's workers exit when this process dies (:func:`worker_init`); the
        in-process runner leaves this process's thread settings alone.

    Raises
    ------
    ValueError
        When ``jobs < 1``, when a remote scheduler cannot be reached, or for ``resources``
        without a scheduler.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    if resources and scheduler is None:
        raise ValueError(f"resources {resources} need a Dask scheduler (--scheduler local or "
                         "an address); local processes have no resources to ask for")
    if scheduler is None:
        if jobs == 1:
            yield _Inline()
            return
        main = threading.current_thread() is threading.main_thread()
        with ProcessPoolExecutor(jobs, initializer=worker_init,
                                 initargs=(os.getpid(), main)) as pool:
            yield pool
        return
    from distributed import Client, LocalCluster
    if scheduler == "local":
        _check_local_gpu(resources)
        with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                          dashboard_address=None, resources=resources or None
                          ) as cluster, Client(cluster) as client:
            client.run(one_thread)
            yield _DaskExecutor(client, resources)
        return
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except OSError as exc:
        raise ValueError(f"could not reach the Dask scheduler at {scheduler!r} ({exc}); "
                         "start one with `dask scheduler` or use --scheduler local") from exc
    with client:
        _check_resources(client, resources, timeout)
        client.run(one_thread)
        yield _DaskExecutor(client, resources)


def _check_local_gpu(resources: dict[str, float] | None) -> None:
    """Refuse a GPU resource for a LocalCluster on a machine without CUDA: its workers would
    claim a GPU that is not there, and the runs would train on the CPU unannounced."""
    gpu = [k for k in (resources or {}) if k.upper() == "GPU"]
    if gpu:
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"--resources {gpu[0]}=... with --scheduler local: this machine "
                             "has no CUDA GPU, so its LocalCluster has none to give; drop "
                             "--resources, or give the address of a cluster with GPU workers")


def _check_resources(client, resources: dict[str, float] | None, timeout: float) -> None:
    """Refuse resources no worker of the cluster has (its tasks would wait for ever), after
    waiting up to ``timeout`` seconds for a first worker."""
    if not resources:
        return
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as exc:
        raise ValueError(f"no worker joined the Dask scheduler within {timeout:g} s, so none "
                         f"has the resources {resources}; start workers with e.g. dask worker "
                         "ADDRESS --resources \"GPU=1\"") from exc
    workers = client.scheduler_info().get("workers", {}).values()
    if not any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items())
               for w in workers):
        raise ValueError(f"no worker of the Dask cluster has the resources {resources}; "
                         "start workers with e.g. dask worker ADDRESS --resources "
                         f"\"{','.join(f'{k}={v:g}' for k, v in resources.items())}\"")
