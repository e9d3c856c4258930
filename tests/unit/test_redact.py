"""The one mask (core/redact.py): a secret's whole value, and the forms output gives it — line
by line, trimmed — and output cut short masked before the cut (engine/readiness.tail,
stages/health.probe_output), so that no piece of a secret is left where the cut fell."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from syncer.core.redact import Redactor
from syncer.engine.readiness import tail
from syncer.stages.health import probe_output

PIECE = 6  # characters of a secret that would say too much
LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_", min_size=PIECE + 1, max_size=40)
OTHER = st.text(alphabet="0123456789 .:=", max_size=400)  # (output around it shares no character with it)


def _pieces(secret: str) -> set[str]:
    return {secret[i:i + PIECE] for i in range(len(secret) - PIECE + 1)}


class _Logs:
    def __init__(self, text: str) -> None:
        self.text = text

    def logs(self, ident: str, *, tail: int) -> str:  # what Docker gives: a time stamp, a space, the line
        return "".join(f"2026-12-03T10:00:00.000000000Z {line}\n" for line in self.text.splitlines()[-tail:])


@given(LETTERS, OTHER, st.data())
def test_output_cut_short_shows_no_piece_of_a_secret_wherever_the_cut_falls(secret: str, other: str,
                                                                          data: st.DataObject) -> None:
    """A failure quotes the last 2 lines' last 200 characters, and a probe's first 200: the cut
    may fall inside the secret, leaving its last (first) `kept` characters. Masked first, it cannot."""
    mask = Redactor.of([secret])
    kept = data.draw(st.integers(min_value=PIECE, max_value=len(secret) - 1))
    after = "0" * (200 - len(" | last line") - kept)  # the cut falls `kept` characters before the secret's end
    shown = tail(_Logs(f"{other}{secret}{after}\nlast line"), "c", mask, 2)  # type: ignore[arg-type]
    assert not any(p in shown for p in _pieces(secret)), shown
    before = "0" * (200 - kept)  # the cut falls `kept` characters after the secret's start
    state: dict[str, Any] = {"Health": {"Log": [{"ExitCode": 1, "Output": f"{before}{secret}{other}"}]}}
    shown = probe_output(state, mask)
    assert not any(p in shown for p in _pieces(secret)), shown


def test_a_multi_line_secret_is_masked_line_by_line_and_a_padded_one_trimmed() -> None:
    pem = "-----BEGIN KEY-----\nMIIBVgIBADANBgkqhkiG9w0B\n-----END KEY-----\n"
    mask = Redactor.of([pem, "  s3cr3t-pad  "])
    assert mask.text("key: MIIBVgIBADANBgkqhkiG9w0B") == "key: ***"  # output read (and shown) a line at a time
    assert mask.text("a | -----BEGIN KEY----- | b") == "a | *** | b"
    assert mask.text("probe saw s3cr3t-pad") == "probe saw ***"  # output trimmed of the spaces around it
    assert mask.text(pem) == "***"


def test_the_mask_leaves_alone_what_holds_no_secret() -> None:
    """A secret's name beside a value that begins with its last letters is no secret."""
    mask = Redactor.of(["CANARY-api-7f3e", "on"])
    assert mask.text("params: {secret: API_CANARY}") == "params: {secret: API_CANARY}"
    assert mask.text("on and on, 2024-12-03T10:00:00Z") == "on and on, 2024-12-03T10:00:00Z"
    assert mask.text("x=CANARY-api-7f3e;") == "x=***;"
