"""A project network changed by hand, as `syncer watch` reads it: a network removed is a fault
of the project (stages/selfheal), the event stream keeps the project's own removals only
(engine/sources), and a burst of network events is one sync request (daemon/bursts)."""

from __future__ import annotations

import threading
from typing import Any

from syncer.daemon.bursts import Burst, gathered
from syncer.engine import sources
from syncer.stages import selfheal
from tests.helpers import wait_until


def _event(action: str, name: str, ident: str = "net1", **attrs: str) -> dict[str, Any]:
    return {"Type": "network", "Action": action, "Actor": {"ID": ident, "Attributes": {"name": name, **attrs}}}


def test_a_network_removed_is_a_fault_that_names_the_network() -> None:
    v = selfheal.read_event(_event("destroy", "p_front", type="bridge"), own=set())
    assert (v.what, v.name, v.container_id, v.why) == ("removed", "p_front", "net1", "network p_front removed")
    for action in ("create", "connect"):
        assert selfheal.read_event(_event(action, "p_front"), own=set()).what == "ignore"


def test_the_project_networks_are_told_by_their_names() -> None:
    assert selfheal.project_network("p", "p") and selfheal.project_network("p_front", "p")
    assert not selfheal.project_network("p2", "p") and not selfheal.project_network("proxy", "p")


def test_the_stream_keeps_the_removal_of_the_projects_networks_only() -> None:
    events = [_event("destroy", "p"), _event("destroy", "p2"), _event("destroy", "proxy"),
              _event("disconnect", "proxy", container="c1"), _event("destroy", "p_front")]
    kept = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in sources._own_removals(iter(events), "p")]
    assert kept == [("destroy", "p"), ("disconnect", "proxy"), ("destroy", "p_front")]


def test_a_burst_is_requested_for_its_one_definition_or_else_the_whole_project() -> None:
    assert gathered({"web": "web off p"}) == ("web off p", "web")
    assert gathered({"web": "web off p", "api": "api off p"}) == ("web off p; api off p", None)
    assert gathered({None: "network p removed"}) == ("network p removed", None)


def _burst(quiet: float) -> tuple[Burst, list[tuple[str, str | None]]]:
    calls: list[tuple[str, str | None]] = []
    return Burst(quiet, lambda reason, definition: calls.append((reason, definition))), calls


def test_the_twin_disconnect_events_of_one_hand_change_are_one_request() -> None:
    burst, calls = _burst(0.05)
    for _ in range(2):  # (Docker sends each disconnect twice, milliseconds apart)
        burst.begin()
    burst.end("docker: a container of web disconnected from network p", "web", found=True)
    burst.end("docker: a container of web disconnected from network p", "web", found=True)
    wait_until(lambda: calls, 5, interval=0.01)
    assert not burst._draining and calls == [("docker: a container of web disconnected from network p", "web")]


def test_a_burst_waits_for_every_check_begun_and_asks_nothing_when_none_found_a_fault() -> None:
    burst, calls = _burst(0.01)
    burst.begin()
    burst.begin()
    burst.end("released as it ended", None)  # (a container that ends is released from its networks)
    assert not threading.Event().wait(0.1) and calls == []  # (ten quiet times passed: one check is still open)
    burst.end("docker: network p removed", found=True)
    wait_until(lambda: calls, 5, interval=0.01)
    assert calls == [("docker: network p removed", None)]
    burst.begin()
    burst.end("released as it ended", "web")
    wait_until(lambda: not burst._draining, 5, interval=0.01)
    assert calls == [("docker: network p removed", None)]


def test_a_fault_found_is_requested_at_the_bursts_longest_while_other_events_keep_coming() -> None:
    """The stream carries the disconnects of other containers on a shared network the project
    joins (a proxy's): a busy one must not hold the project's fault back as long as it is busy."""
    calls: list[tuple[str, str | None]] = []
    burst = Burst(0.05, lambda reason, definition: calls.append((reason, definition)), longest=0.3)
    burst.begin()
    burst.end("docker: a container of web disconnected from network p", "web", found=True)
    burst.begin()  # a check still open when the burst reaches its longest: its finding is requested after
    stop = threading.Event()

    def churn() -> None:  # others' events every 0.02 s (less than the quiet time), found nothing
        while not stop.wait(0.02):
            burst.begin()
            burst.end("not the project's container")
    threading.Thread(target=churn, daemon=True).start()
    try:
        wait_until(lambda: calls, 3, interval=0.01, message="the fault requested while the churn goes on")
        assert calls == [("docker: a container of web disconnected from network p", "web")]
        burst.end("docker: a container of api disconnected from network p", "api", found=True)
        wait_until(lambda: len(calls) == 2, 3, interval=0.01, message="the late finding requested")
        assert calls[1] == ("docker: a container of api disconnected from network p", "api")
    finally:
        stop.set()
