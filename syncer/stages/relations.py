"""Checks across definitions: dependencies (unknown, self, cycles, `completed` on a job
only), `network_mode: container:X` naming a definition, and host ports published twice on
one server. Each problem is located at the definition that wrote it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncer.core.labels import shared_with
from syncer.core.model import Definition, Located, ProjectConfig, Server, Template
from syncer.stages import ports
from syncer.stages.catalog import Catalog
from syncer.stages.collect import Collector
from syncer.stages.load import locate


def check_ports(definitions: list[Definition], catalog: Catalog, config: ProjectConfig, out: Collector) -> None:
    """Two definitions of one server publishing one host port: refused here, not by Docker
    halfway through an apply."""
    by_server: dict[str, list[tuple[str, Located, tuple[Any, ...], str, int, str]]] = {}
    for d in definitions:
        tpl, _ = catalog.pick(f"{d.template}@{d.template_version}")
        if tpl is None:
            continue
        target = config.servers.get(d.server, Server(d.server))
        mine = list(ports.published(tpl, d, target))
        by_server.setdefault(d.server, []).extend((d.name, *entry) for entry in mine)
        count = _replicas(tpl, d)
        if count > 1 and target.kind != "swarm":  # (Swarm's ingress spreads a published port over the tasks)
            for origin, path, ip, port, protocol in mine:
                where = f"{ip}:" if ip not in ports.WILDCARDS else ""
                out.at(origin, path, f"definition '{d.name}' publishes host port {where}{port}/{protocol} with"
                       f" {count} replicas on server '{d.server}': only one container can bind it (publish an"
                       " ephemeral host port, or run one replica)")
    for server, entries in by_server.items():
        for (name, origin, path), (other, first, first_path), which in ports.clashes(entries):
            line, _ = locate(out.files[first.file], first.doc, first_path)
            out.at(origin, path, f"definition '{name}' publishes host port {which} on server '{server}',"
                   f" which definition '{other}' publishes too ({first.file}:{line})")


def _replicas(tpl: Template, d: Definition) -> int:
    """The replicas a definition asks for as written (the definition's, its profile's, its
    overrides', the spec's, as the render takes them); 1 when an input gives them (unknown here)."""
    profile = tpl.profiles.get(d.profile) or {}
    for value in (d.replicas, profile.get("replicas"), d.overrides.get("replicas"), tpl.spec.get("replicas")):
        if value is not None:
            return value if isinstance(value, int) and not isinstance(value, bool) else 1
    return 1


def check_global_replicas(definitions: list[Definition], catalog: Catalog, out: Collector) -> None:
    """`mode: global` (a task on each node) with `replicas` beside it, from the definition,
    its overrides, its profile or the spec: refused here, at the line that set them, as the
    render would (whatever the server: under Compose too it is one container)."""
    why = ("mode: global runs one task on each node: replicas cannot go with it (as `docker stack deploy`"
           " refuses)")
    for d in definitions:
        tpl, _ = catalog.pick(f"{d.template}@{d.template_version}")
        if tpl is None:
            continue
        profile = tpl.profiles.get(d.profile) or {}
        mode = d.overrides.get("mode", profile.get("mode", tpl.spec.get("mode")))
        if mode != "global":
            continue
        for where, path, given in ((d.origin, ("replicas",), d.replicas is not None),
                                   (d.origin, ("overrides", "replicas"), "replicas" in d.overrides),
                                   (tpl.origin, ("profiles", d.profile, "replicas"), "replicas" in profile),
                                   (tpl.origin, ("spec", "replicas"), "replicas" in tpl.spec)):
            if given:
                out.at(where, path, why)
                break


def check_network_modes(definitions: list[Definition], found: list[Template], broken: set[str],
                         out: Collector) -> None:
    """`network_mode: container:X` must name a definition of the project."""
    names = {d.name for d in definitions} | broken
    tpls = {(t.id, t.version): t for t in found}
    for d in definitions:
        tpl = tpls.get((d.template, d.template_version or ""))
        for where, base, spec in ((d.origin, ("overrides",), d.overrides),
                                  *(((tpl.origin, ("spec",), tpl.spec),) if tpl else ())):
            mode = spec.get("network_mode")
            owner = shared_with(mode) if isinstance(mode, str) and "${" not in mode else ""
            if owner:
                if owner not in names:
                    out.at(where, (*base, "network_mode"), f"network_mode names an unknown definition '{owner}'")
                break


def check_dependencies(definitions: list[Definition], broken: set[str], out: Collector,
                        kinds: Mapping[str, str] | None = None) -> None:
    names = {d.name for d in definitions}
    graph: dict[str, tuple[str, ...]] = {}
    for d in definitions:
        for i, dep in enumerate(d.depends_on):
            at = ("depends_on", dep) if dep in d.conditions else ("depends_on", i)
            if dep == d.name:
                out.at(d.origin, at, f"'{d.name}' depends on itself", key=dep in d.conditions)
            elif dep not in names and dep not in broken:  # a broken one is reported already
                out.at(d.origin, at, f"depends_on names an unknown definition '{dep}'", key=dep in d.conditions)
            elif d.conditions.get(dep) == "completed" and (kinds or {}).get(dep, "job") != "job":
                out.at(d.origin, (*at, "condition"), f"condition 'completed' needs a job, and '{dep}' is a"
                       " service (its template has no `kind: job`)")
        graph[d.name] = tuple(x for x in d.depends_on if x in names and x != d.name)
    by_name = {d.name: d for d in definitions}
    for cycle in find_cycles(graph):
        first = by_name[cycle[0]]
        out.at(first.origin, ("depends_on",), "dependency cycle: " + " -> ".join([*cycle, cycle[0]]))


def find_cycles(graph: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Each cycle of a dependency graph once, starting from its smallest name."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):]
                start = cycle.index(min(cycle))
                cycles.append(cycle[start:] + cycle[:start])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles
