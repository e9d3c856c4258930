"""The private dirs of `ssh://` tunnels' local sockets: one per URL for the life of the
process, and those of syncer processes that were killed (no atexit ran) removed by the next."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from syncer.adapters import ssh


def test_a_killed_processs_socket_dir_is_removed_and_a_live_ones_kept() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    dead = Path(tempfile.mkdtemp(prefix="syncer-ssh-"))
    (dead / "owner").write_text(str(gone.pid))
    (dead / "docker.sock").write_text("")  # (stale)
    live = Path(tempfile.mkdtemp(prefix="syncer-ssh-"))
    (live / "owner").write_text(str(os.getppid()))  # a running process (pytest's parent)
    unowned = Path(tempfile.mkdtemp(prefix="syncer-ssh-"))  # being made: no owner written yet
    made = Path(ssh._folder())
    try:
        assert not dead.exists() and live.exists() and unowned.exists()
        assert (made / "owner").read_text() == str(os.getpid()) and oct(made.stat().st_mode & 0o777) == "0o700"
    finally:
        for d in (live, unowned, made):
            shutil.rmtree(d, ignore_errors=True)
