"""framequeue.worker.inputs: a job's input as a local file, in place or copied once per claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from framequeue.errors import NotFound
from framequeue.storage.local import LocalObjectStore
from framequeue.worker.inputs import local_file


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    objects = LocalObjectStore(tmp_path / "store")
    objects.put("inputs/a.mp4", b"video bytes")
    return objects


def test_a_local_store_is_read_in_place_without_a_copy(store: LocalObjectStore, tmp_path: Path) -> None:
    copy = tmp_path / "scratch" / "input.mp4"
    path = local_file(store, "inputs/a.mp4", copy, in_place=True)
    assert path == store.path("inputs/a.mp4") and path.read_bytes() == b"video bytes"
    assert not copy.exists()


def test_a_copy_is_made_once_and_reused_within_the_claim(store: LocalObjectStore, tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    copy = tmp_path / "scratch" / "input.mp4"
    assert local_file(store, "inputs/a.mp4", copy, in_place=False) == copy
    assert copy.read_bytes() == b"video bytes"
    assert [p.name for p in copy.parent.iterdir()] == ["input.mp4"]  # no .part left behind
    store.delete("inputs/a.mp4")  # a second fetch would fail: the copy serves the attempt after the scan
    assert local_file(store, "inputs/a.mp4", copy, in_place=False).read_bytes() == b"video bytes"


def test_a_missing_object_is_not_found_and_leaves_no_copy(store: LocalObjectStore, tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    copy = tmp_path / "scratch" / "input.mp4"
    for in_place in (True, False):
        with pytest.raises(NotFound):
            local_file(store, "inputs/gone.mp4", copy, in_place=in_place)
    assert not copy.exists()


def test_a_partial_copy_is_never_taken_for_a_whole_one(store: LocalObjectStore, tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    copy = tmp_path / "scratch" / "input.mp4"
    (tmp_path / "scratch" / "input.mp4.part").write_bytes(b"vid")  # a fetch cut short
    assert local_file(store, "inputs/a.mp4", copy, in_place=False).read_bytes() == b"video bytes"
