"""`framequeue serve-models`: the model repository over the Open Inference Protocol v2, HTTP and gRPC
(framequeue.inference.serve runs it)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import click

from framequeue.config import Settings, env_var


@click.command("serve-models", context_settings={"show_default": True, "max_content_width": 110})
@click.option("--host", envvar=env_var("host"), show_envvar=True, default="127.0.0.1")
@click.option("--http-port", envvar="FQ_HTTP_PORT", show_envvar=True, default=8000, type=int)
@click.option("--grpc-port", envvar="FQ_GRPC_PORT", show_envvar=True, default=8001, type=int)
@click.option("--model-repo", envvar=env_var("model_repo"), show_envvar=True, default=None,
              type=click.Path(file_okay=False, path_type=Path), help="Model repository [default: <home>/models].")
@click.option("--memory-budget-mb", envvar="FQ_MEMORY_BUDGET_MB", show_envvar=True, default=2048, type=float,
              help="Memory the loaded models may be charged (their config's memory_bytes) before LRU unloads.")
@click.option("--batching/--no-batching", envvar="FQ_BATCHING", show_envvar=True, default=True,
              help="Dynamic batching per model; off runs every request alone.")
@click.option("--threads", envvar=env_var("worker_threads"), show_envvar=True, default=1, type=int,
              help="ONNX Runtime intra-op threads of each loaded model (CPU).")
@click.option("--request-timeout-s", envvar="FQ_REQUEST_TIMEOUT_S", show_envvar=True, default=60.0, type=float,
              help="A request not started within this time fails (504 / DEADLINE_EXCEEDED); 0 waits forever.")
@click.option("--max-waiting-loads", envvar="FQ_MAX_WAITING_LOADS", show_envvar=True, default=64, type=int,
              help="Requests that may wait for memory at once; more get 503 / UNAVAILABLE.")
@click.pass_context
def serve_models(
    ctx: click.Context, host: str, http_port: int, grpc_port: int, model_repo: Path | None,
    memory_budget_mb: float, batching: bool, threads: int, request_timeout_s: float, max_waiting_loads: int,
) -> None:
    """Serve the model repository over the Open Inference Protocol v2 (HTTP and gRPC), e.g. to tritonclient."""
    obj: dict[str, Any] = ctx.obj or {}
    home = obj.get("home")
    settings = Settings.from_env(home=Path(home) if home else None)
    log_level = str(obj.get("log_level", "info"))
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
        )
    repo = model_repo or Path(settings.model_repo)
    from framequeue.inference.serve import serve

    asyncio.run(
        serve(
            repo, host, http_port, grpc_port, int(memory_budget_mb * 2**20), batching, threads,
            request_timeout_s or None, max_waiting_loads, log_level.lower(),
        )
    )

