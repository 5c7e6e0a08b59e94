"""The client commands' habits, and the async Python client, against a real `framequeue up` (API and two
workers): several files to `submit`, `wait ID...`, `-q` (ids alone) and `-o json` (one JSON document) on each
command that prints records, with the named exit codes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared

pytestmark = pytest.mark.slow

EXIT_JOB_FAILED = 3
EXIT_TIMEOUT = 5


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("cli"), lease_s=10, heartbeat_s=2, reap_interval_s=1, drain_s=2)
    d.start("up", "up", "--workers", "2")
    d.wait_ready()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("inputs")
    paths = [folder / f"in-{i}.bin" for i in range(3)]
    for i, p in enumerate(paths):
        p.write_bytes(b"x" * (i + 1))
    return paths


def fq(dep: Deployment, *args: str, code: int = 0) -> str:
    """stdout of `framequeue ARGS --server ...`, which must exit with `code`."""
    done = dep.cli(*args, "--server", dep.base_url, check=False)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return done.stdout


def as_json(out: str) -> Any:
    return json.loads(out)


def test_submit_several_files_then_wait_for_all(dep: Deployment, inputs: list[Path]) -> None:
    ids = fq(dep, "submit", *map(str, inputs), "--pipeline", "noop", "--param", "sleep_s=0.2", "-q").split()
    assert len(ids) == 3 and len(set(ids)) == 3
    assert [dep.client.job(i)["input"]["key"].endswith(p.name) for i, p in zip(ids, inputs, strict=True)] \
        == [True] * 3

    records = as_json(fq(dep, "wait", *ids, "-o", "json", "--timeout-s", "120"))
    assert [r["id"] for r in records] == ids
    assert {r["status"] for r in records} == {"succeeded"}

    table = fq(dep, "wait", *ids)
    assert all(f"job {i} succeeded" in table for i in ids)
    assert fq(dep, "wait", *ids, "-q").split() == ids


def test_wait_exits_3_when_a_job_did_not_succeed_and_5_on_its_timeout(dep: Deployment, inputs: list[Path]) -> None:
    quick = fq(dep, "submit", str(inputs[0]), "--pipeline", "noop", "-q").strip()
    slow = fq(dep, "submit", str(inputs[1]), "--pipeline", "noop", "--param", "sleep_s=60", "-q").strip()

    timed_out = as_json(fq(dep, "wait", quick, slow, "--timeout-s", "1", "-o", "json", code=EXIT_TIMEOUT))
    assert [r["id"] for r in timed_out] == [quick, slow]
    assert timed_out[1]["status"] in {"queued", "running"}

    cancelled = as_json(fq(dep, "cancel", slow, "-o", "json"))
    assert cancelled["id"] == slow
    records = as_json(fq(dep, "wait", quick, slow, "-o", "json", "--timeout-s", "60", code=EXIT_JOB_FAILED))
    assert [r["status"] for r in records] == ["succeeded", "cancelled"]
    assert f"job {slow} cancelled" in fq(dep, "wait", slow, code=EXIT_JOB_FAILED)


def test_submit_with_wait_and_json_prints_the_final_records(dep: Deployment, inputs: list[Path],
                                                           tmp_path: Path) -> None:
    records = as_json(fq(dep, "submit", str(inputs[0]), str(inputs[2]), "--pipeline", "noop", "--wait",
                         "--idempotency-key", "twice", "-o", "json", "--download", str(tmp_path)))
    assert [r["status"] for r in records] == ["succeeded", "succeeded"]
    for r in records:
        assert (tmp_path / r["id"]).is_dir() and any((tmp_path / r["id"]).iterdir())
    # each file's job has its own key (twice-1, twice-2): the same request again answers the same job
    for n, r in enumerate(records, 1):
        body = {"pipeline": "noop", "params": {}, "input": {"key": r["input"]["key"]}}
        assert dep.client.submit(body, idempotency_key=f"twice-{n}")["id"] == r["id"]
    one = as_json(fq(dep, "submit", str(inputs[1]), "--pipeline", "noop", "-o", "json"))
    assert isinstance(one, list) and len(one) == 1


def test_submit_a_manifest(dep: Deployment, inputs: list[Path], tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.jsonl"
    lines = [{"file": str(inputs[0]), "params": {"sleep_s": 0.1}},
             {"file": str(inputs[1]), "attributes": {"camera": "front"}}]
    manifest.write_text("# two jobs\n" + "\n".join(map(json.dumps, lines)) + "\n\n")
    records = as_json(fq(dep, "submit", "--manifest", str(manifest), "--pipeline", "noop", "--wait", "-o", "json"))
    assert [r["status"] for r in records] == ["succeeded", "succeeded"]
    assert records[0]["params"]["sleep_s"] == 0.1
    assert records[1]["attributes"] == {"camera": "front"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "x"}\n')
    done = dep.cli("submit", "--manifest", str(bad), "--server", dep.base_url, check=False)
    assert done.returncode == 1 and "invalid_params" in done.stderr


def test_watch_jobs_and_job_print_json_and_ids(dep: Deployment, inputs: list[Path]) -> None:
    job_id = fq(dep, "submit", str(inputs[0]), "--pipeline", "noop", "-q").strip()
    final = as_json(fq(dep, "watch", job_id, "-o", "json"))
    assert final["id"] == job_id and final["status"] == "succeeded"
    assert fq(dep, "watch", job_id, "-q").strip() == job_id

    listed = as_json(fq(dep, "jobs", "--limit", "100", "-o", "json"))
    assert isinstance(listed, list) and job_id in [r["id"] for r in listed]
    assert job_id in fq(dep, "jobs", "--limit", "100", "-q").split()
    assert as_json(fq(dep, "jobs", "--status", "expired", "-o", "json")) == []

    assert as_json(fq(dep, "job", job_id))["id"] == job_id  # JSON stays the default of `job`
    assert as_json(fq(dep, "job", job_id, "-o", "json"))["status"] == "succeeded"
    assert fq(dep, "job", job_id, "-q").strip() == job_id
    assert "succeeded" in fq(dep, "job", job_id, "-o", "table")


def test_the_other_record_commands_print_json(dep: Deployment, inputs: list[Path]) -> None:
    job_id = fq(dep, "submit", str(inputs[0]), "--pipeline", "noop", "-q").strip()
    assert as_json(fq(dep, "deliveries", "list", job_id, "-o", "json")) == []
    assert as_json(fq(dep, "webhooks", "disabled", "-o", "json")) == []
    assert as_json(fq(dep, "endpoints", "list", "-o", "json")) == []
    assert as_json(fq(dep, "model-endpoints", "list", "-o", "json")) == []
    view = as_json(fq(dep, "queue", "-o", "json"))
    assert set(view["queue"]) >= {"ready_jobs", "in_flight_jobs"}
    assert "ready_jobs" in fq(dep, "queue")
    assert fq(dep, "wait", job_id, "-q").strip() == job_id


@pytest.fixture
def home(tmp_path: Path) -> Deployment:
    """A home of its own, for the commands that work on it directly (no API)."""
    return Deployment(tmp_path)


def run(d: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return d.cli(*args)


def test_keys_and_models_print_json(home: Deployment) -> None:
    try:
        created = as_json(run(home, "keys", "create", "--tenant", "t1", "--scope", "read", "-o", "json").stdout)
        assert created["key"].startswith("fq_") and created["tenant"] == "t1"
        listed = as_json(run(home, "keys", "list", "-o", "json").stdout)
        assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
        assert run(home, "keys", "list", "-q").stdout.split() == [created["id"]]
        assert as_json(run(home, "models", "list", "-o", "json").stdout) == []
        yolox = require_shared("models", "yolox_nano")
        added = as_json(run(home, "models", "add", "yolox_nano", str(yolox / "yolox_nano.onnx"), "--format", "yolox",
                            "--classes", str(yolox / "coco_classes.txt"), "-o", "json").stdout)
        assert (added["name"], added["version"], added["classes"]) == ("yolox_nano", 1, 80)
        assert as_json(run(home, "models", "list", "-o", "json").stdout) == [added]
    finally:
        home.stop()


def test_the_async_client_runs_a_job_end_to_end(dep: Deployment, inputs: list[Path], tmp_path: Path) -> None:
    import asyncio

    from framequeue.client import AsyncClient, JobRecord
    from framequeue.errors import JobNotFound

    async def go() -> tuple[JobRecord, list[str], Path, list[str]]:
        async with AsyncClient(dep.base_url) as c:
            await c.wait_ready(10)
            key = (await c.upload(inputs[2]))["key"]
            submitted = await c.submit({"pipeline": "noop", "input": {"key": key}, "params": {"sleep_s": 0.3}},
                                       idempotency_key="async-1")
            statuses: list[str] = []
            final = await c.wait(submitted["id"], lambda r: statuses.append(r["status"]))
            path = await c.download(final["id"], next(iter(final["outputs"])), tmp_path)
            page = await c.jobs(limit=200)
            with pytest.raises(JobNotFound):
                await c.job("0" * 32)
            return final, statuses, path, [r["id"] for r in page["jobs"]]

    final, statuses, path, listed = asyncio.run(go())
    assert final["status"] == "succeeded" and statuses[-1] == "succeeded"
    assert path.is_file() and path.stat().st_size > 0
    assert final["id"] in listed
    assert dep.client.job(final["id"])["input"]["key"].endswith(inputs[2].name)


def test_a_failed_submit_still_prints_the_jobs_queued_before_it(dep: Deployment, inputs: list[Path],
                                                                 tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    done = dep.cli("submit", str(inputs[0]), str(empty), "--pipeline", "noop", "-o", "json", "--server",
                   dep.base_url, check=False)
    assert done.returncode == 1 and "invalid_request" in done.stderr
    queued = as_json(done.stdout)
    assert len(queued) == 1 and queued[0]["input"]["key"].endswith(inputs[0].name)
    table = dep.cli("submit", str(inputs[0]), str(empty), "--pipeline", "noop", "--server", dep.base_url,
                    check=False)
    assert table.returncode == 1 and table.stdout.startswith("job ")
