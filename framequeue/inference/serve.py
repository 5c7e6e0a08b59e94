"""The model repository over OIP v2, HTTP and gRPC, in one event loop (what `framequeue serve-models` runs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

__all__ = ["serve"]

log = logging.getLogger(__name__)

#: seconds running requests get to finish when the server stops
GRACE_S: Final = 5.0


async def serve(
    repo: Path, host: str, http_port: int, grpc_port: int, budget_bytes: int, batching: bool,
    threads: int, timeout_s: float | None, max_waiting: int, log_level: str,
) -> None:
    import uvicorn

    from framequeue.inference.dataplane import InferenceService
    from framequeue.inference.grpc import create_server
    from framequeue.inference.http import create_app
    from framequeue.inference.manager import ModelManager
    from framequeue.inference.runner import OnnxRunner
    from framequeue.models.onnx import providers
    from framequeue.models.repository import ModelRepository

    manager = ModelManager(
        lambda version: OnnxRunner(version, threads), budget_bytes, batching=batching, max_waiting=max_waiting
    )
    service = InferenceService(ModelRepository(repo), manager, timeout_s)
    grpc_server, bound = create_server(service, host, grpc_port)
    http = uvicorn.Server(
        uvicorn.Config(create_app(service), host=host, port=http_port, log_level=log_level, lifespan="off")
    )
    await grpc_server.start()
    log.info(
        "serving %s over HTTP on %s:%d and gRPC on %s:%d (providers %s, budget %.0f MiB, batching %s)",
        repo, host, http_port, host, bound, ",".join(providers()), budget_bytes / 2**20, "on" if batching else "off",
    )
    try:
        await http.serve()  # until SIGINT / SIGTERM
    finally:
        await grpc_server.stop(GRACE_S)
        await manager.close()
