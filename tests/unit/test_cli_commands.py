"""The root group imports a command's module only when that command is looked up
(`syncer.cli.base.LazyGroup`): its table must name every command the modules register, and
--help and shell completion must still see them all."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syncer.cli.base import COMMANDS, cli
from tests.helpers import REPO_ROOT

CLI_DIR = Path(REPO_ROOT) / "syncer" / "cli"
NOT_COMMANDS = {"__init__", "base", "main", "views"}


def _python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, **env}, timeout=60)


def test_the_table_names_exactly_what_each_module_registers() -> None:
    modules = sorted(p.stem for p in CLI_DIR.glob("*.py") if p.stem not in NOT_COMMANDS)
    for module in modules:
        importlib.import_module(f"syncer.cli.{module}")
    assert sorted(set(COMMANDS.values())) == modules
    assert sorted(cli.commands) == sorted(COMMANDS)
    assert {name: (c.callback.__module__ if c.callback else "") for name, c in cli.commands.items()} == \
        {name: f"syncer.cli.{module}" for name, module in COMMANDS.items()}


def test_a_command_imports_its_own_module_only() -> None:
    out = _python("import sys\nfrom syncer.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
                  "except SystemExit:\n    pass\n"
                  "print(sorted(m for m in sys.modules if m.startswith('syncer.cli.')))", "servers", "--help")
    assert out.returncode == 0, out.stderr
    assert "Each server: reachable or not" in out.stdout
    assert out.stdout.splitlines()[-1] == str(["syncer.cli.base", "syncer.cli.catalog", "syncer.cli.main",
                                                "syncer.cli.views"])


def test_help_lists_every_command() -> None:
    out = _python("from syncer.cli.main import main; main()", "--help")
    assert out.returncode == 0, out.stderr
    listed = out.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed if line.strip()] == sorted(COMMANDS)


def test_shell_completion_offers_every_command_and_a_commands_options() -> None:
    code = "from syncer.cli.main import main; main()"
    names = _python(code, _SYNCER_COMPLETE="bash_complete", COMP_WORDS="syncer ", COMP_CWORD="1")
    assert sorted(line.split(",", 1)[1] for line in names.stdout.splitlines()) == sorted(COMMANDS)
    options = _python(code, _SYNCER_COMPLETE="bash_complete", COMP_WORDS="syncer apply --auto", COMP_CWORD="2")
    assert options.stdout.splitlines() == ["plain,--auto-approve"]


def test_the_cli_imports_with_the_collector_off_freezes_what_it_made_and_leaves_it_as_it_found_it() -> None:
    """Start-up turns the garbage collector off while it imports (~5 ms of passes over objects
    that are never garbage), freezes what the imports made (else the first pass after it is
    back on walks all of them at once: 5-9 ms), and puts it back: a process that imports the
    CLI, tests included, keeps collecting."""
    import subprocess
    import sys

    code = ("import gc; passes = [];"
            "gc.callbacks.append(lambda phase, info: passes.append(phase) if phase == 'start' else None);"
            "import syncer.cli.main as m; print(len(passes), gc.isenabled(), len(gc.get_objects(0)),"
            " gc.get_freeze_count());"
            "gc.disable(); import importlib; importlib.reload(m); print(gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    passes, after, young, frozen, kept_off = out.stdout.split()
    # (about 30 passes with it on; the few left are Python loading main.py itself, before it runs)
    assert int(passes) < 5 and (after, kept_off) == ("True", "False")
    # tens of thousands of objects frozen, and (nearly) none left for the next pass to walk
    assert int(frozen) > 20_000 and int(young) < 1_000, (young, frozen)


def test_the_syncer_process_exits_with_everything_frozen_and_main_leaves_the_collector_alone() -> None:
    """`run` (the console script, `python -m syncer`) freezes what the run made before the
    interpreter's last collections walk it; `main`, which tests call many times in one
    process, freezes nothing more than the import did."""
    import subprocess
    import sys
    import tomllib

    probe = ("import atexit, gc; from syncer.cli.main import main, run; imported = gc.get_freeze_count();"
             "atexit.register(lambda: print('frozen', gc.get_freeze_count() > imported));")
    for entry, frozen in (("run()", True), ("main()", False)):
        out = subprocess.run([sys.executable, "-c", f"{probe} {entry}", "--version"],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[-1] == f"frozen {frozen}"
    scripts = tomllib.loads((CLI_DIR.parent.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"syncer": "syncer.cli.main:run"}
    assert "run()" in (CLI_DIR.parent / "__main__.py").read_text()


def _raise(exc: BaseException) -> None:
    raise exc


def _abort_at_prompt() -> None:  # click's prompt: `raise Abort() from None` on a KeyboardInterrupt
    import click

    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None


@pytest.mark.parametrize(("interrupt", "code", "said"), [
    (lambda: _raise(KeyboardInterrupt()), 130, "syncer: interrupted"),  # inside a command
    (_abort_at_prompt, 130, "syncer: interrupted"),  # at apply's prompt
    (lambda: _raise(EOFError()), 1, "syncer: aborted"),  # stdin closed at a prompt
])
def test_ctrl_c_exits_130_as_documented_and_a_closed_prompt_1(
        interrupt: Any, code: int, said: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """click turns a KeyboardInterrupt inside a command into its Abort: it exited 1, like any
    failure, where docs/plan.md says 130 (CI tells an interrupt from a failure by it)."""
    from syncer.cli.main import main
    from syncer.engine import facade as engine

    monkeypatch.setattr(engine, "validated", lambda *_a, **_k: interrupt())
    with pytest.raises(SystemExit) as exit_:
        main(["validate"])
    assert exit_.value.code == code and said in capsys.readouterr().err


def test_progress_lines_of_parallel_deployments_never_share_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wave's deployments report from threads of their own; on a pipe (CI, a log) each
    progress line must stay whole. The stand-in stdout yields at every write, as a busy
    machine's scheduler may."""
    import threading
    import time

    from syncer.cli.views import PlainProgress

    class Slow:
        def __init__(self) -> None:
            self.parts: list[str] = []

        def write(self, text: str) -> int:
            self.parts.append(text)
            time.sleep(0.001)
            return len(text)

        def flush(self) -> None:
            return None

    out = Slow()
    monkeypatch.setattr(sys, "stdout", out)
    progress = PlainProgress()
    threads = [threading.Thread(target=lambda n=n: [progress(f"d{n}", f"step {i}") for i in range(20)])
               for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = "".join(out.parts).splitlines()
    assert len(lines) == 120 and all(re.fullmatch(r"  d\d: step \d+", ln) for ln in lines), lines[:5]
