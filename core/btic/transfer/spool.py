"""Where a run keeps its downloads until every destination has them.

The spool belongs to one user and one state database: beside a SQLite state
file, or in the user's cache directory for a server database. It is created
``0700`` and refused when another user owns it. Each run works in a directory
of its own and holds a lock on a file inside it for as long as it lives; a
later run removes only directories whose lock it can take, which proves their
run is gone — PID liveness alone proves nothing across containers sharing a
directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO

from btic.errors import SpoolError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a run's PID is all there is
    _FLOCK = False
else:
    _FLOCK = True
from btic.locations import cache_directory
from btic.processes import process_alive

SPOOL_NAME = "btic-spool"
LOCK_NAME = ".lock"

__all__ = ["RunSpool", "SpoolError", "spool_parent"]


def spool_parent(state_url: str) -> Path:
    """The spool of this user and state database."""
    prefix = "sqlite:///"
    if state_url.startswith(prefix) and state_url[len(prefix) :] not in ("", ":memory:"):
        return Path(state_url[len(prefix) :]).parent / SPOOL_NAME
    return cache_directory() / SPOOL_NAME


class RunSpool:
    """This run's spool directory, locked while the run lives.

    :param parent: the user's spool (see :func:`spool_parent`).
    """

    def __init__(self, parent: Path):
        _own_directory(parent)
        _remove_abandoned(parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))
        self._lock: IO[bytes] | None = _hold_lock(self.path / LOCK_NAME)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _own_directory(parent: Path) -> None:
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = parent.stat()
    except OSError as exc:
        raise SpoolError(
            f"spool {parent}: cannot create it: {exc.strerror or exc}; set [state] url to a "
            "directory you can write"
        ) from None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise SpoolError(
            f"spool {parent} belongs to another user (uid {info.st_uid}); run btic as that "
            "user, or give this user a state database of its own"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(parent, 0o700)


def _hold_lock(path: Path) -> IO[bytes] | None:
    # The lock file gets its name only once locked: a run sweeping the spool at that
    # moment (another thread of a worker, another process) must never find it
    # unlocked and remove a directory whose run has just begun.
    if not _FLOCK:
        # Windows: an open file cannot be renamed, and none is swept by a lock
        # (see _abandoned); the open file only keeps the directory from removal.
        return path.open("wb")
    pending = path.with_name(f"{path.name}.new")
    handle = pending.open("wb")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    os.replace(pending, path)
    return handle


def _abandoned(directory: Path) -> bool:
    lock = directory / LOCK_NAME
    if not _FLOCK or not lock.exists():
        # No lock to ask (Windows, or a spool of an older btic): the PID must be gone.
        pid = directory.name.split("-", 1)[0]
        return pid.isdigit() and not process_alive(int(pid))
    with lock.open("rb") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its run holds it
        return True


def _remove_abandoned(parent: Path) -> None:
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            if entry.is_dir() and not entry.is_symlink() and _abandoned(entry):
                shutil.rmtree(entry, ignore_errors=True)
