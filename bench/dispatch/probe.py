"""Where framequeue's time per job goes: `python -m bench.dispatch.probe api|worker` is `framequeue api|worker`
with its parts timed (the breakdown pass only; the measured runs use the plain commands).

Timed in every process: each public call on the job store, the broker and the object store. In the API,
each HTTP request (a pure ASGI wrapper) and JobService.submit. In the worker, the Worker's steps and the
warm media child's (rare) start and stop. The fork server preloads this module too, so a media child
appends `PID ENTERED LEFT` (epoch seconds around sandbox.run_one) per job to children.txt. SIGUSR1 resets the timers
(the harness sends it after the warm-up). Each API/worker process writes `{role}-{pid}.json` to FQB_PROBE_DIR at exit.
A timer costs about a microsecond; a job costs milliseconds."""

from __future__ import annotations

import atexit
import functools
import json
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

_DIR = os.environ.get("FQB_PROBE_DIR", "")
_ops: dict[str, list[float]] = defaultdict(list)
_lock = threading.RLock()  # RLock: the SIGUSR1 handler may interrupt a holder

STORE_CALLS = ("create", "get", "list_jobs", "claim", "claim_fair", "renew", "report_progress", "finish", "release",
               "cancel", "reap", "mark_published", "unpublished", "fail_dead_lettered", "due_events", "ping")
BROKER_CALLS = ("publish", "ack", "nack", "extend", "stats", "take_dead")
OBJECT_CALLS = ("size", "list", "delete", "put", "get")
#: timed as worker.STEP: Worker.handle, then one attempt's steps (Attempts.run as "_run")
WORKER_STEPS = ("handle", "_run", "_fetch", "_supervise", "_conclude", "_commit", "_drop_stale_outputs", "_fail")


def _add(name: str, seconds: float) -> None:
    with _lock:
        _ops[name].append(seconds)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - t)

    return wrapper


def _wrap_instance(obj: Any, label: str, names: tuple[str, ...]) -> None:
    for name in names:
        fn = getattr(obj, name, None)
        if callable(fn):
            setattr(obj, name, timed(f"{label}.{name}", fn))


def _wrap_receive(broker: Any) -> None:
    receive = broker.receive

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        message = receive(*args, **kwargs)
        _add("broker.receive" if message is not None else "broker.receive (none came)", time.perf_counter() - t)
        return message

    broker.receive = wrapper


def _install_runtime() -> None:
    import framequeue.api.app as app_mod
    import framequeue.runtime as rt_mod

    original = rt_mod.open_runtime

    def open_runtime(settings: Any) -> Any:
        rt = original(settings)
        _wrap_instance(rt.store, "store", STORE_CALLS)
        _wrap_instance(rt.broker, "broker", BROKER_CALLS)
        _wrap_receive(rt.broker)
        _wrap_instance(rt.objects, "objects", OBJECT_CALLS)
        setattr(rt.service, "submit", timed("service.submit", rt.service.submit))  # noqa: B010
        return rt

    rt_mod.open_runtime = open_runtime  # the worker command imports it from here when it runs
    setattr(app_mod, "open_runtime", open_runtime)  # noqa: B010 - the app factory bound it at import


class _HttpTiming:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            path = scope["path"]
            route = path if path in ("/v1/jobs", "/v1/uploads", "/readyz", "/healthz") else "/v1/jobs/{id}"
            _add(f"http {scope['method']} {route}", time.perf_counter() - t)


def _install_api() -> None:
    import framequeue.api.app as app_mod

    original = app_mod.create_app

    def create_app(settings: Any, **kwargs: Any) -> Any:
        app = original(settings, **kwargs)
        app.add_middleware(_HttpTiming)
        return app

    app_mod.create_app = create_app


def _install_worker() -> None:
    import framequeue.worker.attempt as attempt_mod
    import framequeue.worker.child as child_mod
    import framequeue.worker.loop as loop_mod
    import framequeue.worker.warm_child as children_mod

    loop_mod.Worker.handle = timed("worker.handle", loop_mod.Worker.handle)  # type: ignore[method-assign]
    for step in WORKER_STEPS[1:]:
        name = "run" if step == "_run" else step
        setattr(attempt_mod.Attempts, name, timed(f"worker.{step}", getattr(attempt_mod.Attempts, name)))
    # a warm child serves many jobs: its start and stop are rare, and timed as such
    child_mod.MediaChild.__init__ = timed("child.start", child_mod.MediaChild.__init__)  # type: ignore[method-assign]
    child_mod.MediaChild.stop = timed("child.stop", child_mod.MediaChild.stop)  # type: ignore[method-assign]
    # the fork server imports this module too, so its children time each job they run
    setattr(children_mod, "PRELOAD", [*getattr(children_mod, "PRELOAD"), "bench.dispatch.probe"])  # noqa: B009, B010


def _install_child() -> None:
    """In a media child (its fork server imported this module): append `PID ENTERED LEFT` (epoch seconds)
    to children.txt for each job that sandbox.run_one ran."""
    from framequeue.worker import sandbox

    original = sandbox.run_one
    if getattr(original, "_fqb_probe", False):
        return
    path = Path(_DIR) / "children.txt"

    def run_one(*args: Any, **kwargs: Any) -> Any:
        entered = time.time()
        try:
            return original(*args, **kwargs)
        finally:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{os.getpid()} {entered:.6f} {time.time():.6f}\n".encode())
            os.close(fd)

    run_one._fqb_probe = True  # type: ignore[attr-defined]
    setattr(sandbox, "run_one", run_one)  # noqa: B010


def _reset(*_: Any) -> None:
    """SIGUSR1: forget what was timed so far (the harness sends it after the warm-up)."""
    with _lock:
        _ops.clear()


def _dump(role: str) -> None:
    with _lock:
        body = {"role": role, "pid": os.getpid(), "ops": dict(_ops)}
    (Path(_DIR) / f"{role}-{os.getpid()}.json").write_text(json.dumps(body))


def main() -> None:
    if not _DIR:
        raise SystemExit("FQB_PROBE_DIR must name a folder")
    role = next((a for a in sys.argv[1:] if a in ("api", "worker")), "")
    if role not in ("api", "worker"):
        raise SystemExit("usage: python -m bench.dispatch.probe [framequeue options] api|worker")
    _install_runtime()
    if role == "api":
        _install_api()
    else:
        _install_worker()
    atexit.register(_dump, role)
    # uvicorn re-raises the SIGTERM it caught once it has shut down, which would skip atexit: end with
    # SystemExit instead (the worker command installs its own handler, which drains and returns)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGUSR1, _reset)
    from framequeue.cli import main as cli

    cli(prog_name="framequeue")


if __name__ == "__main__":
    main()
elif _DIR:  # imported by a fork server (preload): its children time each job
    _install_child()
