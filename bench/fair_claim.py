"""What the fair share costs a claim: a loop of claims over a backlog, with `claim` (no fair share) and with
`claim_fair`, one tenant waiting (the fast path) and two (each claim charges a tag), on SQLite and PostgreSQL.

    .venv/bin/python -m bench.fair_claim [--jobs 2000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Prints each claim's median and p90 time in microseconds (the store's own cost: no broker, no worker).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from framequeue.jobs import Job, JobStatus
from framequeue.jobstore import JobStore, open_jobstore

T0 = 1_000_000.0


def job(job_id: str, tenant: str, at_s: float) -> Job:
    return Job(id=job_id, pipeline="noop", pipeline_version="1", input_key="in.mp4", params={},
               status=JobStatus.QUEUED, created_at_s=at_s, updated_at_s=at_s, expires_at_s=T0 + 86400,
               timeout_s=900, max_attempts=3, tenant=tenant)


def fill(store: JobStore, tenants: list[str], n: int) -> list[str]:
    """n jobs, tenants in turn, published; returns the ids in message (submit) order."""
    ids = [f"{tenants[i % len(tenants)]}-{i:06d}" for i in range(n)]
    for start in range(0, n, 500):
        chunk = ids[start:start + 500]
        store.create_many([(job(i, i.split("-")[0], T0 + k * 1e-3), None) for k, i in enumerate(chunk, start)])
        store.mark_published_many(chunk, T0)
    return ids


def run(name: str, open_store: Callable[[], JobStore], n: int) -> None:
    """claim and claim_fair over the same backlog on two stores, in alternating blocks of 50 claims so that
    a busy machine's noise falls on both alike; the median and p90 of each claim's time."""
    for tenants in (["a"], ["a", "b"]):
        plain, fair = open_store(), open_store()
        ids = fill(plain, tenants, n)
        fill(fair, tenants, n)
        took: dict[str, list[float]] = {"claim": [], "claim_fair": []}
        for start in range(0, n, 50):
            for label, store in (("claim", plain), ("claim_fair", fair)):
                for job_id in ids[start:start + 50]:
                    began = time.perf_counter()
                    if store is fair:
                        store.claim_fair(job_id, "w", 120, T0 + 1, {})
                    else:
                        store.claim(job_id, "w", 120, T0 + 1)
                    took[label].append((time.perf_counter() - began) * 1e6)
        for label, times in took.items():
            times.sort()
            print(f"{name:9} {len(tenants)} tenant(s) {label:11} median {times[len(times) // 2]:6.0f} us, "
                  f"p90 {times[len(times) * 9 // 10]:6.0f} us ({n} claims)")
        plain.close()
        fair.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    def render(j: Job) -> bytes:
        return b"{}"

    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", lambda: open_jobstore(f"sqlite:///{Path(tmp) / uuid.uuid4().hex}.db", render), args.jobs)
    if args.postgres:
        import psycopg

        schemas: list[str] = []

        def open_pg() -> JobStore:
            schemas.append(f"fqbench_{uuid.uuid4().hex[:8]}")
            return open_jobstore(f"{args.postgres}?schema={schemas[-1]}", render)

        try:
            run("postgres", open_pg, args.jobs)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
