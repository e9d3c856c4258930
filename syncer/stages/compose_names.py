"""What a Compose service's container is called in syncer and how the others reach it:
`container_name` names its definition, the service's name stays a DNS alias (`with_alias`),
`links` become dependencies and aliases. Pure; problems as (key path, reason) pairs, for
the caller to locate in the Compose file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from syncer.stages.compose_fields import Problems
from syncer.stages.compose_vars import fixed_only

_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def container_names(services: dict[str, Any], prefix: str = "",
                    fixed: Mapping[str, str] | None = None) -> tuple[dict[str, str], Problems]:
    """`container_name` of each service: syncer names a container after its definition, so
    the definition takes that name (the service's name stays reachable: `with_alias`). With
    a `prefix`, a service without one is named `<prefix><service>` the same way: two Compose
    applications' `db` side by side on one host, as Compose's `<project>-db-1`. A
    container_name may use the variables Compose sets itself (`fixed`: compose_vars.fixed_only). Returns
    service → name for the names that differ from their service's; problems as
    ((service, key...), reason)."""
    renamed: dict[str, str] = {}
    problems: Problems = []
    taken = {str(n): f"the name of service '{n}'" for n in services}  # (a renamed one's alias)
    own = {str(s) for s, raw in services.items() if isinstance(raw, dict) and raw.get("container_name") is not None}
    for service in (s for s in map(str, services) if prefix and s not in own):
        name = prefix + service
        if name in taken:  # (another's DNS alias: a name would resolve to two containers)
            problems.append(((service,), f"'{name}', its name with the prefix, is also {taken[name]}"))
        else:
            renamed[service], taken[name] = name, f"the name of service '{service}' with the prefix"
    for service, raw in services.items():
        value = fixed_only(raw.get("container_name"), fixed or {}) if isinstance(raw, dict) else None
        at = (service, "container_name")
        if value is None or value == service:
            continue
        if not isinstance(value, str) or "$" in value:
            problems.append((at, "container_name: a name with a variable cannot name a definition; write the name"))
        elif not _CONTAINER_NAME.fullmatch(value):
            problems.append((at, f"container_name: '{value}' is not a container name Docker accepts"))
        elif value in taken:
            problems.append((at, f"container_name: '{value}' is also {taken[value]}"))
        else:
            renamed[str(service)], taken[value] = value, f"the container_name of service '{service}'"
    return renamed, problems


def prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot begin a definition's name (None when it can): a name starts with a
    letter or a digit, then letters, digits, `_`, `.` and `-` (a container name Docker accepts)."""
    if prefix and not _CONTAINER_NAME.fullmatch(prefix):
        return (f"'{prefix}' cannot begin a definition's name (its container's): letters, digits, '_', '.'"
                " and '-', starting with a letter or a digit")
    return None


Aliases = dict[str, list[tuple[str, frozenset[str]]]]  # service → (alias, on these networks)


def links(services: dict[str, Any], skipped: dict[str, str]) -> tuple[dict[str, list[str]], Aliases, Problems]:
    """`links: [SERVICE, SERVICE:ALIAS]` of every service: the services each one links to
    (Compose starts them first: dependencies) and the aliases each linked service gets, on
    the networks the linking service joins (every container there may use them, not only
    the one linking). Problems as ((service, index), reason)."""
    needs: dict[str, list[str]] = {}
    aliases: Aliases = {}
    problems: Problems = []
    for service, raw in services.items():
        value = raw.get("links") if isinstance(raw, dict) else None
        for i, item in enumerate(value if isinstance(value, list) else []):
            target, _, alias = str(item).partition(":")
            if target not in services:
                why = f"is {skipped[target]}" if target in skipped else "is no service of this file"
                problems.append(((service, i), f"'{target}' {why}"))
                continue
            needs.setdefault(str(service), []).append(target)
            nets = raw.get("networks")
            listed = isinstance(nets, (list, dict)) and nets
            joined = frozenset(str(n) for n in nets) if listed else frozenset({"default"})
            if alias and alias != target and (alias, joined) not in aliases.get(target, []):
                aliases.setdefault(target, []).append((alias, joined))
    return needs, aliases, problems


def with_dependencies(definition: dict[str, Any], names: list[str]) -> None:
    """`names` added to the definition's `depends_on` (as `started`), each once."""
    deps = definition.get("depends_on")
    if isinstance(deps, dict):
        for name in names:
            deps.setdefault(name, {"condition": "started"})
    else:
        listed = list(deps or [])
        definition["depends_on"] = listed + [n for n in dict.fromkeys(names) if n not in listed]


def with_alias(spec: dict[str, Any], alias: str, only: frozenset[str] | None = None) -> None:
    """`alias` as a DNS alias on every network the service joins (or on those of them in
    `only`), the project network included when it joins it: the service's name, as Compose gives it when its
    container is named otherwise, or a link's alias."""
    if spec.get("network_mode"):
        return
    given = spec.get("networks")
    named = {str(n): {} for n in given} if isinstance(given, list) else dict(given or {})
    # the project network only when the container joins it (not under `project_network: false`:
    # an alias there would put it on that network, out of an `internal` one's isolation)
    joined: dict[str, Any] = named if spec.get("project_network") is False \
        else {"default": named.pop("default", {}), **named}
    for name, conf in joined.items():
        if only is not None and name not in only:
            continue
        aliases = list((conf or {}).get("aliases") or [])
        joined[name] = {**(conf or {}), "aliases": aliases if alias in aliases else [*aliases, alias]}
    spec["networks"] = joined
