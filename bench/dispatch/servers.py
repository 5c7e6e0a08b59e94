"""The shared servers on 127.0.0.1: URLs for one run's private queue/schema names, whether framequeue can
open a backend yet, and removal of everything a run created there (found by the run's token)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable
from typing import Final

from bench.dispatch.common import PYTHON, ROOT, log

PG: Final = "postgresql://postgres@127.0.0.1:5432/test"
REDIS: Final = "redis://127.0.0.1:6379/0"
AMQP: Final = "amqp://guest:guest@127.0.0.1:5672/"
NATS: Final = "nats://127.0.0.1:4222"

#: framequeue's store/broker pairs, in the order they run: (label, store, broker)
FQ_PAIRS: Final = [
    ("sqlite", "sqlite", "sqlite"),
    ("postgres", "postgres", "postgres"),
    ("postgres+redis", "postgres", "redis"),
    ("postgres+rabbitmq", "postgres", "rabbitmq"),
    ("postgres+nats", "postgres", "nats"),
]


def fq_store_url(store: str, token: str, home_db: str) -> str:
    return f"sqlite:///{home_db}" if store == "sqlite" else f"{PG}?schema={token}"


def fq_broker_url(broker: str, token: str, home_db: str) -> str:
    return {
        "sqlite": f"sqlite:///{home_db}",
        # the queue tables go to the run's schema too, so that dropping it removes them
        "postgres": f"{PG}?queue={token}&schema={token}",
        "redis": f"{REDIS}?queue={token}",
        "rabbitmq": f"{AMQP}?queue={token}",
        "nats": f"{NATS}?queue={token}",
    }[broker]


_PROBE = """
import sys
from framequeue.brokers import open_broker
from framequeue.jobstore import open_jobstore
kind, url = sys.argv[1], sys.argv[2]
if kind == "store":
    s = open_jobstore(url, lambda job: b""); s.ping(); s.close()
else:
    b = open_broker(url); b.stats(); b.close()
"""


def fq_available(kind: str, url: str, timeout_s: float = 30.0) -> str | None:
    """None when framequeue opens this store/broker URL (in a fresh process, so a backend that is being
    written right now is read as it is now); else why not, in one line."""
    try:
        proc = subprocess.run([PYTHON, "-c", _PROBE, kind, url], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"opening it took over {timeout_s:.0f} s"
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else f"exit status {proc.returncode}"


# -- cleanup ------------------------------------------------------------------------------------------


def drop_pg_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def delete_redis_keys(token: str) -> int:
    """Every key whose name contains the token (framequeue's fq:{Q}:*, Celery's and Dramatiq's prefixes)."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=f"*{token}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def delete_rabbit_objects(token: str) -> int:
    """Queues and exchanges whose names contain the token (listed with rabbitmqctl, deleted over AMQP)."""
    import amqp

    def names(what: str) -> list[str]:
        try:
            out = subprocess.run(["rabbitmqctl", "-q", f"list_{what}", "name"], capture_output=True, text=True,
                                 timeout=60, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [ln.strip() for ln in out.splitlines() if token in ln]

    queues, exchanges = names("queues"), names("exchanges")
    if not queues and not exchanges:
        return 0
    conn = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest", connect_timeout=10)
    conn.connect()
    try:
        ch = conn.channel()
        for q in queues:
            ch.queue_delete(q)
        for x in exchanges:
            ch.exchange_delete(x)
    finally:
        conn.close()
    return len(queues) + len(exchanges)


def delete_nats_streams(token: str) -> int:
    import nats

    async def go() -> int:
        nc = await nats.connect(NATS, connect_timeout=5, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            gone = 0
            for info in await js.streams_info():
                name = info.config.name or ""
                if token.lower() in name.lower():
                    await js.delete_stream(name)
                    gone += 1
            return gone
        finally:
            await nc.close()

    return asyncio.run(go())


def cleanup_token(token: str, servers: set[str]) -> None:
    """Remove what a run named `token` left on the servers it used; never raises."""
    steps: dict[str, Callable[[], object]] = {
        "postgres": lambda: drop_pg_schema(token),
        "redis": lambda: delete_redis_keys(token),
        "rabbitmq": lambda: delete_rabbit_objects(token),
        "nats": lambda: delete_nats_streams(token),
    }
    for server in sorted(servers):
        step = steps.get(server)
        if step is None:
            continue
        try:
            step()
        except Exception as exc:
            log(f"cleanup of {server} for {token} failed: {type(exc).__name__}: {exc}")


def server_versions() -> dict[str, str]:
    """Best effort; a server that does not answer is left out."""
    out: dict[str, str] = {}
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(PG, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            out["postgresql"] = str(row[0]) if row else ""
    with contextlib.suppress(Exception):
        import redis

        info = redis.Redis.from_url(REDIS, socket_timeout=3).info("server")
        out["redis"] = str(info.get("redis_version", ""))
    with contextlib.suppress(Exception):
        import amqp

        conn = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest", connect_timeout=3)
        conn.connect()
        version = conn.server_properties.get("version", b"")
        out["rabbitmq"] = version.decode() if isinstance(version, bytes) else str(version)
        conn.close()
    with contextlib.suppress(Exception):
        import nats

        async def nats_version() -> str:
            nc = await nats.connect(NATS, connect_timeout=3, max_reconnect_attempts=0)
            try:
                return str(nc.connected_server_version)
            finally:
                await nc.close()

        out["nats"] = asyncio.run(nats_version())
    return out
