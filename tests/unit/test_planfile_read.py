"""The saved plan file read strictly and compared with the plan made now (QA round 2, S3:
`apply PLAN` applied the fresh plan whatever the file said, and a missing field read as a
stale plan)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from syncer.core.errors import StalePlan, UsageError
from syncer.core.model import ACTION_KINDS, Desired
from syncer.engine.deploy import check_fresh, read_plan
from syncer.stages.plan import desired_hash
from syncer.stages.planfile import Malformed, read, refusal, to_dict
from tests.unit.test_plan import make_plan, scenario

DESIRED = "sha256:d"
AGAIN = "; run `syncer plan --out FILE` again"


def saved() -> dict[str, Any]:
    return json.loads(json.dumps(to_dict(make_plan(), desired_hash=DESIRED)))


def edit(change: Callable[[dict[str, Any]], object]) -> Any:
    """The saved plan changed in place by `change`, or what `change` gives when it is a whole
    other value (a `Whole`)."""
    data = saved()
    out = change(data)
    return out.value if isinstance(out, Whole) else data


class Whole:
    def __init__(self, value: object) -> None:
        self.value = value


def each_action(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for a in data["actions"]:
            a[key] = value
    return change


def drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data.pop(key)
    return change


def drop_in_actions(key: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for a in data["actions"]:
            a.pop(key)
    return change


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: Whole([d]), "document: expected object, got array"),
    (lambda d: Whole("plan"), 'document: expected object, got "plan"'),
    (drop("fingerprint"), "missing required field 'fingerprint'"),
    (drop("desired"), "missing required field 'desired'"),
    (drop("project"), "missing required field 'project'"),
    (drop("commit"), "missing required field 'commit'"),
    (drop("actions"), "missing required field 'actions'"),
    (lambda d: d.update(format_version="1"), 'format_version: expected 1, got "1"'),
    (lambda d: d.update(format_version=2), "format_version: expected 1, got 2"),
    (lambda d: d.update(format_version=True), "format_version: expected 1, got true"),
    (lambda d: d.update(format_version=1.0), "format_version: expected integer, got 1.0"),
    (lambda d: d.update(format_version=2, newer=1), "format_version: expected 1, got 2"),
    (drop("format_version"), "missing required field 'format_version'"),
    (lambda d: d.update(fingerprint=5), "fingerprint: expected string, got 5"),
    (lambda d: d.update(project=["x"]), "project: expected string, got array"),
    (lambda d: d.update(commit=7), "commit: expected string or null, got 7"),
    (lambda d: d.update(dirty="no"), 'dirty: expected boolean, got "no"'),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
    (lambda d: d.update(actions="x"), 'actions: expected array, got "x"'),
    (lambda d: d.update(actions=[{}]), "missing required field 'actions[0].action'"),
    (lambda d: d.update(actions=["create"]), 'actions[0]: expected object, got "create"'),
    (each_action("action", "explode"), 'actions[0].action: "explode" is not one of "create", "recreate",'),
    (each_action("action", 3), 'actions[0].action: 3 is not one of "create",'),
    (each_action("revision", "x"), 'actions[0].revision: expected integer, got "x"'),
    (each_action("revision", 3.0), "actions[0].revision: expected integer, got 3.0"),
    (each_action("replica", True), "actions[0].replica: expected integer, got true"),
    (drop_in_actions("container"), "missing required field 'actions[0].container'"),
    (each_action("stay_stopped", "false"), 'actions[0].stay_stopped: expected boolean, got "false"'),
    (each_action("stay_stopped", [1]), "actions[0].stay_stopped: expected boolean, got array"),
    (each_action("stay_stoped", True), "unknown field 'actions[0].stay_stoped' (did you mean 'stay_stopped'?)"),
    (each_action("reasons", {}), "actions[0].reasons: expected array, got object"),
    (each_action("reasons", [{"field": "env.A", "before": 1}]), "missing required field 'actions[0].reasons[0].after'"),
    (each_action("reasons", [{"field": "env.A", "sensitive": False, "note": "x"}]),
     "actions[0].reasons[0].sensitive: expected true, got false"),
    (lambda d: d["summary"].update(create=0), "summary: does not count the plan's actions"),
    (lambda d: d["servers"]["local"].update(kind="k8s"), 'servers.local.kind: "k8s" is not one of "docker", "swarm"'),
    (lambda d: d["servers"]["local"].update(reachable="yes"),
     'servers.local.reachable: expected boolean, got "yes"'),
    # what the schema catches that the hand checks did not, or told less precisely
    (lambda d: d["servers"]["local"]["summary"].pop("noop"), "missing required field 'servers.local.summary.noop'"),
    (lambda d: d["servers"]["local"]["summary"].update(restarts=1),
     "unknown field 'servers.local.summary.restarts' (did you mean 'restart'?)"),
    (lambda d: d["servers"]["local"]["summary"].update(create="1"),
     'servers.local.summary.create: expected integer, got "1"'),
    (lambda d: d["summary"].update(explode=0), "unknown field 'summary.explode'"),
    (lambda d: d["summary"].update(create=-1), "summary.create: -1 is less than the minimum of 0"),
    (lambda d: d["servers"].update(edge={}), "missing required field 'servers.edge.reachable'"),
    (each_action("action", "Create"), 'actions[0].action: "Create" is not one of "create", "recreate",'),
    (each_action("reasons", [{"field": "env.A", "sensitive": True, "note": "x"}]),
     'actions[0].reasons[0].note: expected "(sensitive value changed)", got "x"'),
    (lambda d: d.update(format_version=2, actions="x"), "format_version: expected 1, got 2"),
])
def test_a_malformed_plan_names_the_field_and_what_is_wrong(change: Callable[[dict[str, Any]], object],
                                                            message: str) -> None:
    with pytest.raises(Malformed) as caught:
        read(edit(change))
    assert str(caught.value).startswith(message), str(caught.value)


def test_what_the_writer_writes_reads_back_and_false_stays_false() -> None:
    back = read(saved(), source="plan.json")
    assert (back.plan, back.desired, back.source) == (make_plan(), DESIRED, "plan.json")
    assert read(edit(each_action("stay_stopped", False))).plan == make_plan()


def test_the_plan_made_now_is_no_refusal_whatever_the_order_of_its_actions() -> None:
    assert refusal(read(saved()), make_plan(), DESIRED) is None
    reordered = read(edit(lambda d: d.update(actions=d["actions"][::-1])))
    assert refusal(reordered, make_plan(), DESIRED) is None


@pytest.mark.parametrize(("change", "why"), [
    (each_action("action", "noop"), "the file has noop api that is not planned"),
    (lambda d: d["actions"][0].update(cause="anything"), "the file has recreate api that is not planned"),
    (lambda d: d["actions"][0].update(revision=1), "the file has recreate api that is not planned"),
    (lambda d: d["actions"][0]["reasons"].pop(), "the file has recreate api that is not planned"),
    (lambda d: d["actions"][0].update(stay_stopped=True), "the file has recreate api that is not planned"),
    (lambda d: d.update(actions=[]), "recreate api is planned but not in the file"),
    (lambda d: d["actions"].append(d["actions"][0]), "the file has recreate api that is not planned"),
    (lambda d: d["servers"]["local"].update(kind="swarm"), "its servers are not the plan's"),
])
def test_an_edited_plan_is_refused_as_edited(change: Callable[[dict[str, Any]], object], why: str) -> None:
    assert refusal(read(counted(edit(change))), make_plan(), DESIRED) == \
        f"its actions are not the plan of its commit and live state (edited? {why}){AGAIN}"


def counted(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with its summary counting its actions (an editor who kept the file consistent)."""
    counts = {k: 0 for k in ACTION_KINDS}
    for a in data["actions"]:
        counts[a["action"]] = counts.get(a["action"], 0) + 1
    return {**data, "summary": counts}


