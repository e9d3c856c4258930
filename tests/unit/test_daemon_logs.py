"""`syncer watch --log-format text` promises one line per event: an error of several lines
(each secret or file it names) stays on one, with its time and level."""

from __future__ import annotations

import logging

from syncer.daemon.logs import JsonFormatter, TextFormatter


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("syncer.daemon.watch", logging.ERROR, __file__, 1, message, None, None)


def test_a_message_of_several_lines_is_one_log_line() -> None:
    line = TextFormatter().format(_record("a: secret A is not set\nb: secret B is not set\n"))
    assert "\n" not in line and line.endswith(" ERROR a: secret A is not set | b: secret B is not set")
    assert "\n" not in JsonFormatter().format(_record("x\ny"))
