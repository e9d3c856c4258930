"""scripts/start-dockerd asks about the daemon that owns the system socket, never about any
process named dockerd (issue 11, point 8). The main engine is never stopped: the "system"
socket and pidfile are pointed at a temp dir, and the dockerd to start is a stand-in that
records how it was called."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerd import SecondDockerd

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "start-dockerd"


@pytest.fixture(scope="module")
def second() -> Iterator[SecondDockerd]:
    d2 = SecondDockerd()
    try:
        d2.start()
        yield d2
    finally:
        d2.destroy()


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "fake-dockerd"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/started-with\n')
    fake.chmod(0o755)
    full = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    full.update({"SYNCER_DOCKERD": str(fake), "SYNCER_DOCKERD_SOCKET": str(tmp_path / "system.sock"),
                 "SYNCER_DOCKERD_PIDFILE": str(tmp_path / "system.pid"), "SYNCER_DOCKERD_TIMEOUT": "3",
                 "SYNCER_DOCKERD_LOG": str(tmp_path / "dockerd.log"), **env})
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=full, timeout=60)


def test_another_dockerd_on_its_own_socket_does_not_stop_the_start(tmp_path: Path, second: SecondDockerd) -> None:
    assert second.proc is not None and second.proc.poll() is None  # a process named dockerd runs
    out = _run(tmp_path)
    assert "does not answer yet; waiting" not in out.stdout, out.stdout
    assert "started dockerd" in out.stdout, out.stdout + out.stderr
    # started for the system socket and pidfile, not for the second daemon's
    args = (tmp_path / "started-with").read_text().split()
    assert args == ["--host", f"unix://{tmp_path / 'system.sock'}", "--pidfile", str(tmp_path / "system.pid")]
    assert out.returncode == 1 and "exited during start-up" in out.stderr  # the stand-in starts nothing


def test_the_daemon_owning_the_system_socket_is_waited_for(tmp_path: Path, second: SecondDockerd) -> None:
    # the "system" pidfile names a live dockerd: it is the one starting up, so none is started
    assert second.proc is not None
    (tmp_path / "system.pid").write_text(f"{second.proc.pid}\n")
    out = _run(tmp_path)
    assert f"(pid {second.proc.pid}) does not answer yet; waiting" in out.stdout, out.stdout + out.stderr
    assert not (tmp_path / "started-with").exists()
    assert out.returncode == 1 and "did not answer within 3s" in out.stderr


def test_a_stale_pidfile_is_not_a_daemon(tmp_path: Path) -> None:
    (tmp_path / "system.pid").write_text(f"{os.getpid()}\n")  # alive, but not a dockerd
    out = _run(tmp_path)
    assert "does not answer yet" not in out.stdout and (tmp_path / "started-with").exists(), out.stdout + out.stderr


def test_the_main_engine_answering_is_left_alone(tmp_path: Path) -> None:
    out = _run(tmp_path, SYNCER_DOCKERD_SOCKET="/var/run/docker.sock", SYNCER_DOCKERD_PIDFILE="/var/run/docker.pid")
    assert out.returncode == 0 and "already answering" in out.stdout, out.stdout + out.stderr
    assert not (tmp_path / "started-with").exists()
