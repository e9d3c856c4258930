"""The one mask (core/redact.py): a secret's whole value, and the forms output gives it — line
by line, trimmed, and cut short through it at the start or end of a text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncer.core.redact import EDGE, Redactor

LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_", min_size=EDGE + 1, max_size=40)
OTHER = st.text(alphabet="0123456789 .:=|", max_size=30)  # (output around it shares no character with it)


def _pieces(secret: str) -> set[str]:
    return {secret[i:i + EDGE] for i in range(len(secret) - EDGE + 1)}


@given(LETTERS, OTHER, OTHER, st.integers(min_value=0, max_value=200))
def test_output_cut_through_a_secret_shows_no_piece_of_it(secret: str, before: str, after: str, at: int) -> None:
    """A failure's message is the last N characters of the output, or the first N: either
    cut may fall inside the secret."""
    text = before + secret + after
    at = at % (len(text) + 1)
    mask = Redactor.of([secret])
    for shown in (mask.text(text[at:]), mask.text(text[:at])):
        assert not any(p in shown for p in _pieces(secret)), shown


def test_a_multi_line_secret_is_masked_line_by_line_and_a_padded_one_trimmed() -> None:
    pem = "-----BEGIN KEY-----\nMIIBVgIBADANBgkqhkiG9w0B\n-----END KEY-----\n"
    mask = Redactor.of([pem, "  s3cr3t-pad  "])
    assert mask.text("key: MIIBVgIBADANBgkqhkiG9w0B") == "key: ***"  # output read (and shown) a line at a time
    assert mask.text("a | -----BEGIN KEY----- | b") == "a | *** | b"
    assert mask.text("probe saw s3cr3t-pad") == "probe saw ***"  # output trimmed of the spaces around it
    assert mask.text(pem) == "***"


def test_the_mask_leaves_alone_what_holds_no_secret() -> None:
    mask = Redactor.of(["hunter22-long-secret", "on"])
    assert mask.text("on and on, 2024-12-03T10:00:00Z hunt") == "on and on, 2024-12-03T10:00:00Z hunt"
    assert mask.text("a hunter22") == "a ***"  # (its first EDGE characters or more at the end: a cut)
    assert mask.text("long-secret") == "***"  # (wholly inside it: a piece)
    assert mask.text("secret") == "***" and mask.text("secre") == "secre"  # EDGE characters or more
