"""What `submit FILE...` and `submit --manifest` turn into: one submission a file, with its own idempotency key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framequeue.cli.batch import Submission, from_files, from_manifest
from framequeue.errors import InvalidParams

BODY = {"pipeline": "detect", "params": {"sample_fps": 5}}


def test_one_file_keeps_its_key_and_several_get_one_each(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert from_files([a], BODY, "k") == [Submission(a, BODY, "k")]
    assert [s.idempotency_key for s in from_files([a, b], BODY, "k")] == ["k-1", "k-2"]
    assert [s.idempotency_key for s in from_files([a, b], BODY, None)] == [None, None]


def test_a_manifest_line_overrides_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "clips" / name).write_bytes(b"x")
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("\n".join([
        "# nightly",
        json.dumps({"file": "clips/a.mp4", "params": {"sample_fps": 1, "min_score": 0.5}, "idempotency_key": "a"}),
        "",
        json.dumps({"file": "clips/b.mp4", "pipeline": "road", "attributes": {"camera": "front"}}),
    ]))
    first, second = from_manifest(manifest, BODY, "night")
    assert first == Submission(tmp_path / "clips" / "a.mp4",
                               {"pipeline": "detect", "params": {"sample_fps": 1, "min_score": 0.5}}, "a")
    assert second == Submission(tmp_path / "clips" / "b.mp4",
                                {"pipeline": "road", "params": {"sample_fps": 5}, "attributes": {"camera": "front"}},
                                "night-2")


@pytest.mark.parametrize(("text", "why"), [
    ("not json\n", "not JSON"),
    ('{"path": "a.mp4"}\n', '"file"'),
    ('{"file": "missing.mp4"}\n', "is not a file"),
    ('{"file": "a.mp4", "params": [1]}\n', '"params" is an object'),
    ("# nothing\n\n", "names no file"),
])
def test_a_bad_manifest_says_which_line(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(text)
    with pytest.raises(InvalidParams, match=why):
        from_manifest(manifest, BODY)
