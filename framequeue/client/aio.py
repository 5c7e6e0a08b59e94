"""`AsyncClient`: the job API on httpx.AsyncClient, with the surface of the blocking `Client` (the same calls,
retry policy, errors and records; see framequeue.client.sync)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
from httpx_sse import aconnect_sse

from framequeue.client import calls
from framequeue.client.calls import Call
from framequeue.client.records import TERMINAL, BatchItem, JobPage, JobRecord, ModelEndpoint, Record, Upload
from framequeue.client.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy, parse_retry_after
from framequeue.client.sync import STREAM_READ_TIMEOUT_S, STREAM_RETRIES, STREAM_RETRY_S, UPLOAD_CHUNK_BYTES
from framequeue.errors import ServiceUnavailable


class AsyncClient:
    """The job API over HTTP for asyncio code: every method of `Client` as a coroutine (job_events as an
    async iterator). Use it as an async context manager (or await `aclose`)."""

    def __init__(
        self, base_url: str, timeout_s: float = 30.0, api_key: str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self.retry = retry or NO_RETRY
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, headers=headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, call: Call) -> Any:
        """Send one described call, retried as its policy allows; its result (see Client.send)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._http.request(call.method, call.path, params=call.params, json=call.json,
                                                headers=call.headers)
            except httpx.TransportError as exc:
                delay_s = self.retry.delay_s(attempt, None, random.random()) if call.retryable(None) else None
                if delay_s is None:
                    raise ServiceUnavailable(f"cannot reach framequeue at {self.base_url}: {exc}") from exc
                await asyncio.sleep(delay_s)
                continue
            if resp.status_code < 400:
                return call.result(resp)
            retry_after_s = parse_retry_after(resp.headers.get("retry-after"), time.time())
            delay_s = (self.retry.delay_s(attempt, retry_after_s, random.random())
                       if call.retryable(resp.status_code) else None)
            if delay_s is None:
                raise calls.problem(resp, retry_after_s)
            await asyncio.sleep(delay_s)

    async def ready(self) -> bool:
        try:
            return (await self._http.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not await self.ready():
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"framequeue at {self.base_url} was not ready within {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def upload(self, path: Path) -> Upload:
        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, UPLOAD_CHUNK_BYTES):
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
        try:
            resp = await self._http.post("/v1/uploads", params=calls.upload_params(path.name), content=chunks(),
                                         headers=headers)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach framequeue at {self.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            raise calls.problem(resp, parse_retry_after(resp.headers.get("retry-after"), time.time()))
        return cast(Upload, resp.json())

    async def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> JobRecord:
        return cast(JobRecord, await self.send(calls.submit(body, idempotency_key)))

    async def submit_many(
        self, jobs: Sequence[dict[str, Any]], idempotency_keys: Sequence[str | None] | None = None
    ) -> list[BatchItem]:
        return calls.renumber([cast(list[BatchItem], await self.send(c))
                               for c in calls.submit_many(jobs, idempotency_keys)])

    async def job(self, job_id: str) -> JobRecord:
        return cast(JobRecord, await self.send(calls.job(job_id)))

    async def jobs(self, status: str | None = None, limit: int = 50, after: str | None = None) -> JobPage:
        return cast(JobPage, await self.send(calls.jobs(status, limit, after)))

    async def cancel(self, job_id: str) -> JobRecord:
        return cast(JobRecord, await self.send(calls.cancel(job_id)))

    async def queue(self) -> Record:
        return cast(Record, await self.send(calls.queue()))

    async def create_endpoint(self, body: dict[str, Any]) -> Record:
        return cast(Record, await self.send(calls.create_endpoint(body)))

    async def endpoints(self) -> Record:
        return cast(Record, await self.send(calls.endpoints()))

    async def delete_endpoint(self, name: str) -> None:
        await self.send(calls.delete_endpoint(name))

    async def register_model_endpoint(self, model: str, version: int, url: str,
                                      weight: float = 1.0) -> ModelEndpoint:
        return cast(ModelEndpoint, await self.send(calls.register_model_endpoint(model, version, url, weight)))

    async def model_endpoints(self, model: str | None = None) -> list[ModelEndpoint]:
        return cast(list[ModelEndpoint], await self.send(calls.model_endpoints(model)))

    async def update_model_endpoint(
        self, endpoint_id: str, *, weight: float | None = None, state: str | None = None
    ) -> ModelEndpoint:
        return cast(ModelEndpoint, await self.send(calls.update_model_endpoint(endpoint_id, weight, state)))

    async def remove_model_endpoint(self, endpoint_id: str) -> None:
        await self.send(calls.remove_model_endpoint(endpoint_id))

    async def deliveries(self, job_id: str) -> list[Record]:
        return cast(list[Record], await self.send(calls.deliveries(job_id)))

    async def replay(self, event_id: str) -> Record:
        return cast(Record, await self.send(calls.replay(event_id)))

    async def disabled_webhooks(self) -> list[Record]:
        return cast(list[Record], await self.send(calls.disabled_webhooks()))

    async def enable_webhook(self, url: str) -> Record:
        return cast(Record, await self.send(calls.enable_webhook(url)))

    async def job_events(self, job_id: str,
                         last_event_id: str | None = None) -> AsyncIterator[tuple[str, str, JobRecord]]:
        """The job's event stream, reconnected as Client.job_events does."""
        last_id = last_event_id
        failures = 0
        timeout = httpx.Timeout(self._timeout_s, read=STREAM_READ_TIMEOUT_S)
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with aconnect_sse(self._http, "GET", calls.events_path(job_id), headers=headers,
                                        timeout=timeout) as source:
                    if source.response.status_code == 204:
                        return
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        raise calls.problem(source.response)
                    async for sse in source.aiter_sse():
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
            await asyncio.sleep(STREAM_RETRY_S)

    async def wait(
        self, job_id: str, on_update: Callable[[JobRecord], Awaitable[None] | None] | None = None,
        timeout_s: float | None = None,
    ) -> JobRecord:
        """Follow the job's event stream until it ends (see Client.wait); on_update may be a coroutine."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        record: JobRecord | None = None
        async for _id, _event, record in self.job_events(job_id):
            if on_update is not None:
                pending = on_update(record)
                if pending is not None:
                    await pending
            if record["status"] in TERMINAL or (deadline is not None and time.monotonic() > deadline):
                return record
        return await self.job(job_id) if record is None else record

    async def download(self, job_id: str, name: str, dest_dir: Path) -> Path:
        dest_dir.mkdir(parents=True, exist_ok=True)
        async with self._http.stream("GET", calls.output_path(job_id, name)) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise calls.problem(resp)
            path = dest_dir / calls.filename_of(resp, name)
            with open(path, "wb") as fh:
                async for chunk in resp.aiter_bytes():
                    await asyncio.to_thread(fh.write, chunk)
        return path
