"""scripts/test runs the suite as two shards: the side shard's list names paths that exist,
once each, and the main shard ignores exactly them, so every test runs in one shard."""

from __future__ import annotations

import re

from tests.helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "test"


def _side() -> list[str]:
    block = re.search(r"^SIDE=\(\n(.*?)^\)", SCRIPT.read_text(), re.M | re.S)
    assert block, "scripts/test has no SIDE=( ... ) list"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_side_shard_names_existing_test_paths_once_each() -> None:
    side = _side()
    assert side[0] == "tests/unit", "the unit tests go first (the other shard sweeps leftovers meanwhile)"
    assert len(side) == len(set(side)), side
    for path in side:
        assert path.startswith("tests/") and (REPO_ROOT / path).exists(), path


def test_the_main_shard_ignores_the_side_shard_and_runs_the_rest() -> None:
    text = SCRIPT.read_text()
    assert 'for path in "${SIDE[@]}"; do IGNORE+=("--ignore=$path"); done' in text
    assert '"${PYTEST[@]}" tests "${IGNORE[@]}"' in text and '"${PYTEST[@]}" "${SIDE[@]}"' in text
    integration = sorted(p.relative_to(REPO_ROOT).as_posix()
                         for p in (REPO_ROOT / "tests" / "integration").glob("test_*.py"))
    main = [p for p in integration if p not in _side()]
    assert len(main) >= len(integration) // 2, "the main engine's tests stay in the main shard"
