"""The ObjectStore contract, run against every object store backend."""

from __future__ import annotations

import pytest

from framequeue.errors import InvalidKey, NotFound
from framequeue.storage.base import ObjectStore


def test_put_get_list_delete(objects: ObjectStore) -> None:
    objects.put("outputs/j/a.json", b"{}")
    with objects.open_write("outputs/j/b.bin") as fh:
        for _ in range(4):
            fh.write(b"x" * 1000)
    assert objects.get("outputs/j/a.json") == b"{}"
    assert objects.size("outputs/j/b.bin") == 4000
    assert objects.list("outputs/j/") == ["outputs/j/a.json", "outputs/j/b.bin"]
    objects.delete("outputs/j/a.json")
    objects.delete("outputs/j/a.json")
    assert objects.size("outputs/j/a.json") is None
    with pytest.raises(NotFound):
        objects.get("outputs/j/a.json")


def test_a_failed_write_leaves_no_object(objects: ObjectStore) -> None:
    with pytest.raises(RuntimeError), objects.open_write("outputs/j/partial.mp4") as fh:
        fh.write(b"half")
        raise RuntimeError("disk full")
    assert objects.size("outputs/j/partial.mp4") is None
    assert objects.list("outputs/j/") == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "a/../../b", "a\x00b", "a\\b", "x" * 5000, "", "a//b"])
def test_keys_that_could_escape_are_refused(objects: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        objects.put(key, b"x")
    with pytest.raises(InvalidKey):
        objects.size(key)


def test_deleting_the_last_object_under_a_prefix_leaves_no_trace(objects: ObjectStore) -> None:
    objects.put("outputs/j/attempt-1/a.mp4", b"x")
    objects.put("outputs/j/attempt-2/a.mp4", b"y")
    objects.delete("outputs/j/attempt-1/a.mp4")
    assert objects.list("outputs/j/") == ["outputs/j/attempt-2/a.mp4"]
    assert objects.list("outputs/j/attempt-1/") == []
