"""The one place that masks secrets.

A `Redactor` knows the exact secret values a project references (never "every environment
variable") and masks them in text and in structured data before anything is printed,
logged, stored, served or sent. Structured data is masked value by value, before it is
serialised, so a secret equal to `null`, `true` or a JSON key cannot corrupt a document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from syncer.core.record import Record, record

MASK = "***"
MIN_LENGTH = 4  # shorter values are not masked inside text: "on", "1" would mask everything


@record
class Redactor(Record):
    """Masks each of `values` (longest first) wherever it appears."""

    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str | None]) -> Redactor:
        """A redactor for these secret values (empty and very short ones ignored), and for the
        forms output gives them: trimmed of the whitespace around them, each line of a
        multi-line one (a PEM key: output is read, shown and stored line by line), and as they
        appear inside JSON text."""
        kept: set[str] = set()
        for v in values:
            if v:
                kept.update(f for f in (v, v.strip(), *(line.strip() for line in v.splitlines()))
                            if len(f) >= MIN_LENGTH)
        escaped = {json.dumps(v, ensure_ascii=False)[1:-1] for v in kept}  # as they appear inside JSON text
        return cls(tuple(sorted(kept | escaped, key=lambda v: (-len(v), v))))

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        """`text` with every secret value replaced by ***. (Output cut short is masked before
        the cut: a piece of a secret is no value a mask knows, and text that merely begins with
        a secret's last characters — `API_TOKEN` before a value `TOKEN-…` — is no secret.)"""
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def data(self, value: Any) -> Any:
        """JSON-like `value` with every string (keys included) masked; other scalars kept."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {(self.text(k) if isinstance(k, str) else k): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def lines(self, lines: Iterable[str]) -> list[str]:
        """Each line masked."""
        return [self.text(line) for line in lines]


NOTHING = Redactor()

