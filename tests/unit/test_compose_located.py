"""One cause, one problem, where it is written (QA): a `depends_on` naming no service was
located at the service, by the check of the repository it becomes; one naming a service left
out by its profiles was said twice; an `extends` that failed added "neither an image nor a
build", which only followed from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.engine.importer import import_compose


def _problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").write_text(text)
    report = import_compose(tmp_path / "app" / "compose.yaml", out=tmp_path / "out", environ={})
    return [str(p).removeprefix(f"{tmp_path / 'app'}/") for p in report.problems]


@pytest.mark.parametrize(("depends_on", "at"), [
    ("\n      - db\n      - nope", "6:9"), ("\n      db: {condition: service_started}\n      nope: {}", "6:7")])
def test_a_dependency_on_no_service_is_located_at_its_entry_once(tmp_path: Path, depends_on: str, at: str) -> None:
    problems = _problems(tmp_path, f"services:\n  web:\n    image: busybox\n    depends_on:{depends_on}\n"
                                   "  db: {image: busybox}\n")
    assert problems == [f"compose.yaml:{at}: service 'web': depends_on: 'nope' is not a service of this Compose"
                        " application (Compose refuses it too)"]


def test_a_dependency_on_a_service_left_out_by_its_profiles_is_one_problem_at_its_entry(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "services:\n  web:\n    image: busybox\n    depends_on: [dbg]\n"
                                   "  dbg: {image: busybox, profiles: [debug]}\n")
    assert problems == ["compose.yaml:4:18: service 'web': depends_on: 'dbg' is in profile debug: Compose starts it"
                        " only when asked (--profile debug)"]


def test_an_extends_that_fails_is_the_one_problem_of_its_service(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "services:\n  web:\n    extends: base\n  ok:\n    image: busybox\n"
                                   "    extends: {service: gone}\n")
    assert problems == ["compose.yaml:3:5: service 'web': extends: no service 'base' in this file",
                        "compose.yaml:6:5: service 'ok': extends: no service 'gone' in this file"]
