"""Sweep executors: inline, local processes and a Dask LocalCluster give the same results."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from rsa_bias.executors import executor


def _square_and_threads(x: int) -> tuple[int, int, int]:
    import torch

    return x * x, torch.get_num_threads(), os.getpid()


def _fail(x: int) -> int:
    raise RuntimeError(f"run {x} failed")


def test_inline_runs_in_this_process_and_keeps_errors_for_result():
    with executor(1) as ex:
        values = [ex.submit(_square_and_threads, i).result()[0] for i in range(4)]
        fut = ex.submit(_fail, 7)
    assert values == [0, 1, 4, 9]
    with pytest.raises(RuntimeError, match="run 7 failed"):
        fut.result()


def test_process_workers_use_one_thread_each():
    with executor(2) as ex:
        out = [f.result() for f in [ex.submit(_square_and_threads, i) for i in range(4)]]
    assert [o[0] for o in out] == [0, 1, 4, 9]
    assert {o[1] for o in out} == {1}
    assert os.getpid() not in {o[2] for o in out}


def test_dask_local_cluster_matches_and_reports_worker_errors():
    pytest.importorskip("distributed")
    with executor(2, scheduler="local") as ex:
        out = [f.result() for f in [ex.submit(_square_and_threads, i) for i in range(4)]]
        failed = ex.submit(_fail, 3)
        with pytest.raises(RuntimeError, match="run 3 failed"):
            failed.result()
    assert [o[0] for o in out] == [0, 1, 4, 9]
    assert {o[1] for o in out} == {1}


def test_bad_jobs_and_unreachable_scheduler_are_clear_errors():
    with pytest.raises(ValueError, match="jobs must be >= 1"), executor(0):
        pass
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="could not reach the Dask scheduler"), \
            executor(1, scheduler="tcp://127.0.0.1:1", timeout=1):
        pass


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not reaped, runs nothing)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _kill_and_wait_for(parent, pids: list[int], within: float = 2.0) -> list[int]:
    """SIGKILL ``parent`` only; the ``pids`` still running ``within`` seconds later."""
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(map(_alive, pids)):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _start(code: str):
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert pids, "the script printed no worker pid"
    return proc, pids


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_pool_workers_die_with_their_killed_parent():
    """A worker must not keep training (and writing files) for a sweep that is gone."""

    code = ("import time\n"
            "from rsa_bias.executors import executor\n"
            "with executor(2) as ex:\n"
            "    futs = [ex.submit(time.sleep, 60) for _ in range(2)]\n"
            "    print(*[p.pid for p in ex._processes.values()], flush=True)\n"
            "    time.sleep(60)\n")
    proc, pids = _start(code)
    try:
        assert len(pids) == 2 and all(map(_alive, pids))
        assert _kill_and_wait_for(proc, pids) == []
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_parent_watch_without_pdeathsig_exits_too():
    """The portable guard (a thread polling the parent's pid) on its own, without prctl."""

    code = ("import os, time\n"
            "from rsa_bias.executors import die_with_parent\n"
            "parent = os.getpid()\n"
            "child = os.fork()\n"
            "if child == 0:\n"
            "    die_with_parent(parent, pdeathsig=False)\n"
            "    time.sleep(60)\n"
            "    os._exit(0)\n"
            "print(child, flush=True)\n"
            "time.sleep(60)\n")
    proc, pids = _start(code)
    try:
        assert _alive(pids[0])
        assert _kill_and_wait_for(proc, pids) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pids[0], signal.SIGKILL)
