"""A thin HTTP client of the job API, used by the CLI and the benchmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from framequeue.errors import FrameQueueError, ServiceUnavailable, from_code

TERMINAL = {"succeeded", "failed", "cancelled", "expired"}
UPLOAD_CHUNK_BYTES = 1024 * 1024
#: an event stream silent this long is dropped and reconnected (the API sends a keep-alive every 10 s)
STREAM_READ_TIMEOUT_S = 35.0
#: failed (re)connections of an event stream in a row before the client gives up; the pause between them
STREAM_RETRIES = 10
STREAM_RETRY_S = 1.0


class Client:
    def __init__(self, base_url: str, timeout_s: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, url: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach framequeue at {self.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            _raise_problem(resp)
        return resp.json() if resp.content else None

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"framequeue at {self.base_url} was not ready within {timeout_s:.0f} s")
            time.sleep(0.2)

    def upload(self, path: Path) -> dict[str, Any]:
        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while chunk := fh.read(UPLOAD_CHUNK_BYTES):
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
        result: dict[str, Any] = self._call(
            "POST", "/v1/uploads", params={"filename": path.name}, content=chunks(), headers=headers
        )
        return result

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result: dict[str, Any] = self._call("POST", "/v1/jobs", json=body, headers=headers)
        return result

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}")
        return result

    def jobs(self, status: str | None = None, limit: int = 50) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        result: dict[str, Any] = self._call("GET", "/v1/jobs", params=params)
        return result

    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/endpoints", json=body)
        return result

    def endpoints(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/endpoints")
        return result

    def delete_endpoint(self, name: str) -> None:
        self._call("DELETE", f"/v1/endpoints/{name}")

    def register_model_endpoint(self, model: str, version: int, url: str, weight: float = 1.0) -> dict[str, Any]:
        body = {"model": model, "version": version, "url": url, "weight": weight}
        result: dict[str, Any] = self._call("POST", "/v1/model-endpoints", json=body)
        return result

    def model_endpoints(self, model: str | None = None) -> list[dict[str, Any]]:
        params = {"model": model} if model else {}
        result: list[dict[str, Any]] = self._call("GET", "/v1/model-endpoints", params=params)["model_endpoints"]
        return result

    def update_model_endpoint(
        self, endpoint_id: str, *, weight: float | None = None, state: str | None = None
    ) -> dict[str, Any]:
        body = {k: v for k, v in (("weight", weight), ("state", state)) if v is not None}
        result: dict[str, Any] = self._call("PATCH", f"/v1/model-endpoints/{endpoint_id}", json=body)
        return result

    def remove_model_endpoint(self, endpoint_id: str) -> None:
        self._call("DELETE", f"/v1/model-endpoints/{endpoint_id}")

    def deliveries(self, job_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/v1/jobs/{job_id}/deliveries")["deliveries"]
        return result

    def replay(self, event_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/deliveries/{event_id}/replay")
        return result

    def disabled_webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/v1/webhooks/disabled")["disabled_webhooks"]
        return result

    def enable_webhook(self, url: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/webhooks/enable", json={"url": url})
        return result

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/jobs/{job_id}/cancel")
        return result

    def job_events(self, job_id: str, last_event_id: str | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """The job's event stream (GET /v1/jobs/{id}/events) as (event id, event, record), ending with the
        terminal record. A dropped connection, or a stream that closed before the end, is reconnected with
        Last-Event-ID (no record twice); ServiceUnavailable after STREAM_RETRIES failures in a row."""
        last_id = last_event_id
        failures = 0
        timeout = httpx.Timeout(self._timeout_s, read=STREAM_READ_TIMEOUT_S)
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with connect_sse(self._http, "GET", f"/v1/jobs/{job_id}/events", headers=headers,
                                 timeout=timeout) as source:
                    if source.response.status_code == 204:  # the terminal record is the one last_id names
                        return
                    if source.response.status_code >= 400:
                        source.response.read()
                        _raise_problem(source.response)
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
        self, job_id: str, on_update: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Follow the job's event stream until it ends; on_update sees every record. With timeout_s, the
        record at hand once that much time has passed (checked as events arrive)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        record: dict[str, Any] | None = None
        for _id, _event, record in self.job_events(job_id):
            if on_update is not None:
                on_update(record)
            if record["status"] in TERMINAL or (deadline is not None and time.monotonic() > deadline):
                return record
        return self.job(job_id) if record is None else record

    def download(self, job_id: str, name: str, dest_dir: Path) -> Path:
        dest_dir.mkdir(parents=True, exist_ok=True)
        with self._http.stream("GET", f"/v1/jobs/{job_id}/outputs/{name}") as resp:
            if resp.status_code >= 400:
                resp.read()
                body = resp.json()
                raise from_code(body.get("code", "not_found"), body.get("detail", ""))
            disposition = resp.headers.get("content-disposition", "")
            filename = disposition.split("filename=", 1)[-1].strip('"') or name
            path = dest_dir / filename
            with open(path, "wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
        return path


def _raise_problem(resp: httpx.Response) -> None:
    """Raise the framequeue error of a problem response (the code from the error tree)."""
    try:
        body = resp.json()
    except ValueError:
        raise FrameQueueError(f"HTTP {resp.status_code}: {resp.text[:200]}") from None
    raise from_code(body.get("code", "internal_error"), body.get("detail", resp.text))
