"""What the job commands show while they wait, on stderr: a job's progress bar, and a count of ended jobs (on a
terminal only)."""

from __future__ import annotations

from tqdm import tqdm

from framequeue.client import Client, JobRecord


def follow(client: Client, job_id: str) -> JobRecord:
    """Show a progress bar (frames done / total, fps, ETA) until the job ends; return its terminal record.
    Follows GET /v1/jobs/{id}/events (reconnecting with Last-Event-ID when the connection drops)."""
    bar = tqdm(total=None, unit="frame", desc=f"{job_id[:8]} queued", dynamic_ncols=True)

    def update(record: JobRecord) -> None:
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


def counter(total: int, desc: str) -> tqdm[None]:
    """A bar counting to total, shown only when stderr is a terminal (use it as a context manager)."""
    return tqdm(total=total, desc=desc, unit="job", dynamic_ncols=True, disable=None)