@pytest.mark.parametrize(("change", "why"), [
    (lambda d: d.update(project="other"), "the plan is for project 'other', not 'p'"),
    (lambda d: d.update(commit="abc"),
     f"the plan is stale: the repository changed since it was made (plan commit abc, now None){AGAIN}"),
    (lambda d: d.update(desired="sha256:x"),
     f"the plan is stale: the repository changed since it was made (its files){AGAIN}"),
    (lambda d: d.update(fingerprint="sha256:x"),
     f"the plan is stale: the live containers changed since it was made{AGAIN}"),
])
def test_a_stale_plan_is_refused_as_stale(change: Callable[[dict[str, Any]], object], why: str) -> None:
    assert refusal(read(edit(change)), make_plan(), DESIRED) == why


def test_a_saved_plan_at_the_same_commit_whose_files_moved_says_so() -> None:
    data = edit(lambda d: d.update(commit="abc", desired="sha256:x"))
    assert refusal(read(data), replace(make_plan(), commit="abc"), DESIRED) == \
        f"the plan is stale: the repository changed since it was made (its files, at the same commit){AGAIN}"


def test_check_fresh_refuses_naming_the_file() -> None:
    desired: Desired = scenario()[0]
    data = json.loads(json.dumps(to_dict(make_plan(), desired_hash=desired_hash(desired))))
    check_fresh(read(data, source="plan.json"), make_plan(), desired)  # (the plan made now: applied)
    with pytest.raises(StalePlan, match=r"^plan\.json: its actions are not the plan of its commit and live state"
                                        r" \(edited\? the file has noop api"):
        check_fresh(read(counted(edit(each_action("action", "noop")) | {"desired": desired_hash(desired)}),
                         source="plan.json"), make_plan(), desired)


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "plan.json: not a syncer plan: not JSON (Expecting property name enclosed in double quotes:"),
    ("", "plan.json: not a syncer plan: not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("[" * 100000, "plan.json: not a syncer plan: nested too deep"),
    ('{"format_version": 1}', "plan.json: not a syncer plan: missing required field 'project'"),
])
def test_a_file_that_is_not_a_plan_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         text: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("plan.json").write_text(text)
    with pytest.raises(UsageError) as caught:
        read_plan(Path("plan.json"))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value), str(caught.value)


def test_a_file_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="^cannot read plan file .*/gone.json: No such file or directory$"):
        read_plan(tmp_path / "gone.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(UsageError, match=r"bin\.json: not a syncer plan: not UTF-8 text$"):
        read_plan(tmp_path / "bin.json")
