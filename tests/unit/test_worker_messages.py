"""The worker <-> media child messages: typed, picklable across the pipe, their codes from the error tree."""

from __future__ import annotations

import pickle
import signal
from pathlib import Path

import pytest

from framequeue.errors import NoEndpoint, ResourceExhausted
from framequeue.media.limits import MediaLimits
from framequeue.pipelines.base import RunResult
from framequeue.worker.messages import ChildSpec, Done, Failed, Progress, Run
from framequeue.worker.warm_child import died


@pytest.mark.parametrize("msg", [
    Run.of(ChildSpec("noop", {}, Path("in"), Path("out"), Path("models"), 1, MediaLimits())),
    Progress.of(3, None),
    Done.of(RunResult(outputs={"result": "result.json"}, frames_total=2, frames_inferred=2)),
    Failed.of(ResourceExhausted("too much")),
])
def test_a_message_crosses_the_pipe_as_itself(msg: object) -> None:
    again = pickle.loads(pickle.dumps(msg))
    assert again == msg and type(again) is type(msg)


def test_a_failure_takes_code_and_retryable_from_the_error() -> None:
    assert Failed.of(ResourceExhausted("cap")) == ("error", "resource_exhausted", "cap", False)
    assert Failed.of(NoEndpoint("none up")).retryable is True
    assert Failed.of(NoEndpoint("none up"), retryable=False).retryable is False


@pytest.mark.parametrize(("attempts", "exitcode", "code", "retryable"), [
    (1, -signal.SIGXCPU, "resource_exhausted", False),
    (1, -signal.SIGSEGV, "worker_crashed", True),
    (2, -signal.SIGSEGV, "worker_crashed", False),
    (5, -signal.SIGKILL, "worker_crashed", True),
    (1, 1, "worker_crashed", True),
])
def test_a_dead_child_fails_its_job(attempts: int, exitcode: int, code: str, retryable: bool) -> None:
    failed = died(attempts, exitcode)
    assert (failed.code, failed.retryable) == (code, retryable)
