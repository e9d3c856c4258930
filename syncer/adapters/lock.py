"""One apply at a time per project: an flock on a file in the state directory.

The kernel releases an flock when its process dies, however it dies, so a lock left by
a killed apply is simply free again: taking it over needs no guessing about stale pids.
The file also says who holds it, for the message the second apply prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from syncer.core.errors import LockHeld

LOCK_FILE = "apply.lock"


class ApplyLock:
    """`with ApplyLock(state_dir, "syncer apply"):` — raises LockHeld when taken."""

    def __init__(self, state_dir: Path, purpose: str) -> None:
        self.path = state_dir / LOCK_FILE
        self.purpose = purpose
        self._fd: int | None = None

    def __enter__(self) -> ApplyLock:
        for _ in range(3):
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if _silent(fd):
                    # Held, but by no syncer apply (which writes who it is at once): a process
                    # that merely opened the file (read-only, say) must not block every apply.
                    # The file is replaced; lockers check they locked the file at the path.
                    if _is_current(fd, self.path):  # not one another apply put there already
                        self.path.unlink(missing_ok=True)
                    os.close(fd)
                    continue
                holder = _describe(fd)
                os.close(fd)
                raise LockHeld(f"another apply holds the lock {self.path}: {holder}") from None
            if not _is_current(fd, self.path):  # replaced while we waited: lock the new one
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                    "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            self._fd = fd
            return self
        raise LockHeld(f"the lock {self.path} keeps changing: another process is taking it")

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # it names this host and pid
        try:
            os.fchmod(fd, 0o600)  # one left 0644 by an older syncer
        except OSError:
            pass
        return fd

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _is_current(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _silent(fd: int, *, patience: float = 1.0) -> bool:
    """True when the lock's holder has said nothing for `patience` seconds: a syncer apply
    writes who it is right after it takes the lock, so this holder is something else."""
    deadline = time.monotonic() + patience
    while True:
        if os.pread(fd, 1, 0):
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)  # polling the file: the holder gives no other signal


def _describe(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        info = {}
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')} ({info.get('purpose')}) since {info.get('since')}"


def gone(pid: int) -> bool:
    """Whether process `pid` of this machine has ended: there is none, or it ended and no one
    reaped it yet (a zombie: signal 0 still reaches it; a CI container without an init keeps
    one for as long as it runs). Another user's process is not called gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[:1] in ([b"Z"], [b"X"])
    except OSError:
        return False
