"""The Celery 5 side: one no-op task, at-least-once settings. The worker runs
`celery -A bench.dispatch.celery_app worker ...` with FQB_BROKER_URL / FQB_QUEUE / FQB_RECORD (and, for a
result-storing run, FQB_RESULTS) set; the harness builds its own app with make_app() for the same broker,
queue and result backend.

Settings (the issue's "acks-late/at-least-once"): task_acks_late (ack after the task ran),
task_reject_on_worker_lost (a task whose pool process died is requeued, not acked),
worker_prefetch_multiplier=1 (a worker reserves one message per pool process). On RabbitMQ publisher
confirms are on (`confirm_publish`), so a send returns once the broker has the message, as framequeue's
submit does; Redis answers every write anyway. Remote control, events, gossip, mingle and the broker
heartbeat are off: they are chatter, not delivery guarantees.

Bare (no FQB_RESULTS), nothing is stored: the task writes its start time to a local file instead
(bench.dispatch.record), as in every configuration. With a result backend (a Redis URL, or a
`db+postgresql+psycopg://` URL for Celery's SQLAlchemy backend) the task's state is stored as framequeue
stores a job's: `task_track_started` writes STARTED when a pool process takes it (framequeue's running
row), then SUCCESS with its return value (the finished row)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from bench.dispatch import record

TASK = "fqbench.noop"


def make_app(broker_url: str, queue: str, results_url: str = "") -> Celery:
    app = Celery("fqbench", broker=broker_url, backend=results_url or None, set_as_current=False)
    transport: dict[str, Any] = {}
    if broker_url.startswith("redis"):
        # every key of this run carries the queue name, so cleanup finds them all
        transport["global_keyprefix"] = f"{queue}:"
    else:
        transport["confirm_publish"] = True
    results: dict[str, Any] = {"task_ignore_result": True}
    if results_url:
        results = {
            "task_ignore_result": False,
            "task_track_started": True,
            # a day, Celery's default; cleanup removes them with the run anyway
            "result_expires": 86400,
        }
        if results_url.startswith("redis"):
            # celery-task-meta-* keys carry the queue name too, for cleanup
            results["result_backend_transport_options"] = {"global_keyprefix": f"{queue}:"}
        elif results_url.startswith("db+"):
            # the task and group tables in the run's own schema (created by the harness), dropped with it
            results["database_table_schemas"] = {"task": queue, "group": queue}
            results["database_create_tables_at_setup"] = True
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        worker_hijack_root_logger=False,
        **results,
    )
    app.task(name=TASK)(record.noop)
    return app


app = make_app(os.environ.get("FQB_BROKER_URL", "redis://127.0.0.1:6379/0"), os.environ.get("FQB_QUEUE", "fqbench"),
               os.environ.get("FQB_RESULTS", ""))
