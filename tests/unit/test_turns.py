"""heal.Turns: actions on one container take turns in the order they lined up; other
containers' lines are their own."""

from __future__ import annotations

import threading

from syncer.engine.heal import Turns


def test_places_go_in_the_order_they_lined_up() -> None:
    turns, order = Turns(), []
    first = turns.line_up(("local", "abc"))
    later = [turns.line_up(("local", "abc")) for _ in range(5)]

    def act(n: int) -> None:
        with later[n]:
            order.append(n)

    threads = [threading.Thread(target=act, args=(n,)) for n in reversed(range(5))]  # started last-first
    with first:
        for t in threads:
            t.start()
        assert order == []  # none goes before `first` leaves
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_another_container_does_not_wait_and_a_line_left_is_forgotten() -> None:
    turns = Turns()
    with turns.line_up(("local", "abc")), turns.line_up(("local", "def")):  # (abc's line: blocked for ever)
        pass
    assert not turns._lines
