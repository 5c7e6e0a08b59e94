"""A thin HTTP client of the job API, used by the CLI and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from framequeue.errors import FrameQueueError, ServiceUnavailable, from_code

TERMINAL = {"succeeded", "failed", "cancelled", "expired"}
UPLOAD_CHUNK_BYTES = 1024 * 1024


class Client:
    def __init__(self, base_url: str, timeout_s: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
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
            try:
                body = resp.json()
                raise from_code(body.get("code", "internal_error"), body.get("detail", resp.text))
            except ValueError:
                raise FrameQueueError(f"HTTP {resp.status_code}: {resp.text[:200]}") from None
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

    def wait(
        self, job_id: str, on_update: Callable[[dict[str, Any]], None] | None = None, poll_s: float = 0.5,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Poll until the job ends; on_update sees every record."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.job(job_id)
            if on_update is not None:
                on_update(record)
            if record["status"] in TERMINAL:
                return record
            if deadline is not None and time.monotonic() > deadline:
                return record
            time.sleep(poll_s)

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
