"""Where each backend of the contract suites lives on this machine, with an isolated namespace per test.

A backend whose service does not answer is skipped locally and fails in CI (CI=true), where .ci/run
starts every service first.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import s3server

PG_DSN = os.environ.get("FQ_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("FQ_TEST_REDIS", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("FQ_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("FQ_TEST_NATS", "nats://127.0.0.1:4222")

SERVICES = {"postgres": ("127.0.0.1", 5432), "redis": ("127.0.0.1", 6379), "rabbitmq": ("127.0.0.1", 5672),
            "nats": ("127.0.0.1", 4222)}


def require_service(name: str) -> None:
    host, port = SERVICES[name]
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not answering on {host}:{port}; .ci/run should have started it")
        pytest.skip(f"{name} not running on {host}:{port}")


def _ns() -> str:
    return f"fq_{uuid.uuid4().hex[:12]}"


def _sep(url: str) -> str:
    return "&" if "?" in url else "?"


def _sqlite(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'fq.db'}"


def _postgres_store(tmp: Path) -> str:
    require_service("postgres")
    return f"{PG_DSN}{_sep(PG_DSN)}schema={_ns()}"


def _postgres_queue(tmp: Path) -> str:
    require_service("postgres")
    ns = _ns()
    return f"{PG_DSN}{_sep(PG_DSN)}queue={ns}&schema={ns}"


def _redis(tmp: Path) -> str:
    require_service("redis")
    return f"{REDIS_URL}{_sep(REDIS_URL)}queue={_ns()}"


def _rabbitmq(tmp: Path) -> str:
    require_service("rabbitmq")
    return f"{AMQP_URL}{_sep(AMQP_URL)}queue={_ns()}"


def _nats(tmp: Path) -> str:
    require_service("nats")
    return f"{NATS_URL}{_sep(NATS_URL)}queue={_ns()}"


def _memory(tmp: Path) -> str:
    return f"memory://{_ns()}"


#: backends whose modules have landed; the contract and fault suites run against each of them
IMPLEMENTED = {"sqlite", "local", "memory", "postgres", "rabbitmq", "redis", "nats", "s3"}

#: name -> URL for a fresh, isolated store or queue (the tmp folder is the test's own)
STORES: dict[str, Callable[[Path], str]] = {"sqlite": _sqlite, "postgres": _postgres_store, "memory": _memory}
BROKERS: dict[str, Callable[[Path], str]] = {
    "sqlite": _sqlite, "postgres": _postgres_queue, "redis": _redis, "rabbitmq": _rabbitmq, "nats": _nats,
    "memory": _memory,
}
STORAGES: dict[str, Callable[[Path], str]] = {
    "local": lambda tmp: (tmp / "objects").as_uri(), "memory": _memory, "s3": lambda tmp: s3server.store_url(),
}


def with_options(url: str, **options: object) -> str:
    return url + "".join(f"{_sep(url) if i == 0 else '&'}{k}={v}" for i, (k, v) in enumerate(options.items()))


#: a deployment per broker for the fault suites: (job store URL factory, queue URL factory); real brokers are
#: paired with PostgreSQL as job store, as they would be in production. memory:// is one process only.
DEPLOYMENTS: dict[str, tuple[Callable[[Path], str], Callable[[Path], str]]] = {
    "sqlite": (_sqlite, _sqlite),
    "postgres": (_postgres_store, _postgres_queue),
    "redis": (_postgres_store, _redis),
    "rabbitmq": (_postgres_store, _rabbitmq),
    "nats": (_postgres_store, _nats),
}


def cleanup(url: str) -> None:
    """Drop what a test's store or queue created on a shared service (best effort: never fails a test)."""
    import asyncio
    import contextlib
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    with contextlib.suppress(Exception):
        if parts.scheme.startswith("postgres") and query.get("schema", "").startswith("fq_"):
            import psycopg

            with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{query["schema"]}" CASCADE')
        elif parts.scheme == "redis" and "queue" in query:
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"fq:{{{query['queue']}}}:*"))
            if keys:
                client.delete(*keys)
            client.close()
        elif parts.scheme == "amqp" and "queue" in query:
            import aio_pika

            async def drop() -> None:
                conn = await aio_pika.connect(AMQP_URL, timeout=5)
                async with conn:
                    channel = await conn.channel()
                    q = query["queue"]
                    # every lane's work and delay queue (framequeue.brokers.rabbitmq), and the dead queue
                    for work in (q, f"{q}.high", f"{q}.low"):
                        await channel.queue_delete(work)
                        await channel.queue_delete(f"{work}.delay")
                    await channel.queue_delete(f"{q}.dead")

            asyncio.run(drop())
        elif parts.scheme == "s3" and parts.path.strip("/").startswith("fq_"):
            from framequeue.storage import open_storage

            objects = open_storage(url)
            for key in objects.list(""):
                objects.delete(key)
        elif parts.scheme == "nats" and "queue" in query:
            import nats

            async def drop_streams() -> None:
                nc = await nats.connect(NATS_URL, connect_timeout=5)
                js = nc.jetstream()
                for name in (f"FQ_{query['queue']}", f"FQDEAD_{query['queue']}"):
                    with contextlib.suppress(Exception):
                        await js.delete_stream(name)
                await nc.close()

            asyncio.run(drop_streams())
