"""The autoscaler's decisions as the API shows them: the tail of the decisions file (bounded reads, cut-off
lines skipped), the file rotated past its size, and GET /v1/queue's `autoscaler` (null without a file)."""

from __future__ import annotations

import json
from pathlib import Path

from framequeue.api.queue_view import DECISIONS_SHOWN, autoscaler_view
from framequeue.scaling.autoscale.decisions import Tick, _rotate, default_decisions_path, tail_decisions, write_decision


def _write(path: Path, count: int) -> None:
    for i in range(count):
        write_decision(Tick(t=1_700_000_000.0 + i, waiting=i, in_flight=1, current=i % 3, desired=(i + 1) % 3,
                            endpoints=0, reason=f"decision {i}"), path)


def test_the_tail_is_the_newest_decisions_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "autoscale.jsonl"
    _write(path, 50)
    tail = tail_decisions(path, 20)
    assert tail is not None and [d["reason"] for d in tail] == [f"decision {i}" for i in range(30, 50)]
    assert tail_decisions(path, 0) == []
    assert tail_decisions(tmp_path / "none.jsonl", 20) is None


def test_the_read_is_bounded_and_cut_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "autoscale.jsonl"
    _write(path, 200)
    with path.open("a") as fh:
        fh.write('{"t": 1, "reason": "cut off by a cra')  # a crash mid-line
    one_line = len(path.read_text().splitlines()[0]) + 1
    tail = tail_decisions(path, 100, max_bytes=int(one_line * 4.5))
    # 4.5 lines of window: the half line at its start and the cut-off one at the end are dropped
    assert tail is not None and [d["reason"] for d in tail] == [f"decision {i}" for i in range(196, 200)]


def test_a_decisions_file_past_its_size_is_rotated(tmp_path: Path) -> None:
    path = tmp_path / "autoscale.jsonl"
    _write(path, 5)
    _rotate(path, max_bytes=10)
    assert not path.exists() and len((tmp_path / "autoscale.jsonl.1").read_text().splitlines()) == 5
    _write(path, 2)
    assert len(path.read_text().splitlines()) == 2


def test_the_queue_view_shows_the_last_decisions_or_null(tmp_path: Path) -> None:
    path = default_decisions_path(tmp_path)
    assert autoscaler_view(path) is None
    _write(path, DECISIONS_SHOWN + 5)
    view = autoscaler_view(path)
    assert view is not None and len(view["decisions"]) == DECISIONS_SHOWN
    last = view["decisions"][-1]
    assert last["reason"] == f"decision {DECISIONS_SHOWN + 4}" and last["time"].startswith("2023-11-")
    assert set(last) == {"time", "t", "waiting", "in_flight", "current", "desired", "live", "draining", "reason"}
    assert "started" not in json.dumps(view)
