"""`Client`: the blocking client of the framequeue HTTP API (the CLI's and the benchmarks')."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
from httpx_sse import connect_sse

from framequeue.client import calls
from framequeue.client.calls import Call
from framequeue.client.records import TERMINAL, BatchItem, JobPage, JobRecord, ModelEndpoint, Record, Upload
from framequeue.client.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy, parse_retry_after
from framequeue.errors import ServiceUnavailable

UPLOAD_CHUNK_BYTES = 1024 * 1024
#: an event stream silent this long is dropped and reconnected (the API sends a keep-alive every 10 s)
STREAM_READ_TIMEOUT_S = 35.0
#: failed (re)connections of an event stream in a row before the client gives up; the pause between them
STREAM_RETRIES = 10
STREAM_RETRY_S = 1.0


class Client:
    """The job API over HTTP, blocking. Use it as a context manager (or call `close`).

    Calls that are safe to repeat (reads, deletes, and a submit given an idempotency key) are tried again on a
    connection error or a 429/503, waiting what the answer's Retry-After asks (capped by the policy) or a
    jittered backoff; other calls are sent once. Failures raise the framequeue error of the answer's code
    (framequeue.errors): JobNotFound, RateLimited, Unauthorized, ...; ServiceUnavailable when the API cannot
    be reached. Records are plain dicts typed as framequeue.client.records."""

    def __init__(
        self, base_url: str, timeout_s: float = 30.0, api_key: str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
    ) -> None:
        """base_url: the API's root (http://host:8080); api_key: a key (fq_…) sent as a Bearer token;
        retry: None sends every call once."""
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self.retry = retry or NO_RETRY
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, call: Call) -> Any:
        """Send one described call (framequeue.client.calls), retried as its policy allows; its result."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._http.request(call.method, call.path, params=call.params, json=call.json,
                                          headers=call.headers)
            except httpx.TransportError as exc:
                delay_s = self.retry.delay_s(attempt, None, random.random()) if call.retryable(None) else None
                if delay_s is None:
                    raise ServiceUnavailable(f"cannot reach framequeue at {self.base_url}: {exc}") from exc
                time.sleep(delay_s)
                continue
            if resp.status_code < 400:
                return call.result(resp)
            retry_after_s = parse_retry_after(resp.headers.get("retry-after"), time.time())
            delay_s = (self.retry.delay_s(attempt, retry_after_s, random.random())
                       if call.retryable(resp.status_code) else None)
            if delay_s is None:
                raise calls.problem(resp, retry_after_s)
            time.sleep(delay_s)

    def ready(self) -> bool:
        """Whether the API answers its readiness check now."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the API is ready; ServiceUnavailable after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"framequeue at {self.base_url} was not ready within {timeout_s:.0f} s")
            time.sleep(0.2)

    def upload(self, path: Path) -> Upload:
        """Stream a local file to the object store (sent once: a retry would store a second copy); its key
        is the `input.key` of a job."""
        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while chunk := fh.read(UPLOAD_CHUNK_BYTES):
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
        try:
            resp = self._http.post("/v1/uploads", params=calls.upload_params(path.name), content=chunks(),
                                   headers=headers)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach framequeue at {self.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            raise calls.problem(resp, parse_retry_after(resp.headers.get("retry-after"), time.time()))
        return cast(Upload, resp.json())

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> JobRecord:
        """Queue a job ({"pipeline", "input": {"key"}, "params", ...}); its record. With an idempotency key a
        repeat answers the first job, so the call is retried like a read."""
        return cast(JobRecord, self.send(calls.submit(body, idempotency_key)))

    def submit_many(
        self, jobs: Sequence[dict[str, Any]], idempotency_keys: Sequence[str | None] | None = None
    ) -> list[BatchItem]:
        """Queue several jobs in POST /v1/jobs:batch calls (1,000 jobs each): one answer per job, in order,
        `job` (status 202, or 200 for an idempotent replay) or `error` ({code, message}, a 4xx status); an
        invalid job does not stop the others. idempotency_keys[i], when given, is jobs[i]'s key (None: none);
        a call whose jobs all have keys is retried like a read."""
        return calls.renumber([cast(list[BatchItem], self.send(c)) for c in calls.submit_many(jobs, idempotency_keys)])

    def job(self, job_id: str) -> JobRecord:
        """One job's record; JobNotFound when the caller cannot see it."""
        return cast(JobRecord, self.send(calls.job(job_id)))

    def jobs(self, status: str | None = None, limit: int = 50, after: str | None = None) -> JobPage:
        """One page of the caller's jobs, newest first; `after` is the previous page's next_after."""
        return cast(JobPage, self.send(calls.jobs(status, limit, after)))

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued job, or ask a running one to stop; its record."""
        return cast(JobRecord, self.send(calls.cancel(job_id)))

    def queue(self) -> Record:
        """The queue's numbers, the caller's running jobs and the last hour (GET /v1/queue)."""
        return cast(Record, self.send(calls.queue()))

    def create_endpoint(self, body: dict[str, Any]) -> Record:
        """Create an async endpoint (admin key)."""
        return cast(Record, self.send(calls.create_endpoint(body)))

    def endpoints(self) -> Record:
        """{"endpoints": [...]}: the async endpoints."""
        return cast(Record, self.send(calls.endpoints()))

    def delete_endpoint(self, name: str) -> None:
        self.send(calls.delete_endpoint(name))

    def register_model_endpoint(self, model: str, version: int, url: str, weight: float = 1.0) -> ModelEndpoint:
        """Register where a model version runs (an OIP v2 server, or `local`)."""
        return cast(ModelEndpoint, self.send(calls.register_model_endpoint(model, version, url, weight)))

    def model_endpoints(self, model: str | None = None) -> list[ModelEndpoint]:
        return cast(list[ModelEndpoint], self.send(calls.model_endpoints(model)))

    def update_model_endpoint(
        self, endpoint_id: str, *, weight: float | None = None, state: str | None = None
    ) -> ModelEndpoint:
        """Set an endpoint's weight or state (active, draining)."""
        return cast(ModelEndpoint, self.send(calls.update_model_endpoint(endpoint_id, weight, state)))

    def remove_model_endpoint(self, endpoint_id: str) -> None:
        self.send(calls.remove_model_endpoint(endpoint_id))

    def deliveries(self, job_id: str) -> list[Record]:
        """A job's webhook events: state, attempts, last error, next attempt."""
        return cast(list[Record], self.send(calls.deliveries(job_id)))

    def replay(self, event_id: str) -> Record:
        """Deliver a webhook event again now, with the same webhook-id."""
        return cast(Record, self.send(calls.replay(event_id)))

    def disabled_webhooks(self) -> list[Record]:
        """Webhook URLs a 410 Gone disabled (admin key)."""
        return cast(list[Record], self.send(calls.disabled_webhooks()))

    def enable_webhook(self, url: str) -> Record:
        return cast(Record, self.send(calls.enable_webhook(url)))

    def job_events(self, job_id: str, last_event_id: str | None = None) -> Iterator[tuple[str, str, JobRecord]]:
        """The job's event stream (GET /v1/jobs/{id}/events) as (event id, event, record), ending with the
        terminal record. A dropped connection, or a stream that closed before the end, is reconnected with
        Last-Event-ID (no record twice); ServiceUnavailable after STREAM_RETRIES failures in a row."""
        last_id = last_event_id
        failures = 0
        timeout = httpx.Timeout(self._timeout_s, read=STREAM_READ_TIMEOUT_S)
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with connect_sse(self._http, "GET", calls.events_path(job_id), headers=headers,
                                 timeout=timeout) as source:
                    if source.response.status_code == 204:  # the terminal record is the one last_id names
                        return
                    if source.response.status_code >= 400:
                        source.response.read()
                        raise calls.problem(source.response)
                    for sse in source.iter_sse():
                        if not sse.data:
                            continue
                        failures = 0
                        last_id = sse.id or last_id
                        yield sse.id, sse.event, json.loads(sse.data)
                        if sse.event == "end":
                            return
                why = "the stream closed before the job ended"
            except httpx.TransportError as exc:
                why = str(exc) or type(exc).__name__
            failures += 1
            if failures > STREAM_RETRIES:
                raise ServiceUnavailable(f"lost the event stream of job {job_id} at {self.base_url} "
                                         f"{STREAM_RETRIES} times in a row: {why}")
            time.sleep(STREAM_RETRY_S)

    def wait(
        self, job_id: str, on_update: Callable[[JobRecord], None] | None = None,
        timeout_s: float | None = None,
    ) -> JobRecord:
        """Follow the job's event stream until it ends; on_update sees every record. With timeout_s, the
        record at hand once that much time has passed (checked as events arrive)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        record: JobRecord | None = None
        for _id, _event, record in self.job_events(job_id):
            if on_update is not None:
                on_update(record)
            if record["status"] in TERMINAL or (deadline is not None and time.monotonic() > deadline):
                return record
        return self.job(job_id) if record is None else record

    def download(self, job_id: str, name: str, dest_dir: Path) -> Path:
        """Save output NAME of a job into dest_dir (made if missing) under its served file name; the path."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        with self._http.stream("GET", calls.output_path(job_id, name)) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise calls.problem(resp)
            path = dest_dir / calls.filename_of(resp, name)
            with open(path, "wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
        return path
