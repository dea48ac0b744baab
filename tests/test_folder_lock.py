"""One sweep per folder: the lock refuses a second live sweep, takes over a killed one's lock,
and is gone when the sweep ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rsa_bias import _lock
from rsa_bias._atomic import _HOST
from rsa_bias.cli import main
from rsa_bias.experiments.sweep import run_sweep


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hold(folder, host: str, pid: int) -> None:
    (folder / ".sweep.lock").write_text(f"{host} {pid} {time.time():.3f}\n")


def test_lock_is_held_during_the_block_and_removed_after(tmp_path) -> None:
    with _lock.folder_lock(tmp_path, "sweep") as path:
        host, pid, _ = path.read_text().split()
        assert (host, int(pid)) == (_HOST, os.getpid())
        with pytest.raises(_lock.FolderBusy, match=rf"process {os.getpid()} on {_HOST}"):
            with _lock.folder_lock(tmp_path, "sweep"):
                pass
        assert path.exists()  # the refused attempt leaves the holder's lock alone
    assert not path.exists()
    with pytest.raises(KeyError), _lock.folder_lock(tmp_path, "sweep"):
        raise KeyError("a failing sweep")
    assert not (tmp_path / ".sweep.lock").exists()


def test_a_killed_holders_lock_is_taken_over(tmp_path, capsys) -> None:
    hold(tmp_path, _HOST, dead_pid())
    with _lock.folder_lock(tmp_path, "sweep") as path:
        assert int(path.read_text().split()[1]) == os.getpid()
    assert "removing the stale lock" in capsys.readouterr().out


@pytest.mark.parametrize("age, refused", [(0.0, True), (3600.0, False)])
def test_an_unreadable_lock_is_stale_only_once_old(tmp_path, age: float, refused: bool) -> None:
    lock = tmp_path / ".sweep.lock"
    lock.write_text("")  # a holder killed between creating and filling it
    os.utime(lock, (time.time() - age, time.time() - age))
    if refused:
        with pytest.raises(_lock.FolderBusy, match="has not written its name"):
            with _lock.folder_lock(tmp_path, "sweep"):
                pass
    else:
        with _lock.folder_lock(tmp_path, "sweep"):
            pass


def test_another_hosts_lock_is_refused(tmp_path) -> None:
    hold(tmp_path, "other-host", dead_pid())  # its processes cannot be checked from here
    with pytest.raises(_lock.FolderBusy, match="on other-host.*remove .*sweep.lock"):
        with _lock.folder_lock(tmp_path, "sweep"):
            pass


def test_a_second_sweep_on_a_busy_folder_stops_before_anything_runs(tmp_path, shipped_config,
                                                                   capsys) -> None:
    hold(tmp_path, _HOST, os.getpid())  # a live sweep (this process) holds the folder
    with pytest.raises(_lock.FolderBusy, match="another sweep is running"):
        run_sweep(shipped_config, tmp_path, [("a", ["model.width=8"])], figures=False,
                  progress=False)
    assert "sweep: 1 runs" not in capsys.readouterr().out
    assert main(["sweep", str(shipped_config), "--out", str(tmp_path), "--no-figures",
                 "--grid", "model.width=8,12"]) == 2
    assert "another sweep is running" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sweep.lock"]


def test_a_second_run_on_a_busy_folder_stops_before_anything_runs(tmp_path, shipped_config,
                                                                 capsys) -> None:
    (tmp_path / ".run.lock").write_text(f"{_HOST} {os.getpid()} {time.time():.3f}\n")
    assert main(["run", str(shipped_config), "--out", str(tmp_path), "--no-figures",
                 "--no-progress"]) == 2
    assert f"another run is running in {tmp_path}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock"]
    assert main(["demo", "loud-feature", "--out", str(tmp_path), "--quick"]) == 2
    (tmp_path / ".run.lock").unlink()
    assert main(["demo", "loud-feature", "--out", str(tmp_path), "--quick"]) == 0
    assert not (tmp_path / ".run.lock").exists()  # released when the command ends


def test_searchlight_holds_the_folder_too(tmp_path, capsys) -> None:
    (tmp_path / ".run.lock").write_text(f"{_HOST} {os.getpid()} {time.time():.3f}\n")
    assert main(["searchlight", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "another run is running" in capsys.readouterr().err
