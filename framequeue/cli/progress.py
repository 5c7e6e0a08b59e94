"""A terminal progress bar that follows a job's event stream."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from framequeue.client import Client


def follow(client: Client, job_id: str) -> dict[str, Any]:
    """Show a progress bar (frames done / total, fps, ETA) until the job ends; return its terminal record.
    Follows GET /v1/jobs/{id}/events (reconnecting with Last-Event-ID when the connection drops)."""
    bar = tqdm(total=None, unit="frame", desc=f"{job_id[:8]} queued", dynamic_ncols=True)

    def update(record: dict[str, Any]) -> None:
        progress = record["progress"]
        if progress["frames_total"] and bar.total != progress["frames_total"]:
            bar.total = progress["frames_total"]
            bar.refresh()
        bar.set_description(f"{job_id[:8]} {record['status']}", refresh=False)
        bar.update(max(0, progress["frames_done"] - bar.n))

    try:
        return client.wait(job_id, update)
    finally:
        bar.close()
