"""The text Compose gives a number or a boolean where it wants text.

compose-go reads a file with yaml.v3 and keeps the values of `environment`, `labels`,
`sysctls`, logging and driver options as strings: a number becomes the text Go's `%v` prints
(`1e6` is "1e+06", `1000.0` "1000", an integer too big for 64 bits a float's text) and a
boolean "true" or "false". syncer's own templates would turn `1000.0` into "1000.0", so the
import writes Compose's text: the container sees what Compose's would.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

# the mappings whose values Compose keeps as text (a list form's `K=V` entries are text already)
_SERVICE = ("environment", "labels", "sysctls", "annotations", "extra_hosts", ("deploy", "labels"),
            ("logging", "options"))
_RESOURCE = ("labels", "driver_opts")


def go_text(value: Any) -> Any:
    """A scalar as Go's `%v` prints what yaml.v3 read; None (a value left to the shell) and
    anything that is not a scalar stay as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):  # int64 or uint64 in yaml.v3, else a float
        return str(value) if -2**63 <= value < 2**64 else go_float(float(value))
    if isinstance(value, float):
        return go_float(value)
    return value


def go_float(f: float) -> str:
    """`strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits that read back as `f`, with
    an exponent when it is below -4 or 6 and above (`1e+06`, `1.5e-05`, `123456.5`)."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, digits, exponent = Decimal(repr(f)).as_tuple()
    assert isinstance(exponent, int)  # (finite)
    point = len(digits) + exponent  # f is 0.<digits> x 10**point
    shown = "".join(map(str, digits)).rstrip("0")
    power = point - 1
    if power < -4 or power >= 6:
        text = shown[0] + ("." + shown[1:] if len(shown) > 1 else "") + f"e{'-' if power < 0 else '+'}{abs(power):02d}"
    elif point <= 0:
        text = "0." + "0" * -point + shown
    elif point >= len(shown):
        text = shown + "0" * (point - len(shown))
    else:
        text = shown[:point] + "." + shown[point:]
    return ("-" if sign else "") + text


def as_compose_text(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (a merged Compose file), its text mappings' values made Compose's text in place."""
    def texts(holder: Any, path: Any) -> None:
        keys = (path,) if isinstance(path, str) else path
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        mapping = holder.get(keys[-1]) if isinstance(holder, dict) else None
        if isinstance(mapping, dict):
            holder[keys[-1]] = type(mapping)((k, go_text(v)) for k, v in mapping.items())  # (an !override stays one)

    for kind, paths in (("services", _SERVICE), ("networks", _RESOURCE), ("volumes", _RESOURCE)):
        for entry in (doc.get(kind) or {}).values() if isinstance(doc.get(kind), dict) else ():
            if isinstance(entry, dict):
                for path in paths:
                    texts(entry, path)
    return doc
