"""schemas/plan.schema.json is the plan file's format: every plan the golden cases make, as
`syncer plan --json` writes it, validates against it and reads back (the test that fails when
the writer and the schema drift apart), its kinds are the model's, and a file of any size or
depth is refused in one line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import syncer.cli.views as views
from syncer.core.errors import UsageError
from syncer.core.model import ACTION_KINDS, Plan
from syncer.engine.deploy import read_plan
from syncer.stages import schema
from syncer.stages.planfile import DEPTH, KINDS, Malformed, read, refusal, to_dict
from tests.unit import test_networks_files_jobs, test_plan, test_swarm
from tests.unit.test_plan import make_plan
from tests.unit.test_planfile_read import DESIRED, saved

GOLDEN = Path(__file__).resolve().parent.parent / "cases" / "plan_text"
# each golden plan and the test that makes it (the plan is caught where the test prints it)
GOLDEN_TESTS: dict[str, Callable[[], None]] = {
    "every-action": lambda: test_plan.test_golden_plan_text("every-action"),
    "no-changes": lambda: test_plan.test_golden_plan_text("no-changes"),
    "unreachable-server": lambda: test_plan.test_golden_plan_text("unreachable-server"),
    "swarm": test_swarm.test_golden_plan_text_with_a_swarm_server_beside_a_docker_one,
    "networks-and-jobs": test_networks_files_jobs.test_golden_plan_text_with_networks_and_jobs,
}


def test_every_golden_plan_is_checked_here() -> None:
    assert {p.stem for p in GOLDEN.glob("*.txt")} == set(GOLDEN_TESTS)


@pytest.mark.parametrize("name", sorted(GOLDEN_TESTS))
def test_the_json_of_each_golden_plan_validates_and_reads_back(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plans: list[Plan] = []
    text = views.plan_text

    def caught(p: Plan, **kw: Any) -> str:
        plans.append(p)
        return text(p, **kw)

    for module in (views, test_plan, test_networks_files_jobs):  # (test_swarm imports it where it prints)
        monkeypatch.setattr(module, "plan_text", caught)
    GOLDEN_TESTS[name]()
    assert plans, name
    for p in plans:
        data = json.loads(views.to_json(to_dict(p, desired_hash="sha256:d")))  # what `plan --json` prints
        problems = [m for _, _, m in schema.iter_problems(schema.validator("plan", exact=True), data)]
        assert problems == [], problems
        assert read(data).plan == p


def test_the_schema_knows_the_kinds_the_model_has() -> None:
    defs = schema.load_schema("plan")["$defs"]
    assert defs["action"]["properties"]["action"]["enum"] == list(KINDS)
    assert list(defs["counts"]["properties"]) == list(KINDS)
    assert defs["counts"]["required"] == list(ACTION_KINDS)


def test_the_writer_names_the_fields_the_schema_requires() -> None:
    data = saved()
    defs = schema.load_schema("plan")["$defs"]
    assert list(data) == defs["plan"]["required"]
    assert list(data["actions"][0]) == defs["action"]["required"]
    assert list(data["servers"]["local"]) == defs["server"]["required"]


def test_a_file_of_many_bad_fields_is_one_line_in_bounded_time(tmp_path: Path) -> None:
    data = saved()
    data["actions"] = [{**data["actions"][0], **{f"x{i}": i for i in range(200)}} for _ in range(5000)]
    (tmp_path / "plan.json").write_text(json.dumps(data))
    started = time.monotonic()
    with pytest.raises(UsageError) as caught:
        read_plan(tmp_path / "plan.json")
    assert time.monotonic() - started < 10
    assert str(caught.value).startswith(f"{tmp_path / 'plan.json'}: not a syncer plan: unknown field 'actions[0].x0'")
    assert "\n" not in str(caught.value)


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_value_deeper_than_a_plan_holds_is_refused_before_anything_recurses_over_it(tmp_path: Path) -> None:
    data = saved()
    data["actions"][0]["reasons"][0]["before"] = nested(100000)
    with pytest.raises(Malformed, match=rf"^nested too deep \(over {DEPTH} levels\)$"):
        read(data)
    data["actions"][0]["reasons"][0]["before"] = nested(DEPTH - 5)  # (as deep as a spec's value goes)
    assert refusal(read(data), make_plan(), DESIRED) is not None
    # a file json reads, but whose values the comparison with the plan made now could not recurse over
    text = json.dumps(saved()).replace('"before": "info"', '"before": ' + "[" * 990 + "]" * 990)
    (tmp_path / "plan.json").write_text(text)
    with pytest.raises(UsageError, match=rf"^{tmp_path / 'plan.json'}: not a syncer plan: nested too deep"):
        read_plan(tmp_path / "plan.json")


def test_the_example_in_the_docs_is_a_plan_file() -> None:
    text = (Path(__file__).resolve().parent.parent.parent / "docs" / "plan.md").read_text()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    assert read(json.loads(example)).plan.project == "demo"
