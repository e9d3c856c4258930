"""What Compose refuses in a service, found before the import reads it: a service with
neither an image nor a build, a field of another shape than Compose's schema gives it,
`scale` beside a different `deploy.replicas`. Read as they were, they made something up (an
image named as a built one), were read piece by piece (`ports: "8080:80"`, a port a
character) or one of them silently won, and were said far from where they are, or not at
all. Pure."""

from __future__ import annotations

from typing import Any

from syncer.stages.collect import yaml_kind
from syncer.stages.compose_fields import Problems
from syncer.stages.render import substitute

# the list fields, and the kinds of entry Compose takes in each (`docker compose config` on
# each; `env_file`, `tmpfs`, `dns` and `dns_search` may be one string, a list of one)
_LISTS: dict[str, tuple[type, ...]] = {
    "ports": (str, int, dict), "volumes": (str, dict), "volumes_from": (str,), "configs": (str, dict),
    "secrets": (str, dict), "env_file": (str, dict), "tmpfs": (str,), "profiles": (str,), "cap_add": (str,),
    "cap_drop": (str,), "dns": (str,), "dns_search": (str,), "dns_opt": (str,), "expose": (str, int),
    "group_add": (str, int), "security_opt": (str,), "devices": (str, dict), "links": (str,),
}
_ONE_STRING = ("env_file", "tmpfs", "dns", "dns_search")
_LIST_OR_MAPPING = ("networks", "depends_on")  # a list of names, or a mapping of them to settings
_ENTRIES_OR_MAPPING = {"labels": (str,), "sysctls": (str,), "extra_hosts": (str,)}  # ["K=V"] or {K: V}
_MAPPINGS = ("deploy", "healthcheck", "logging", "ulimits")
_STRING_OR_LIST = ("command", "entrypoint")
_SCALARS = (str, int, float, bool)


def service(raw: Any, built: str) -> tuple[dict[str, Any] | None, Problems]:
    """The service as the import may read it — without what Compose would refuse in it, and
    with the image Compose names one it builds (`built`: `<project>-<service>`) when it names
    none; None when what Compose refuses is the service itself — and the problems, as (key
    path in the service, reason with the key named)."""
    if not isinstance(raw, (dict, type(None))):
        return None, [((), "expected a mapping")]
    raw = raw or {}
    if raw.get("image") in (None, "") and raw.get("build") is None:  # (an `extends` left is one that failed: said)
        return None, [] if "extends" in raw else [((), "neither an image nor a build: Compose refuses it too (give it"
                                                       " the image it runs)")]
    problems: Problems = []
    kept = dict(raw)
    for key, value in raw.items():
        if value is None:  # (an empty field is Compose's absent one)
            continue
        why = _shape(str(key), value)
        if why is not None:
            problems.append(((key,), f"{key}: {why} (Compose refuses it too)"))
            del kept[key]
        elif (kinds := _LISTS.get(key) or _ENTRIES_OR_MAPPING.get(key)) and isinstance(value, list):
            kept[key] = _entries(str(key), value, kinds, problems)
        elif key == "environment":
            kept[key] = _environment(value, problems)
    replicas = raw.get("deploy", {}).get("replicas") if isinstance(raw.get("deploy"), dict) else None
    differ = str(raw.get("scale")) != str(replicas) and "$" not in str(raw.get("scale")) + str(replicas)
    if "scale" in kept and replicas is not None and differ:  # (a variable: known at `up` only)
        problems.append((("scale",), f"scale: {raw['scale']} beside deploy.replicas: {replicas}: Compose refuses"
                                     " distinct values (give one of them)"))
        del kept["scale"]
    if kept.get("image") in (None, ""):  # (a build alone: the name `docker compose build` gives its image)
        kept["image"] = built
    return kept, problems


def _shape(key: str, value: Any) -> str | None:
    """Why `value` is not of the shape Compose's schema gives `key`, or None."""
    if key in _LISTS and not isinstance(value, list) and not (key in _ONE_STRING and isinstance(value, str)):
        return f"expected a list, got {_kind(value)}"
    if key in (*_LIST_OR_MAPPING, *_ENTRIES_OR_MAPPING, "environment") and not isinstance(value, (list, dict)):
        return f"expected a list or a mapping, got {_kind(value)}"
    if key in _MAPPINGS and not isinstance(value, dict):
        return f"expected a mapping, got {_kind(value)}"
    if key in _STRING_OR_LIST and not isinstance(value, (str, list)):
        return f"expected a string or a list, got {_kind(value)}"
    return None


def _entries(key: str, value: list[Any], kinds: tuple[type, ...], problems: Problems) -> list[Any]:
    """The entries of the kinds Compose takes; each other one a problem of its own."""
    kept = []
    for i, entry in enumerate(value):
        if isinstance(entry, kinds) and not isinstance(entry, bool):
            kept.append(entry)
        else:
            wanted = " or ".join(_NAMES[k] for k in kinds)
            problems.append(((key, i), f"{key}.{i}: expected {wanted}, got {_kind(entry)} (Compose refuses it too)"))
    return kept


def _environment(value: list[Any] | dict[Any, Any], problems: Problems) -> Any:
    """`["KEY=VALUE"]` entries that are text, a mapping's values that are scalars (or empty)."""
    if isinstance(value, list):
        kept = [e for e in value if isinstance(e, str)]
        problems.extend((("environment", i), f"environment.{i}: expected KEY=VALUE text, got {_kind(e)} (Compose"
                                             " refuses it too)") for i, e in enumerate(value) if not isinstance(e, str))
        return kept
    bad = [k for k, v in value.items() if v is not None and not isinstance(v, _SCALARS)]
    problems.extend((("environment", k), f"environment.{k}: expected a string, a number, a boolean or nothing, got"
                                         f" {_kind(value[k])} (Compose refuses it too)") for k in bad)
    return {k: v for k, v in value.items() if k not in bad}


_NAMES = {str: "a string", int: "a number", dict: "a mapping"}


def _kind(value: Any) -> str:
    return "a mapping" if isinstance(value, dict) else "nothing" if value is None else yaml_kind(value)


def whole_replicas(definition: dict[str, Any], defaults: dict[str, Any]) -> str:
    """`scale` or `deploy.replicas` given as text (`scale: ${N:-2}`, `replicas: "3"`), which
    Compose reads as the number it names: that number in `definition` (a definition's replicas
    is no template text). The problem, "" when none (the replicas left out, as Compose's 1)."""
    value = definition.get("replicas")
    if not isinstance(value, str):
        return ""
    read = substitute(value, defaults)  # (as validate reads the template: a variable its default)
    if isinstance(read, int) or (isinstance(read, str) and read.strip().isdigit()):
        definition["replicas"] = int(read)
        return ""
    del definition["replicas"]
    return ("replicas: no whole number (a variable without one for its default is read by Compose at `up`"
            " only: give the number, or the variable a default)")
