"""tools.import_graph: the floors come from the import-linter contract, and the drawing drops implied arrows."""

from __future__ import annotations

from tools.import_graph import read_floors, reduce


def test_an_arrow_implied_by_a_longer_path_is_dropped() -> None:
    edges = {"cli": {"api", "service", "errors"}, "api": {"service"}, "service": {"errors"}, "errors": set()}
    assert reduce(edges) == {"cli": {"api"}, "api": {"service"}, "service": {"errors"}, "errors": set()}


def test_the_floors_are_read_bottom_first_from_the_contract() -> None:
    layout = read_floors()
    assert layout.root == "framequeue"
    assert layout.floors[0] == ["framequeue.errors"]
    assert "framequeue.cli" in layout.floors[-2]
    assert all(" " not in module for floor in layout.floors for module in floor)
