"""What every command shares: the root group, its options, and the engine context they make."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click

from syncer import __version__
from syncer.engine import facade as engine

PATH = click.Path(path_type=Path)

# Each command (or group) of the root and the module of syncer.cli that registers it: a
# command imports its own module only, never every command's (start-up is most of a no-op).
# tests/unit/test_cli_commands.py checks this table against what the modules register.
COMMANDS = {
    "validate": "project", "plan": "project", "apply": "project", "rollback": "project",
    "status": "records", "history": "records", "deployments": "records",
    "templates": "catalog", "servers": "catalog", "init": "catalog", "completion": "catalog",
    "instances": "instances", "logs": "instances", "watch": "daemon", "serve": "daemon",
    "webhooks": "admin", "keys": "admin", "secrets": "secrets", "import": "importer",
}


class LazyGroup(click.Group):
    """The root group: lists every command of COMMANDS, imports a command's module when
    that command is looked up (to run, or for its --help or a shell completion)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"syncer.cli.{COMMANDS[cmd_name]}")
        return self.commands.get(cmd_name)


def context(obj: dict[str, Any], ref: str | None = None) -> engine.Context:
    """The engine's Context from the root options."""
    return engine.Context(repo=obj.get("repo"), state_dir=obj.get("state_dir"),
                          secrets_file=obj.get("secrets_file"), ref=ref, policy_file=obj.get("policy"))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--repo", type=PATH, envvar="SYNCER_REPO",
              help="Project directory (default: the current directory or the nearest parent holding syncer.yaml). Env: SYNCER_REPO.")
@click.option("--state-dir", type=PATH, envvar="SYNCER_STATE_DIR",
              help="Where the store lives (default: .syncer/ beside syncer.yaml). Env: SYNCER_STATE_DIR.")
@click.option("--secrets-file", type=PATH, envvar="SYNCER_SECRETS_FILE",
              help="A file of NAME=value lines (or a YAML mapping) kept outside git; the environment variables syncer.yaml allows (secrets: {env: [...]}) win over it. Env: SYNCER_SECRETS_FILE.")
@click.option("--policy", type=PATH, envvar="SYNCER_POLICY",
              help="The operator's policy (a YAML file shaped like syncer.yaml's policy:): what the repository's"
                   " containers may ask of the host; the repository's policy: can only tighten it. Env: SYNCER_POLICY.")
@click.version_option(__version__, prog_name="syncer")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, state_dir: Path | None, secrets_file: Path | None,
        policy: Path | None) -> None:
    """syncer keeps Docker servers converged to a git repository of YAML.

    Templates (a catalog with JSON Schema inputs) and definitions (a template, params, a
    profile, a server) say what should run; `syncer plan` shows how live Docker differs,
    `syncer apply` makes it so.
    """
    ctx.obj = {"repo": repo, "state_dir": state_dir, "secrets_file": secrets_file, "policy": policy}


def flush_webhooks(obj: dict[str, Any], as_json: bool, project: Any = None) -> None:
    """One-shot commands have no Notifier: try the due deliveries for a few seconds."""
    delivered, queued = engine.flush_webhooks(context(obj), timeout=3.0, project=project)
    if queued and not as_json:
        click.echo(f"webhooks: {queued} delivery(ies) still queued; `syncer watch`/`serve` or the next apply"
                   " retries them (see `syncer webhooks deliveries`)", err=True)
