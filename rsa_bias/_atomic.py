"""Atomic file replacement shared by every writer (store files and checkpoints), and the
removal of the temporary files that killed writers leave behind.

A temporary file is named ``.{target}.{host}.{pid}.{random}.tmp`` next to its target, so a
later run can tell whether its writer is still alive: :func:`remove_stale_tmp` removes those of
dead writers on this host and leaves those of live writers (a concurrent run) alone.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)
#: This machine's name as it appears in temporary names (letters, digits and dashes only).
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
#: ``.{target}.{host}.{pid}.{random}.tmp``; ``tempfile``'s random part has no dot.
_TMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)"
                       r"\.[a-z0-9_]+\.tmp$")
#: A temporary file whose writer cannot be told (no pid in its name: an older version) is
#: stale once untouched this long.
LEGACY_TMP_AGE_S = 3600.0


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is untouched, so a
    crash or kill mid-write never leaves a half-written file under the final name. The
    temporary name records this host and process (see :func:`remove_stale_tmp`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running.

    A zombie (dead, not yet reaped) is not running. Where this cannot be told (not POSIX), the
    answer is True, so nothing of a possibly live process is removed.

    Parameters
    ----------
    pid : int
        A process id.

    Returns
    -------
    bool
        False when no such process exists or it is a zombie.
    """
    if pid == os.getpid():
        return True
    if pid <= 0 or os.name != "posix":
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists
    return state not in ("Z", "X")


def remove_stale_tmp(folder: str | Path, *, report: bool = False) -> list[Path]:
    """Remove the temporary files of interrupted writes in ``folder`` (not its subfolders).

    A temporary file of :func:`atomic_path` is stale when its writer, a process of this host,
    is no longer running; those of running writers and of other hosts (a shared folder) are
    kept. One without a writer in its name (an older version's) is stale once untouched for
    :data:`LEGACY_TMP_AGE_S` seconds.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder to clean; a missing one has nothing to remove.
    report : bool, default False
        Print one line naming what was removed (when anything was).

    Returns
    -------
    list of pathlib.Path
        The files removed, sorted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in sorted(folder.glob(".*.tmp")):
        match = _TMP_NAME.match(tmp.name)
        try:
            if match is not None:
                if match["host"] != _HOST or pid_alive(int(match["pid"])):
                    continue
            elif time.time() - tmp.stat().st_mtime < LEGACY_TMP_AGE_S:
                continue
            if tmp.is_file():
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # its writer finished, or another run removed it
            continue
    if report and removed:
        print(f"{folder}: removed {len(removed)} temporary file(s) of interrupted writes: "
              + ", ".join(p.name for p in removed), flush=True)
    return removed
