"""Mixed lanes under kill -9: jobs of all three priorities, lane-dedicated workers (`--lanes high`,
`--lanes normal,low`) beside one of every lane, workers killed -9 mid-job and replaced. Every job ends exactly
once, succeeded; a job killed mid-run is run again (attempts 2) by a worker of its lane; no lane-dedicated
worker ever ran a job of another lane."""

from __future__ import annotations

import random
import re
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment

pytestmark = pytest.mark.slow

#: jobs per lane, and how long each runs (noop sleep_s): long enough to be killed mid-run
PER_LANE = 10
JOB_S = 2.0
#: a job is killed only this early in its run, so that it surely is still running when the signal lands
KILL_WITHIN_S = 1.0
#: workers killed -9 in all, each while it runs a job's first attempt (so no job comes near max_attempts)
KILLS = 5
#: the worker groups: name -> --lanes ("" is every lane)
GROUPS = {"urgent": "high", "bulk": "normal,low", "any": ""}


def test_kill_9_with_mixed_lanes_loses_nothing_and_runs_each_job_once(split: Deployment, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    lanes_of: dict[str, str] = {}  # worker process name -> its --lanes
    pid_of: dict[int, str] = {}

    def start(group: str, n: int) -> None:
        name = f"{group}-{n}"
        args = ["worker", "--lanes", GROUPS[group]] if GROUPS[group] else ["worker"]
        pid_of[split.start(name, *args).pid] = name
        lanes_of[name] = GROUPS[group] or "high,normal,low"

    for group in GROUPS:
        start(group, 0)
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    key = split.client.upload(payload)["key"]
    priorities = ["high", "normal", "low"] * PER_LANE
    rng.shuffle(priorities)
    lane_of_job = {}
    for priority in priorities:
        job = split.client.submit({"pipeline": "noop", "input": {"key": key}, "params": {"sleep_s": JOB_S},
                                   "priority": priority})
        lane_of_job[job["id"]] = priority

    killed: dict[str, str] = {}  # job id -> the worker killed while running it
    restarts = Counter[str]()
    deadline = time.monotonic() + 100
    while len(killed) < KILLS and time.monotonic() < deadline:
        now = time.time()
        running = [j for j in split.client.jobs(status="running", limit=100)["jobs"]
                   if j["attempts"] == 1 and j["id"] not in killed and j["attempt_history"]
                   and now - datetime.fromisoformat(j["attempt_history"][-1]["started_at"]).timestamp()
                   < KILL_WITHIN_S]
        victims = [(j, pid_of.get(int(j["attempt_history"][-1]["worker"].rpartition(":")[2]))) for j in running]
        victims = [(j, name) for j, name in victims if name is not None and split.procs[name].poll() is None]
        if not victims:
            time.sleep(0.1)
            continue
        job, name = rng.choice(victims)
        split.signal(name, signal.SIGKILL, group=True)  # the worker, its fork server and its media child
        split.procs[name].wait(10)
        killed[job["id"]] = name
        group = name.rsplit("-", 1)[0]
        restarts[group] += 1
        start(group, restarts[group])
    assert len(killed) == KILLS, f"only {len(killed)} workers could be killed mid-job (seed {seed})"

    records = {job_id: split.wait_done(job_id, timeout_s=120) for job_id in lane_of_job}
    assert {r["status"] for r in records.values()} == {"succeeded"}, f"seed {seed}"
    for job_id, record in records.items():
        assert record["priority"] == lane_of_job[job_id]
        outcomes = [a["outcome"] for a in record["attempt_history"]]
        # a killed attempt lost its lease and the next one succeeded; a job is never run after it succeeded
        assert outcomes[-1] == "succeeded" and set(outcomes[:-1]) <= {"lease_lost"}, (job_id, outcomes, seed)
        if job_id in killed:
            assert outcomes == ["lease_lost", "succeeded"], (job_id, outcomes, seed)
        for attempt in record["attempt_history"]:
            worker = pid_of[int(attempt["worker"].rpartition(":")[2])]
            assert lane_of_job[job_id] in lanes_of[worker].split(","), (job_id, worker, seed)
    # each job was committed by exactly one worker (a worker logs the commit after its ack: wait for the logs)
    log_deadline = time.monotonic() + 15
    while True:
        commits: Counter[str] = Counter()
        for name in lanes_of:
            commits.update(re.findall(r"job ([0-9a-f]{32}): succeeded", split.log(name)))
        if set(commits) >= set(lane_of_job) or time.monotonic() > log_deadline:
            break
        time.sleep(0.2)
    assert set(commits) == set(lane_of_job) and set(commits.values()) == {1}, f"seed {seed}"
