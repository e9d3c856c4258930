"""The one `${...}` scanner: what it finds, and that it is linear."""

from __future__ import annotations

import time

from syncer.stages import expr


def test_split_names_and_whole() -> None:
    assert expr.split("a ${ inputs.x }-${y}") == ["a ", expr.Expr("inputs.x"), "-", expr.Expr("y")]
    assert expr.names("${a}${b} ${") == ["a", "b"]
    assert expr.whole("${ inputs.port }") == "inputs.port"
    assert expr.whole("${a}${b}") is None and expr.whole(" ${a}") is None
    assert expr.split("${ no end") == ["${ no end"]


def test_a_doubled_dollar_before_a_brace_is_a_literal_brace_expression_as_under_compose() -> None:
    assert expr.split("pg_isready -U $${POSTGRES_USER} -d ${inputs.db}") == [
        "pg_isready -U ${POSTGRES_USER} -d ", expr.Expr("inputs.db")]
    assert expr.names("$${HOME} $${PATH}") == [] and expr.split("$${HOME}") == ["${HOME}"]
    assert expr.whole("$${x}") is None and expr.split("$$${x}") == ["$${x}"]
    assert expr.split("echo $$ $HOME") == ["echo $$ $HOME"]  # any other `$` stays as written


def test_many_unclosed_expressions_cost_one_pass() -> None:
    text = "${" * 200_000  # the regex scan this replaced took quadratic time here
    started = time.perf_counter()
    assert expr.names(text) == []
    assert time.perf_counter() - started < 0.5
