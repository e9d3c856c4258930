"""What a container list's row says of its networks: each by name, with its endpoint's network id."""

from __future__ import annotations

from syncer.adapters.engine_rows import endpoints


def test_each_network_a_row_names_comes_with_its_endpoints_network_id() -> None:
    row = {"NetworkSettings": {"Networks": {"p": {"NetworkID": "abc"}, "p_front": {"NetworkID": ""},
                                            "old": None}}}
    assert endpoints(row) == {"p": "abc", "p_front": "", "old": ""}  # ("": not known: one never started)
    assert endpoints({}) == endpoints({"NetworkSettings": None}) == {}
