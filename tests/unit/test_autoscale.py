"""The local autoscaler with a fake process launcher and a fake clock: nothing is started, nothing sleeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from framequeue.brokers.base import QueueStats
from framequeue.cli import main as _main
from framequeue.jobs import Job, JobStatus
from framequeue.scaling.autoscale.decisions import plot_decisions, read_decisions
from framequeue.scaling.autoscale.floors import LocalTime, parse_floor
from framequeue.scaling.autoscale.loop import Autoscaler
from framequeue.scaling.autoscale.observe import QueueLoad, QueueObserver
from framequeue.scaling.policy import HourFloor, PolicyConfig

CFG = PolicyConfig(max_workers=3, scale_out_cooldown_s=5, scale_in_cooldown_s=10, idle_to_zero_s=20)


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.signals: list[str] = []

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.signals.append("TERM")

    def kill(self) -> None:
        self.signals.append("KILL")
        self.returncode = -9


class Fleet:
    """The fake launcher, a fake clock and a fake queue, wired to one Autoscaler."""

    def __init__(self, tmp_path: Path, config: PolicyConfig = CFG) -> None:
        self.procs: list[FakeProc] = []
        self.now = 1_000_000.0
        self.waiting = 0
        self.in_flight = 0
        self.busy: frozenset[int] | None = None
        self.path = tmp_path / "decisions.jsonl"
        self.scaler = Autoscaler(config, lambda: QueueLoad(self.waiting, self.in_flight, self.busy), self.launch,
                                 clock=lambda: self.now, decisions_path=self.path, kill_after_s=30)

    def launch(self) -> FakeProc:
        proc = FakeProc(100 + len(self.procs))
        self.procs.append(proc)
        return proc

    def tick(self, after_s: float = 1.0):  # type: ignore[no-untyped-def]
        self.now += after_s
        tick = self.scaler.tick()
        assert tick is not None
        return tick

    def alive(self) -> list[int]:
        return [p.pid for p in self.procs if p.returncode is None]


def test_scale_out_starts_processes_up_to_max(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    assert f.tick().desired == 0 and f.procs == []
    f.waiting = 10
    t = f.tick()
    assert (t.current, t.desired, t.started) == (0, 3, [100, 101, 102])
    assert t.reason.startswith("activation")
    assert len(f.scaler.active) == 3
    assert f.tick().started == []  # steady: nothing more


def test_scale_out_waits_for_its_cooldown(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.waiting = 1
    assert f.tick().desired == 1
    f.waiting = 3
    t = f.tick(1.0)
    assert (t.desired, t.started) == (1, []) and "cooldown" in t.reason
    t = f.tick(5.0)
    assert (t.desired, t.started) == (3, [101, 102])


def test_scale_in_sends_sigterm_to_the_newest(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.waiting = 3
    f.tick()
    f.waiting, f.in_flight = 0, 1
    t = f.tick(11.0)
    assert (t.current, t.desired) == (3, 1)
    assert t.stopping == [102, 101]
    assert f.procs[2].signals == ["TERM"] and f.procs[1].signals == ["TERM"] and f.procs[0].signals == []
    assert (t.live, t.draining) == (1, 2)


def test_scale_in_spares_busy_workers_when_it_knows_them(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.waiting = 3
    f.tick()
    f.waiting, f.in_flight, f.busy = 0, 1, frozenset({102, 4242})  # the newest is busy; 4242 is not ours
    t = f.tick(11.0)
    assert t.stopping == [101, 100] and f.procs[2].signals == []
    f.busy = frozenset()
    f.in_flight = 0
    t = f.tick(11.0)
    assert t.stopping == [] and t.desired == 1  # idle, not yet for idle_to_zero_s
    f.busy = frozenset({102})
    t = f.tick(20.0)
    assert t.stopping == [102]  # busy or not, the last one goes when the policy says 0


def test_a_draining_worker_is_not_counted_and_is_reaped_when_it_exits(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.waiting = 2
    f.tick()
    f.waiting, f.in_flight = 0, 1
    t = f.tick(11.0)
    assert t.stopping == [101]
    # the draining worker still runs its job: the policy sees 1 worker, nothing is started in its place
    t = f.tick()
    assert (t.current, t.live, t.draining, t.started) == (1, 1, 1, [])
    assert f.alive() == [100, 101]
    f.procs[1].returncode = 0
    t = f.tick()
    assert (t.exited, t.crashed, t.draining) == ([101], [], 0)
    assert f.procs[1].signals == ["TERM"]  # never killed


def test_a_worker_that_outlives_its_drain_is_killed_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = Fleet(tmp_path)
    f.waiting = 2
    f.tick()
    f.waiting, f.in_flight = 0, 1
    f.tick(11.0)
    assert f.tick(29.0).killed == []
    t = f.tick(2.0)
    assert t.killed == [101] and f.procs[1].signals == ["TERM", "KILL"]
    assert "STILL ALIVE" in caplog.text
    assert f.tick().exited == [101]


def test_a_crashed_worker_is_replaced_by_the_next_decision(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.waiting = 2
    f.tick()
    f.procs[0].returncode = 137
    t = f.tick()  # within the scale-out cooldown: replacing is not scaling out
    assert t.crashed == [100] and t.started == [102]
    assert (t.current, t.desired, t.live) == (2, 2, 2)
    assert f.alive() == [101, 102]


def test_idle_to_zero_then_a_new_job_wakes_the_fleet(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.waiting = 1
    f.tick()
    f.waiting = 0
    assert f.tick(11.0).desired == 1  # idle, not yet for idle_to_zero_s
    t = f.tick(20.0)
    assert (t.desired, t.stopping) == (0, [100])
    f.procs[0].returncode = 0
    f.waiting = 1
    t = f.tick()
    assert (t.exited, t.desired, t.started) == ([100], 1, [101])


def test_decisions_are_written_as_json_lines(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.tick()
    f.waiting = 5
    f.tick()
    rows = [json.loads(line) for line in f.path.read_text().splitlines()]
    assert [(r["waiting"], r["current"], r["desired"], r["endpoints"]) for r in rows] == [(0, 0, 0, 0), (5, 0, 3, 1)]
    assert rows[1]["started"] == [100, 101, 102] and rows[1]["reason"].startswith("activation")
    assert rows[1]["time"] == datetime.fromtimestamp(f.now, UTC).isoformat(timespec="seconds")
    assert list(read_decisions(f.path)) == rows


def test_shutdown_sigterms_every_worker_and_waits_for_them(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.waiting = 3
    f.tick()
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        f.now += s
        for p in f.procs:
            if len(sleeps) >= 3 and p.returncode is None:
                p.returncode = 0

    f.scaler.shutdown(poll_s=1.0, sleep=sleep)
    assert all(p.signals == ["TERM"] for p in f.procs)
    assert f.scaler.workers == [] and len(sleeps) == 3
    last = list(read_decisions(f.path))[-1]
    assert last["desired"] == 0 and sorted(last["exited"]) == [100, 101, 102]


def test_unreadable_queue_skips_the_decision(tmp_path: Path) -> None:
    def broken() -> QueueLoad:
        raise ConnectionError("refused")

    scaler = Autoscaler(CFG, broken, lambda: FakeProc(1), clock=lambda: 0.0)
    assert scaler.tick() is None and scaler.workers == []


class FakeBroker:
    def stats(self) -> QueueStats:
        return QueueStats(ready=4, in_flight=1, delayed=2)


class FakeStore:
    def list_jobs(self, status: JobStatus | None = None, limit: int = 50, after: str | None = None) -> list[Job]:
        assert status is JobStatus.RUNNING
        owners = ["here:11", "here:12", "elsewhere:13", None]
        return [SimpleNamespace(lease_owner=o) for o in owners]  # type: ignore[misc]


def test_observer_counts_delayed_as_waiting_and_prefers_the_job_stores_running() -> None:
    assert QueueObserver(FakeBroker())() == QueueLoad(6, 1, None)  # type: ignore[arg-type]
    load = QueueObserver(FakeBroker(), FakeStore(), host="here")()  # type: ignore[arg-type]
    assert load == QueueLoad(6, 4, frozenset({11, 12}))


def test_floors_parse_and_hold_capacity(tmp_path: Path) -> None:
    assert parse_floor("08-17:4") == HourFloor(8, 17, 4)
    with pytest.raises(ValueError, match="START-END:WORKERS"):
        parse_floor("8to17")
    nine_utc = datetime(2026, 1, 5, 9, tzinfo=UTC).timestamp()
    f = Fleet(tmp_path, PolicyConfig(max_workers=3, floors=(HourFloor(8, 17, 2),)))
    f.now = nine_utc
    t = f.tick(0)
    assert (t.desired, len(t.started)) == (2, 2) and t.reason.startswith("floor")


def test_local_time_agrees_with_the_c_library() -> None:
    import time

    for ts in (0.0, 1_780_000_000.0, 1_800_000_000.5):
        assert datetime.fromtimestamp(ts, LocalTime()).hour == time.localtime(ts).tm_hour


def test_plot_command_writes_a_png(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    for waiting in (0, 5, 5, 0, 0):
        f.waiting = waiting
        f.tick(11.0)
    out = tmp_path / "plot.png"
    result = CliRunner().invoke(_main, ["autoscale", "plot", str(f.path), str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_decisions(f.path, tmp_path / "again.png")
    assert (tmp_path / "again.png").stat().st_size > 1000


def test_bad_floor_is_a_usage_error() -> None:
    result = CliRunner().invoke(_main, ["autoscale", "--floor", "nope"])
    assert result.exit_code == 2 and "START-END:WORKERS" in result.output
