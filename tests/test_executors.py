"""Sweep executors: inline, local processes and a Dask LocalCluster give the same results."""

from __future__ import annotations

import os

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
