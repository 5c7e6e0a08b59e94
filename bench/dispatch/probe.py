"""Where framequeue's time per job goes: `python -m bench.dispatch.probe api|worker` is `framequeue api|worker`
with its parts timed (the breakdown pass only; the measured runs use the plain commands).

Timed in every process: each public call on the job store, the broker and the object store. In the API,
each HTTP request (a pure ASGI wrapper) and JobService.submit. In the worker, the Worker's steps, the
heartbeat thread's start and stop, the media child's start (ForkServerProcess.start) and stop. The fork
server preloads this module too, so each media child appends `PID ENTERED LOADED LEFT` (epoch seconds:
child_main entered, get_pipeline returned, child_main left) to children.txt. SIGUSR1 resets the timers
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
#: [pid, start() entered, start() returned, _supervise returned] per media child
_spawns: list[list[float]] = []
_current_spawn: list[float] = []
#: in a media child: when get_pipeline returned
_loaded_at: list[float] = []
#: in a worker: True while Worker._commit runs (its progress write is told from the one made while running)
_in_commit: list[bool] = [False]

STORE_CALLS = ("create", "get", "list_jobs", "claim", "renew", "report_progress", "finish", "release", "cancel",
               "reap", "mark_published", "unpublished", "fail_dead_lettered", "due_events", "ping")
BROKER_CALLS = ("publish", "ack", "nack", "extend", "stats", "take_dead")
OBJECT_CALLS = ("size", "list", "delete", "put", "get")
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
        running = rt.store.report_progress
        committing = getattr(running, "__wrapped__")  # noqa: B009 - the untimed method

        def report_progress(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return committing(*args, **kwargs) if _in_commit[0] else running(*args, **kwargs)
            finally:
                if _in_commit[0]:
                    _add("store.report_progress (commit)", time.perf_counter() - t)

        setattr(rt.store, "report_progress", report_progress)  # noqa: B010
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
    from multiprocessing.context import ForkServerProcess

    import framequeue.worker.runner as runner

    for step in WORKER_STEPS:
        setattr(runner.Worker, step, timed(f"worker.{step}", getattr(runner.Worker, step)))
    commit = runner.Worker._commit

    def flagged_commit(self: Any, *args: Any, **kwargs: Any) -> Any:
        _in_commit[0] = True
        try:
            return commit(self, *args, **kwargs)
        finally:
            _in_commit[0] = False

    runner.Worker._commit = flagged_commit  # type: ignore[method-assign]
    runner.Heartbeat.__enter__ = timed("heartbeat.start", runner.Heartbeat.__enter__)  # type: ignore[method-assign]
    runner.Heartbeat.__exit__ = timed("heartbeat.stop", runner.Heartbeat.__exit__)  # type: ignore[method-assign]
    runner._stop_child = timed("child.stop", runner._stop_child)

    start = ForkServerProcess.start

    def start_child(self: Any) -> None:
        t = time.time()
        start(self)
        _current_spawn[:] = [float(self.pid), t, time.time()]
        _add("child.start", _current_spawn[2] - t)

    ForkServerProcess.start = start_child  # type: ignore[method-assign]
    supervise = runner.Worker._supervise

    def supervise_child(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return supervise(self, *args, **kwargs)
        finally:
            if _current_spawn:
                _spawns.append([*_current_spawn, time.time()])
                _current_spawn.clear()

    runner.Worker._supervise = supervise_child  # type: ignore[method-assign]
    # the fork server imports this module too, so its children time child_main
    setattr(runner, "PRELOAD", [*getattr(runner, "PRELOAD"), "bench.dispatch.probe"])  # noqa: B009, B010
    _install_child(runner)


def _install_child(runner: Any = None) -> None:
    """Wrap sandbox.child_main under its own name, so the worker pickles the wrapper by reference and the
    child (whose fork server imported this module) finds the wrapper under that name."""
    from framequeue.worker import sandbox

    original = sandbox.child_main
    if getattr(original, "_fqb_probe", False):
        return
    path = Path(_DIR) / "children.txt"

    def child_main(spec: Any, conn: Any) -> None:
        entered = time.time()
        _loaded_at[:] = [entered]
        try:
            original(spec, conn)
        finally:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{os.getpid()} {entered:.6f} {_loaded_at[0]:.6f} {time.time():.6f}\n".encode())
            os.close(fd)

    child_main.__module__ = sandbox.__name__
    child_main.__qualname__ = child_main.__name__ = "child_main"
    child_main._fqb_probe = True  # type: ignore[attr-defined]
    sandbox.child_main = child_main
    get_pipeline = getattr(sandbox, "get_pipeline")  # noqa: B009

    def timed_get_pipeline(name: str) -> Any:
        try:
            return get_pipeline(name)
        finally:
            _loaded_at[:] = [time.time()]

    setattr(sandbox, "get_pipeline", timed_get_pipeline)  # noqa: B010
    if runner is not None:
        runner.child_main = child_main


def _reset(*_: Any) -> None:
    """SIGUSR1: forget what was timed so far (the harness sends it after the warm-up)."""
    with _lock:
        _ops.clear()
        _spawns.clear()


def _dump(role: str) -> None:
    with _lock:
        body = {"role": role, "pid": os.getpid(), "ops": dict(_ops), "spawns": list(_spawns)}
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
elif _DIR:  # imported by a fork server (preload): its children time child_main
    _install_child()
