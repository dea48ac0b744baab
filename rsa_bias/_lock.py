"""One writer per folder: a lock file that names its holder, so that a second sweep started on
the same folder stops with a clear message instead of running the same points twice and
removing the first one's checkpoints when it finishes.

The lock is ``.{what}.lock`` in the folder, created exclusively and holding
``host pid start-time``. A lock whose holder is a process of this host that no longer runs
(a killed sweep) is stale and taken over; one of a live process, or of another host (a
shared folder, whose processes cannot be checked from here), is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rsa_bias._atomic import _HOST, pid_alive

#: A lock file that cannot be read (its writer died between creating and filling it) is
#: stale once this old.
UNREADABLE_LOCK_AGE_S = 60.0


class FolderBusy(OSError):
    """Another live process holds the folder's lock."""


def _holder(path: Path) -> tuple[str, int, float] | None:
    """``(host, pid, start)`` of a lock file, or None when it cannot be read."""
    try:
        host, pid, start = path.read_text().split()
        return host, int(pid), float(start)
    except (OSError, ValueError):
        return None


def _stale(path: Path, holder: tuple[str, int, float] | None) -> bool:
    if holder is None:
        try:
            return time.time() - path.stat().st_mtime > UNREADABLE_LOCK_AGE_S
        except FileNotFoundError:
            return True
    host, pid, _ = holder
    return host == _HOST and not pid_alive(pid)


@contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold ``folder/.{what}.lock`` for the duration of the block.

    Parameters
    ----------
    folder : str or pathlib.Path
        An existing folder.
    what : str
        What holds it (``"sweep"``): the lock's name and the error's wording.

    Yields
    ------
    pathlib.Path
        The lock file (removed when the block ends, however it ends).

    Raises
    ------
    FolderBusy
        A live process (or a process of another host) holds the lock.
    """
    path = Path(folder) / f".{what}.lock"
    for _ in range(3):  # a stale lock is removed and the creation tried again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if _stale(path, holder):
                print(f"removing the stale lock {path} (its {what} no longer runs)", flush=True)
                path.unlink(missing_ok=True)
                continue
            who = ("a process that has not written its name yet" if holder is None else
                   f"process {holder[1]} on {holder[0]}, since "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder[2]))}")
            raise FolderBusy(f"another {what} is running in {folder} ({who}); wait for it to "
                             f"finish, use another folder, or, if it is not running, remove "
                             f"{path}") from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{_HOST} {os.getpid()} {time.time():.3f}\n")
        break
    else:
        raise FolderBusy(f"could not take the lock {path}: it keeps reappearing; is another "
                         f"{what} starting in {folder}?")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
