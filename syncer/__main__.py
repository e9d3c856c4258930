"""`python -m syncer` runs the command line."""

from syncer.cli.main import run

run()
