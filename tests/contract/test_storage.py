"""The ObjectStore contract, run against every object store backend."""

from __future__ import annotations

import hashlib
import urllib.request

import pytest

from framequeue.errors import InvalidKey, InvalidParams, NotFound, ObjectExists, PresignUnsupported
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


#: large enough for several multipart parts in every backend that has parts (S3: 8 MiB)
MULTIPART_BYTES = 20 * 1024 * 1024 + 3


def _pattern(size: int, seed: int = 0) -> bytes:
    """Every 64 KiB block starts with its index, so a lost, repeated or reordered part changes the bytes."""
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    blocks = (size + len(block) - 1) // len(block)
    return b"".join(i.to_bytes(8, "big") + block[8:] for i in range(blocks))[:size]


def test_a_create_only_write_refuses_an_existing_object(objects: ObjectStore) -> None:
    objects.put("outputs/j/result.json", b"first", create_only=True)
    with pytest.raises(ObjectExists):
        objects.put("outputs/j/result.json", b"second", create_only=True)
    with pytest.raises(ObjectExists), objects.open_write("outputs/j/result.json", create_only=True) as fh:
        fh.write(b"third")
    assert objects.get("outputs/j/result.json") == b"first"
    objects.put("outputs/j/result.json", b"overwritten")  # without create_only a write replaces
    assert objects.get("outputs/j/result.json") == b"overwritten"


@pytest.mark.parametrize("size", [5, MULTIPART_BYTES], ids=["small", "multipart"])
def test_of_two_racing_create_only_writers_exactly_one_commits(objects: ObjectStore, size: int) -> None:
    first, second = _pattern(size, seed=1), _pattern(size, seed=2)
    # both open before either commits: the check at open passes for both, the commit decides
    a = objects.open_write("outputs/j/video.mp4", create_only=True)
    b = objects.open_write("outputs/j/video.mp4", create_only=True)
    a.__enter__().write(first)
    b.__enter__().write(second)
    a.__exit__(None, None, None)
    with pytest.raises(ObjectExists):
        b.__exit__(None, None, None)
    assert objects.get("outputs/j/video.mp4") == first
    assert objects.list("outputs/") == ["outputs/j/video.mp4"]  # no staging or partial object is left


def test_reads_stream_in_chunks(objects: ObjectStore) -> None:
    data = _pattern(3 * 1024 * 1024 + 17)
    objects.put("inputs/clip.mp4", data)
    pieces = []
    with objects.open_read("inputs/clip.mp4") as fh:
        while piece := fh.read(64 * 1024):
            assert len(piece) <= 64 * 1024
            pieces.append(piece)
        assert fh.read(10) == b""
    assert len(pieces) >= 49
    assert b"".join(pieces) == data


def test_a_multipart_sized_write_in_many_pieces(objects: ObjectStore) -> None:
    data = _pattern(MULTIPART_BYTES)
    piece = bytearray(1024 * 1024 - 1)  # reused for every write, as a copy loop reuses its buffer
    with objects.open_write("outputs/j/annotated.mp4") as fh:
        for start in range(0, len(data), len(piece)):
            n = min(len(piece), len(data) - start)
            piece[:n] = data[start:start + n]
            fh.write(memoryview(piece)[:n])
    assert objects.size("outputs/j/annotated.mp4") == len(data)
    with objects.open_read("outputs/j/annotated.mp4") as fh:
        assert hashlib.sha256(fh.read()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("create_only", [False, True], ids=["overwrite", "create_only"])
def test_a_failed_multipart_sized_write_leaves_no_object(objects: ObjectStore, create_only: bool) -> None:
    with pytest.raises(RuntimeError), objects.open_write("outputs/j/big.mp4", create_only=create_only) as fh:
        fh.write(_pattern(MULTIPART_BYTES))
        raise RuntimeError("encoder crashed")
    assert objects.size("outputs/j/big.mp4") is None
    assert objects.list("") == []


def test_presigned_urls_get_and_put_one_object(objects: ObjectStore) -> None:
    objects.put("inputs/a.bin", b"payload")
    try:
        get_url = objects.presign("inputs/a.bin", "GET", expires_s=60)
    except PresignUnsupported:
        assert objects.url("inputs/a.bin").split("://")[0] in ("file", "memory")
        return
    with urllib.request.urlopen(get_url, timeout=10) as resp:
        assert resp.read() == b"payload"
    put_url = objects.presign("inputs/b.bin", "PUT", expires_s=60)
    req = urllib.request.Request(put_url, data=b"uploaded", method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    assert objects.get("inputs/b.bin") == b"uploaded"


def test_presign_checks_its_arguments(objects: ObjectStore) -> None:
    with pytest.raises(InvalidKey):
        objects.presign("../etc/passwd")
    with pytest.raises(InvalidParams):
        objects.presign("inputs/a.bin", "DELETE", 60)  # type: ignore[arg-type]
    with pytest.raises(InvalidParams):
        objects.presign("inputs/a.bin", "GET", expires_s=8 * 24 * 3600)


def test_missing_objects(objects: ObjectStore) -> None:
    with pytest.raises(NotFound), objects.open_read("inputs/none.mp4"):
        pass
    assert objects.size("inputs/none.mp4") is None
    assert objects.list("inputs/") == []
    objects.delete("inputs/none.mp4")


RANGED_BYTES = 3 * 1024 * 1024 + 17


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (5, 70_000), (1024 * 1024 - 1, 2 * 1024 * 1024 + 5), (RANGED_BYTES - 10, None), (100, None),
     (RANGED_BYTES - 3, RANGED_BYTES + 500), (0, None)],
    ids=["first-byte", "small", "across-chunks", "tail", "open-ended", "past-the-end", "whole"],
)
def test_a_ranged_read_streams_the_slice(objects: ObjectStore, start: int, end: int | None) -> None:
    data = _pattern(RANGED_BYTES)
    objects.put("outputs/j/annotated.mp4", data)
    pieces = []
    with objects.open_read("outputs/j/annotated.mp4", start=start, end=end) as fh:
        while piece := fh.read(64 * 1024):
            assert len(piece) <= 64 * 1024
            pieces.append(piece)
    assert b"".join(pieces) == data[start:end]


def test_a_range_at_or_past_the_end_reads_nothing(objects: ObjectStore) -> None:
    objects.put("outputs/j/a.json", b"0123456789")
    for start, end in ((10, None), (25, 40), (4, 4)):
        with objects.open_read("outputs/j/a.json", start=start, end=end) as fh:
            assert fh.read() == b""
    with pytest.raises(NotFound), objects.open_read("outputs/j/none.json", start=2, end=2):
        pass
    with pytest.raises(NotFound), objects.open_read("outputs/j/none.json", start=3, end=9):
        pass


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 4)])
def test_a_backwards_range_is_refused(objects: ObjectStore, start: int, end: int | None) -> None:
    objects.put("outputs/j/a.json", b"0123456789")
    with pytest.raises(InvalidParams), objects.open_read("outputs/j/a.json", start=start, end=end):
        pass
