"""Interrupted work is never redone and never races: a killed sweep's workers die with it, its
rerun skips the finished runs, stale temporary files are removed, a kill during the figures
redoes only the figures."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rsa_bias.cli import main
from rsa_bias.config import load_config
from rsa_bias.store import read_results

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="needs Linux /proc to follow worker processes")

BASE = [
    "seeds=[0, 1]",
    "task.n_distractor=3", "task.val_size=64", "task.test_size=64",
    "model.depth=2",
    "training.eval_every=10", "training.snapshot_steps=[0, 10]",
    "training.batch_size=32", "training.checkpoint_every=10", "training.device=cpu",
    "analysis.n_pcs=3",
]
#: Two fast points (20 steps) finish first; the two slow ones (3000 steps) are still
#: training, and writing checkpoints, when the sweep is killed.
GRID = ["--grid", "training.steps=20,3000", "--grid", "model.width=8,12"]
SKIPPED = "results.nc complete, same config"


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _sweep_argv(config: Path, out: Path, *extra: str) -> list[str]:
    return ["sweep", str(config), "--out", str(out), "--no-figures", *_set(BASE), *extra]


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is neither a zombie nor dead (a zombie runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc/<pid>/task/*/children)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for children in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in map(int, children.read_text().split()):
                    if child not in found:
                        found.add(child)
                        todo.append(child)
    return found


def _files(folder: Path) -> dict[Path, tuple[int, int, int]]:
    """Every file under ``folder`` (hidden temporary files too): inode, size, mtime."""
    out = {}
    for p in folder.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if p.is_file():
                st = p.stat()
                out[p] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def _count_training(cb, monkeypatch) -> list[int]:
    """The seeds the complexity-bias experiment trains from now on (batched or not)."""
    calls: list[int] = []
    real_train, real_ensemble = cb.train, cb.train_ensemble
    monkeypatch.setattr(cb, "train", lambda *a, **k: calls.append(k["seed"]) or
                        real_train(*a, **k))
    monkeypatch.setattr(cb, "train_ensemble", lambda stimuli, members, **k: calls.extend(
        m.seed for m in members) or real_ensemble(stimuli, members, **k))
    return calls


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns="time_s")


def test_killed_sweep_leaves_no_worker_and_its_rerun_skips_finished_runs(tmp_path,
                                                                         shipped_config):
    t0 = time.perf_counter()
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "rsa_bias.cli", *_sweep_argv(shipped_config, out, *GRID),
            "--jobs", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            workers |= _descendants(proc.pid)
            done = list(out.glob("*/results.nc"))
            training = list(out.glob("training.steps-3000*/checkpoints/*.pt"))
            if done and training:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        workers |= _descendants(proc.pid)
        assert workers, "the sweep started no worker process"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only
        proc.wait()
        finished = {p.parent.name: p.stat() for p in out.glob("*/results.nc")}
        assert 1 <= len(finished) < 4, finished
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(map(_running, workers)):
            time.sleep(0.05)
        alive = sorted(filter(_running, workers))
        assert not alive, f"workers {alive} outlived the killed sweep"
        before = _files(out)
        time.sleep(1.0)
        assert _files(out) == before, "files changed after the sweep was killed"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    for name, st in finished.items():
        assert f"skipping {name}: {SKIPPED}" in rerun.stdout, rerun.stdout
        now = (out / name / "results.nc").stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name
    assert "resuming training.steps-3000" in rerun.stdout, rerun.stdout
    assert not list(out.rglob("*.tmp")), "temporary files of the killed writes are left"

    clean = tmp_path / "clean"
    code, _, stderr = _cli([*_sweep_argv(shipped_config, clean, *GRID), "--jobs", "2"])
    assert code == 0, stderr
    pd.testing.assert_frame_equal(_csv(out / "sweep.csv"), _csv(clean / "sweep.csv"),
                                  check_exact=True)
    print(f"interruption test: {time.perf_counter() - t0:.1f} s")


# --- config hash ------------------------------------------------------------------------------


def test_rerun_skips_same_config_and_recomputes_a_changed_or_broken_one(tmp_path,
                                                                       shipped_config,
                                                                       monkeypatch):
    import rsa_bias.experiments.complexity_bias as cb

    config = tmp_path / "config.toml"
    config.write_text(shipped_config.read_text())
    out = tmp_path / "out"
    argv = _sweep_argv(config, out, "--set", "training.steps=20", "--set", "model.width=8")
    assert _cli(argv)[0] == 0
    first = (out / "sweep.csv").read_text()

    calls = _count_training(cb, monkeypatch)
    code, stdout, stderr = _cli(argv)
    assert code == 0, stderr
    assert f"skipping base: {SKIPPED}" in stdout
    assert calls == []
    assert (out / "sweep.csv").read_text() == first

    config.write_text(shipped_config.read_text().replace("unit_threshold = 0.5",
                                                         "unit_threshold = 0.4"))
    code, stdout, stderr = _cli(argv)
    assert code == 0, stderr
    assert "recomputing base: results.nc was written by a different config" in stdout
    assert calls == [0, 1]
    from rsa_bias.provenance import config_hash

    cfg = load_config(config, [*BASE, "training.steps=20", "model.width=8"])
    assert read_results(out / "base" / "results.nc").attrs["config_hash"] == config_hash(cfg)

    results = out / "base" / "results.nc"
    results.write_bytes(results.read_bytes()[:1000])  # a partial file under the final name
    code, stdout, stderr = _cli(argv)
    assert code == 0, stderr
    assert "recomputing base: results.nc" in stdout and "unreadable" in stdout
    assert calls == [0, 1, 0, 1]
    assert read_results(results).attrs["config_hash"] == config_hash(cfg)


def test_results_record_the_hash_of_their_config(tmp_path, shipped_config):
    assert _cli(_sweep_argv(shipped_config, tmp_path, "--set", "training.steps=20",
                            "--set", "model.width=8"))[0] == 0
    res = read_results(tmp_path / "base" / "results.nc")
    import hashlib

    assert res.attrs["config_hash"] == hashlib.sha256(res.attrs["config_json"].encode()
                                                      ).hexdigest()


# --- stale temporary files --------------------------------------------------------------------


def _killed_writer(target: Path) -> None:
    """A process killed (SIGKILL) in the middle of an atomic write to ``target``."""
    code = ("import os, sys; from rsa_bias._atomic import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('half')\n"
            "    os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", code, str(target)], check=False)


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    from rsa_bias._atomic import atomic_path, remove_stale_tmp

    _killed_writer(tmp_path / "results.nc")
    stale = list(tmp_path.glob(".results.nc.*.tmp"))
    assert len(stale) == 1 and not (tmp_path / "results.nc").exists()
    with atomic_path(tmp_path / "activations.nc") as live:
        live.write_text("being written")
        foreign = tmp_path / ".sweep.csv.some-other-host.1.abcd_123.tmp"
        foreign.write_text("written on another machine")
        assert remove_stale_tmp(tmp_path) == stale
        assert live.exists() and foreign.exists()  # a live writer's, and one it cannot judge
    assert (tmp_path / "activations.nc").read_text() == "being written"


def test_a_run_removes_stale_temporary_files_in_its_folders(tmp_path, shipped_config):
    _killed_writer(tmp_path / "results.nc")
    _killed_writer(tmp_path / "checkpoints" / "seed_0.pt")
    assert len(list(tmp_path.rglob("*.tmp"))) == 2
    code, _, stderr = _cli(["run", str(shipped_config), "--out", str(tmp_path), "--no-progress",
                            "--no-figures", *_set(BASE), "--set", "training.steps=20",
                            "--set", "model.width=8"])
    assert code == 0, stderr
    assert not list(tmp_path.rglob("*.tmp"))


# --- a kill during the figures ----------------------------------------------------------------


def test_rerun_after_a_kill_during_figures_only_redoes_the_figures(tmp_path, shipped_config,
                                                                   monkeypatch):
    import rsa_bias.experiments.complexity_bias as cb

    argv = ["run", str(shipped_config), "--out", str(tmp_path), "--no-progress",
            *_set(BASE), "--set", "training.steps=20", "--set", "model.width=8"]
    code, first, stderr = _cli([*argv, "--no-figures"])  # as if killed before the figures
    assert code == 0, stderr
    stored = {n: (tmp_path / n).stat() for n in ("results.nc", "activations.nc")}

    def no_training(*args, **kwargs):
        raise AssertionError("train was called although results.nc and activations.nc "
                             "are complete")

    monkeypatch.setattr(cb, "train", no_training)
    monkeypatch.setattr(cb, "train_ensemble", no_training)
    code, stdout, stderr = _cli(argv)
    assert code == 0, stderr
    assert "skipping training" in stdout
    for name in ("r2_by_layer", "training_curves", "pca"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    for name, st in stored.items():
        assert (tmp_path / name).stat().st_mtime_ns == st.st_mtime_ns, name
    table = [line for line in stdout.splitlines() if line.startswith(("easy", "hard"))]
    assert table == [line for line in first.splitlines() if line.startswith(("easy", "hard"))]


def test_force_recomputes_a_finished_run(tmp_path, shipped_config, monkeypatch):
    import rsa_bias.experiments.complexity_bias as cb

    argv = ["run", str(shipped_config), "--out", str(tmp_path), "--no-progress", "--no-figures",
            *_set(BASE), "--set", "training.steps=20", "--set", "model.width=8"]
    assert _cli(argv)[0] == 0
    before = (tmp_path / "results.nc").stat().st_mtime_ns
    calls = _count_training(cb, monkeypatch)
    code, stdout, stderr = _cli([*argv, "--force"])
    assert code == 0, stderr
    assert calls == [0, 1] and "skipping training" not in stdout
    assert (tmp_path / "results.nc").stat().st_mtime_ns != before
