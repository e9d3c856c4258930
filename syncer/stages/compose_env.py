"""A Compose service's `environment:` as a syncer spec's `env`: a value that looks like a
password becomes a secret input, and a variable Compose takes from the shell (`KEY:` or
`- KEY` with no value) an input to give. Pure."""

from __future__ import annotations

import re
from typing import Any

from syncer.stages.compose_vars import Vars, credentialed, passwordish, split_env


def environment(vars: Vars, value: Any) -> Any:
    """`environment:` (a mapping or a list of `KEY=VALUE`, already interpolated) in the same
    form, each value as `env_value` makes it."""
    pairs = value.items() if isinstance(value, dict) else (split_env(str(v)) for v in value)
    env: dict[str, Any] = {}
    for name, v in pairs:
        env[name] = env_value(vars, str(name), v)
    if isinstance(value, dict):
        return env
    return [f"{k}={v}" for k, v in env.items()]


def env_value(vars: Vars, name: str, value: Any) -> Any:
    """One environment value: a password (by its name, or a URL holding one) becomes a
    secret input, a value the shell gives (None) an input (one Compose sets: its value),
    any other stays as it is."""
    whole = re.fullmatch(r"\$\{inputs\.([a-z0-9_]+)\}", value) if isinstance(value, str) else None
    if value is None and name in vars.fixed:  # (Compose passes its own value, not the shell's)
        return vars.fixed[name]
    if not passwordish(name) and not credentialed(value):
        if value is None:  # Compose passes the shell's value at `up` (none: the variable is not set)
            var = vars.use(name)
            var.shell = True
            return "${inputs." + var.input + "}"
        return value
    if whole is not None:
        var = next(v for v in vars.found.values() if v.input == whole.group(1))
    else:
        var = vars.use(name)
    var.secret = True
    return "${inputs." + var.input + "}"
