"""mypy strict over syncer/ (STYLE.md): a type error fails the suite."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_mypy_strict_is_clean() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
