"""`syncer watch` as a real process whose log is kept for assertions; the `watches` fixture
(tests/conftest.py) kills any a test left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


class Watch:
    """A running `syncer watch` whose log is kept for assertions."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "syncer", *args], stdout=open(log, "wb"),
                                     stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def start(watches: list[Watch], tmp_path: Path, *args: str, env: dict[str, str] | None = None,
          debounce: str = "300ms") -> Watch:
    """`syncer ARGS` (a watch) started as a real process, killed at the test's end by `watches`."""
    w = Watch([*args, "--git-poll", "1s", "--debounce", debounce, "--stop-timeout", "1"], tmp_path / "watch.log",
              env)
    watches.append(w)
    return w
