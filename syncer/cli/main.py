"""The command line: parse → engine → view → exit code. Nothing is decided here.

Each command's module is imported when that command runs (`base.LazyGroup`).

Exit codes: 0 success, 1 any error (usage errors included), 2 only for
`plan --detailed-exitcode` when there are changes.
"""

from __future__ import annotations

import gc

# Start-up makes tens of thousands of objects (modules, classes, dataclasses) and no garbage:
# the collector's ~30 passes over them cost a command a few ms. Off while the CLI and the engine
# are imported; then those objects are frozen (never walked again: they live as long as the
# process), and the collector is back on (as it was) before any command runs. Without the
# freeze, the first allocation after `enable` walked all of them at once in the youngest
# generation: 5-9 ms of every command.
_collecting = gc.isenabled()
gc.disable()
try:
    import os
    import sys
    from typing import NoReturn

    import click

    from syncer.cli.base import cli
    from syncer.core.errors import SyncerError
finally:
    gc.freeze()
    if _collecting:
        gc.enable()

__all__ = ["cli", "main", "run"]


def _fail(lines: list[str], code: int = 1) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; every error becomes one clear message and exit code 1."""
    try:
        code = cli.main(args=argv, prog_name="syncer", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _fail([f"syncer: {exc.format_message()}" + _usage_hint(exc)])
    except click.exceptions.Abort as exc:  # click's for Ctrl-C (KeyboardInterrupt) and for stdin closed at a prompt
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):  # (its prompt raises `from None`)
            _fail(["syncer: interrupted"], 130)
        _fail(["syncer: aborted"])
    except SyncerError as exc:
        _fail(exc.lines(), exc.exit_code)
    except KeyboardInterrupt:
        _fail(["syncer: interrupted"], 130)
    except OSError as exc:  # the machine's, not a bug: a full or read-only disk, a symlink loop...
        if os.environ.get("SYNCER_DEBUG"):
            raise
        where = f": {exc.filename}" if exc.filename else ""
        _fail([f"syncer: {exc.strerror or exc}{where}"])
    except Exception as exc:  # a bug: say so in one line, never a traceback
        if os.environ.get("SYNCER_DEBUG"):
            raise
        _fail([f"syncer: internal error: {exc.__class__.__name__}: {exc} (set SYNCER_DEBUG=1 for details)"])
    sys.exit(code if isinstance(code, int) else 0)


def run() -> NoReturn:
    """The `syncer` process: `main()`, then an exit whose last collections skip everything
    start-up and the command made (gc.freeze). Interpreter shutdown otherwise walks every
    object the ~250 modules and the command created: 10-20 ms of a 0.15 s no-op apply.
    Atexit handlers, threads and finalizers run as on any exit; only cyclic garbage is left
    to the operating system. (`main` itself stays free of this process-wide switch: tests
    call it many times in one process.)"""
    try:
        main()
    finally:
        gc.freeze()


def _usage_hint(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return f" (see '{ctx.command_path} --help')"
    return ""
