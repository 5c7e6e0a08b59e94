"""One command; subcommands mirror the architecture: up | api | worker | submit | jobs | job | cancel |
models | demo. Every flag names its environment variable in --help."""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

from framequeue.config import Settings, env_var
from framequeue.errors import FrameQueueError, ServiceUnavailable

#: named exit codes
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_JOB_FAILED = 3
EXIT_UNAVAILABLE = 4

DEFAULT_SERVER = "http://127.0.0.1:8080"
THREADS_HELP = (
    "Thread budget of one job, split between its decode, inference and encode pools (the three stages "
    "always run as three threads; below 4 each pool gets one)."
)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    home = ctx.obj["home"]
    return Settings.from_env(home=Path(home) if home else None, **overrides)


def _fail(exc: FrameQueueError) -> None:
    click.secho(f"error [{exc.code}]: {exc.message}", fg="red", err=True)
    sys.exit(EXIT_UNAVAILABLE if isinstance(exc, ServiceUnavailable) else EXIT_ERROR)


@click.group(context_settings={"show_default": True, "max_content_width": 110})
@click.option("--home", envvar=env_var("home"), show_envvar=True, default=None,
              help="Folder of the embedded deployment (SQLite file, objects, models). [default: .framequeue]")
@click.option("--log-level", envvar="FQ_LOG_LEVEL", show_envvar=True, default="info")
@click.option("--api-key", envvar="FQ_API_KEY", show_envvar=True, default=None,
              help="API key (fq_…) the client commands send; not needed while the API runs open.")
@click.version_option(package_name="framequeue")
@click.pass_context
def main(ctx: click.Context, home: str | None, log_level: str, api_key: str | None) -> None:
    """framequeue: asynchronous deep-learning inference on large media, video first."""
    ctx.obj = {"home": home, "log_level": log_level, "api_key": api_key}


# -- serving -------------------------------------------------------------------------------------------

_host = click.option("--host", envvar=env_var("host"), show_envvar=True, default="127.0.0.1")
_port = click.option("--port", envvar=env_var("port"), show_envvar=True, default=8080, type=int)


@main.command()
@_host
@_port
@click.option("--workers", envvar=env_var("workers"), show_envvar=True, default=2, type=int,
              help="Worker processes (one job each).")
@click.option("--worker-threads", envvar=env_var("worker_threads"), show_envvar=True, default=1, type=int,
              help=THREADS_HELP)
@click.pass_context
def up(ctx: click.Context, host: str, port: int, workers: int, worker_threads: int) -> None:
    """Start the API and a pool of workers (the embedded deployment by default)."""
    _setup_logging(ctx.obj["log_level"])
    settings = _settings(ctx, host=host, port=port, workers=workers, worker_threads=worker_threads)
    from framequeue.worker.pool import run_up

    sys.exit(run_up(settings, ctx.obj["log_level"]))


@main.command()
@_host
@_port
@click.pass_context
def api(ctx: click.Context, host: str, port: int) -> None:
    """Run the HTTP API alone (with the webhook dispatcher and the reaper)."""
    _setup_logging(ctx.obj["log_level"])
    settings = _settings(ctx, host=host, port=port)
    import uvicorn

    from framequeue.api.app import create_app

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=ctx.obj["log_level"])


@main.command()
@click.option("--worker-threads", envvar=env_var("worker_threads"), show_envvar=True, default=1, type=int,
              help=THREADS_HELP)
@click.option("--max-jobs", default=0, type=int,
              help="Exit after this many jobs (a Kubernetes Job per video: 1); 0 runs until SIGTERM.")
@click.pass_context
def worker(ctx: click.Context, worker_threads: int, max_jobs: int) -> None:
    """Run one worker: take jobs until SIGTERM, then finish or hand back the current one and exit."""
    _setup_logging(ctx.obj["log_level"])
    settings = _settings(ctx, worker_threads=worker_threads)
    from framequeue.runtime import open_runtime
    from framequeue.worker.loop import Worker

    rt = open_runtime(settings)
    w = Worker(rt, max_jobs=max_jobs)

    def on_signal(signum: int, _: Any) -> None:
        logging.getLogger("framequeue.worker").info("signal %d: draining", signum)
        w.drain()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        w.run()
    finally:
        rt.close()


def _register_optional_commands() -> None:
    """Commands that live with their subsystem: serving models over the Open Inference Protocol, a day's
    autoscaling simulation, the local autoscaler."""
    from framequeue.inference.serve import serve_models
    from framequeue.scaling.autoscale_cli import autoscale
    from framequeue.scaling.cli import simulate

    main.add_command(serve_models)
    main.add_command(simulate)
    main.add_command(autoscale)


_register_optional_commands()


# -- client commands -----------------------------------------------------------------------------------

_server = click.option("--server", envvar="FQ_SERVER", show_envvar=True, default=DEFAULT_SERVER,
                       help="Base URL of the framequeue API.")


def _client(server: str) -> Any:
    """The HTTP client of the client commands, sending the --api-key given to `framequeue`."""
    from framequeue.client import Client

    return Client(server, api_key=click.get_current_context().find_root().obj.get("api_key"))


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        try:
            params[name] = json.loads(raw)
        except ValueError:
            params[name] = raw
    return params


@main.command()
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pipeline", default="detect")
@click.option("--sample-fps", type=float, default=None, help="Frames analysed per second [default: every frame].")
@click.option("--param", "params", multiple=True, help="Pipeline parameter NAME=VALUE (JSON values), repeatable.")
@click.option("--webhook", default=None, help="URL notified when the job ends.")
@click.option("--idempotency-key", default=None)
@click.option("--wait/--no-wait", default=False, help="Follow progress until the job ends.")
@click.option("--download", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --wait: download the outputs into this folder.")
@_server
def submit(video: Path, pipeline: str, sample_fps: float | None, params: tuple[str, ...], webhook: str | None,
           idempotency_key: str | None, wait: bool, download: Path | None, server: str) -> None:
    """Upload VIDEO and submit it to a pipeline."""
    from framequeue.progress import follow

    body_params = _parse_params(params)
    if sample_fps is not None:
        body_params["sample_fps"] = sample_fps
    try:
        with _client(server) as client:
            uploaded = client.upload(video)
            body: dict[str, Any] = {"pipeline": pipeline, "input": {"key": uploaded["key"]}, "params": body_params}
            if webhook:
                body["webhook"] = {"url": webhook}
            record = client.submit(body, idempotency_key)
            click.echo(f"job {record['id']} {record['status']}  outputs: {record['output_location']}")
            if not wait:
                return
            record = follow(client, record["id"])
            _print_outcome(client, record, download)
    except FrameQueueError as exc:
        _fail(exc)


def _print_outcome(client: Any, record: dict[str, Any], download: Path | None) -> None:
    if record["status"] != "succeeded":
        err = record.get("error") or {}
        click.secho(f"job {record['id']} {record['status']}: [{err.get('code')}] {err.get('message')}", fg="red")
        sys.exit(EXIT_JOB_FAILED)
    click.secho(f"job {record['id']} succeeded", fg="green")
    for name, key in record["outputs"].items():
        if download is not None:
            path = client.download(record["id"], name, download / record["id"])
            click.echo(f"  {name:14} {path}")
        else:
            click.echo(f"  {name:14} {key}")


@main.command()
@click.option("--status", default=None, help="queued, running, succeeded, failed, cancelled or expired.")
@click.option("--limit", default=20, type=int)
@_server
def jobs(status: str | None, limit: int, server: str) -> None:
    """List jobs, newest first."""
    try:
        with _client(server) as client:
            page = client.jobs(status, limit)
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(f"{'ID':32}  {'STATUS':10} {'PIPELINE':9} {'PROGRESS':>9}  CREATED")
    for rec in page["jobs"]:
        pct = rec["progress"]["percent"]
        click.echo(f"{rec['id']:32}  {rec['status']:10} {rec['pipeline']:9} "
                   f"{'' if pct is None else f'{pct:.0f}%':>9}  {rec['created_at']}")


@main.command()
@click.argument("job_id")
@click.option("--download", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Download the job's outputs into this folder.")
@_server
def job(job_id: str, download: Path | None, server: str) -> None:
    """Show one job's record (JSON)."""
    try:
        with _client(server) as client:
            record = client.job(job_id)
            click.echo(json.dumps(record, indent=2))
            if download is not None and record["status"] == "succeeded":
                for name in record["outputs"]:
                    click.echo(f"{name}: {client.download(job_id, name, download / job_id)}", err=True)
    except FrameQueueError as exc:
        _fail(exc)


@main.command()
@click.argument("job_id")
@_server
def cancel(job_id: str, server: str) -> None:
    """Cancel a queued or running job."""
    try:
        with _client(server) as client:
            record = client.cancel(job_id)
    except FrameQueueError as exc:
        _fail(exc)
        return
    state = "cancel requested" if record["status"] == "running" else record["status"]
    click.echo(f"job {job_id}: {state}")


# -- webhook deliveries --------------------------------------------------------------------------------

@main.group()
def deliveries() -> None:
    """A job's webhook events: list them, replay one."""


@deliveries.command("list")
@click.argument("job_id")
@_server
def deliveries_list(job_id: str, server: str) -> None:
    """List a job's webhook events (JSON lines): state, attempts, last error, next attempt."""
    try:
        with _client(server) as client:
            for d in client.deliveries(job_id):
                click.echo(json.dumps(d))
    except FrameQueueError as exc:
        _fail(exc)


@deliveries.command("replay")
@click.argument("event_id")
@_server
def deliveries_replay(event_id: str, server: str) -> None:
    """Deliver an event again now, with the same webhook-id."""
    try:
        with _client(server) as client:
            click.echo(json.dumps(client.replay(event_id)))
    except FrameQueueError as exc:
        _fail(exc)


@main.group()
def webhooks() -> None:
    """Webhook URLs disabled by a 410 Gone answer (admin key): list them, enable one again."""


@webhooks.command("disabled")
@_server
def webhooks_disabled(server: str) -> None:
    try:
        with _client(server) as client:
            for d in client.disabled_webhooks():
                click.echo(json.dumps(d))
    except FrameQueueError as exc:
        _fail(exc)


@webhooks.command("enable")
@click.argument("url")
@_server
def webhooks_enable(url: str, server: str) -> None:
    try:
        with _client(server) as client:
            client.enable_webhook(url)
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(f"enabled {url}")


# -- async endpoints -----------------------------------------------------------------------------------

@main.group()
def endpoints() -> None:
    """Async endpoints: a name for a pipeline and where its answers go (SageMaker-style)."""


@endpoints.command("create")
@click.argument("name")
@click.option("--pipeline", default="detect")
@click.option("--param", "params", multiple=True, help="Pipeline parameter NAME=VALUE (JSON values), repeatable.")
@click.option("--output-path", required=True, help="s3://bucket/prefix for the answers (<InferenceId>.out).")
@click.option("--failure-path", default=None, help="s3://bucket/prefix for failure documents [default: output path].")
@click.option("--success-webhook", default=None, help="URL notified when an invocation succeeds.")
@click.option("--error-webhook", default=None, help="URL notified when an invocation fails, expires or is cancelled.")
@click.option("--max-concurrent-invocations", default=1, type=int,
              help="Invocations of this endpoint one worker runs at a time.")
@_server
def endpoints_create(name: str, pipeline: str, params: tuple[str, ...], output_path: str, failure_path: str | None,
                     success_webhook: str | None, error_webhook: str | None, max_concurrent_invocations: int,
                     server: str) -> None:
    """Create endpoint NAME; boto3's sagemaker-runtime invoke_endpoint_async then reaches it."""
    body = {"name": name, "pipeline": pipeline, "params": _parse_params(params), "output_path": output_path,
            "failure_path": failure_path, "success_webhook": success_webhook, "error_webhook": error_webhook,
            "max_concurrent_invocations": max_concurrent_invocations}
    try:
        with _client(server) as client:
            created = client.create_endpoint(body)
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(json.dumps(created, indent=2))


@endpoints.command("list")
@_server
def endpoints_list(server: str) -> None:
    """List endpoints."""
    try:
        with _client(server) as client:
            page = client.endpoints()
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(f"{'NAME':24} {'PIPELINE':9} OUTPUT PATH")
    for ep in page["endpoints"]:
        click.echo(f"{ep['name']:24} {ep['pipeline']:9} {ep['output_path']}")


@endpoints.command("delete")
@click.argument("name")
@_server
def endpoints_delete(name: str, server: str) -> None:
    """Delete endpoint NAME (invocations already queued still run)."""
    try:
        with _client(server) as client:
            client.delete_endpoint(name)
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(f"endpoint {name} deleted")


# -- model endpoint registry ---------------------------------------------------------------------------

@main.group("model-endpoints")
def model_endpoints() -> None:
    """Where each (model, version) runs: OIP v2 servers or `local`, with A/B weights."""


def _registry_call(server: str, call: Any) -> Any:
    try:
        with _client(server) as client:
            return call(client)
    except FrameQueueError as exc:
        _fail(exc)


def _echo_model_endpoint(ep: dict[str, Any]) -> None:
    click.echo(f"{ep['id']:22} {ep['model']:16} v{ep['version']:<4} {ep['weight']:>8g} {ep['state']:9} {ep['url']}")


@model_endpoints.command("register")
@click.argument("model")
@click.argument("version", type=int)
@click.argument("url")
@click.option("--weight", default=1.0, type=float, help="Share of the model's jobs, relative to its other endpoints.")
@_server
def model_endpoints_register(model: str, version: int, url: str, weight: float, server: str) -> None:
    """Register URL (http(s)://host:port, grpc://host:port, or `local`) for VERSION of MODEL."""
    _echo_model_endpoint(_registry_call(server, lambda c: c.register_model_endpoint(model, version, url, weight)))


@model_endpoints.command("list")
@click.option("--model", default=None, help="Only this model's endpoints.")
@_server
def model_endpoints_list(model: str | None, server: str) -> None:
    """List model endpoints."""
    rows = _registry_call(server, lambda c: c.model_endpoints(model))
    click.echo(f"{'ID':22} {'MODEL':16} {'VER':5} {'WEIGHT':>8} {'STATE':9} URL")
    for ep in rows:
        _echo_model_endpoint(ep)


@model_endpoints.command("reweigh")
@click.argument("endpoint_id")
@click.argument("weight", type=float)
@_server
def model_endpoints_reweigh(endpoint_id: str, weight: float, server: str) -> None:
    """Set the weight of an endpoint (0: no new jobs are routed to it)."""
    _echo_model_endpoint(_registry_call(server, lambda c: c.update_model_endpoint(endpoint_id, weight=weight)))


@model_endpoints.command("drain")
@click.argument("endpoint_id")
@_server
def model_endpoints_drain(endpoint_id: str, server: str) -> None:
    """Route no new jobs to an endpoint (jobs already given its version still run)."""
    _echo_model_endpoint(
        _registry_call(server, lambda c: c.update_model_endpoint(endpoint_id, state="draining"))
    )


@model_endpoints.command("remove")
@click.argument("endpoint_id")
@_server
def model_endpoints_remove(endpoint_id: str, server: str) -> None:
    """Remove an endpoint from the registry."""
    _registry_call(server, lambda c: c.remove_model_endpoint(endpoint_id))
    click.echo(f"model endpoint {endpoint_id} removed")


# -- API keys ------------------------------------------------------------------------------------------

@main.group()
def keys() -> None:
    """API keys, straight on the job store (no running API needed): create, list, revoke."""


def _keys(ctx: click.Context) -> Any:
    from framequeue.backends import open_jobstore
    from framequeue.keys import Keys

    def no_jobs(_: Any) -> bytes:
        raise RuntimeError("`framequeue keys` writes no job")

    store = open_jobstore(_settings(ctx).database_url, no_jobs)
    ctx.call_on_close(store.close)
    return Keys(store)


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant the key acts for (its jobs, uploads, quota).")
@click.option("--scope", required=True, type=click.Choice(["read", "submit", "admin"]),
              help="read: read jobs; submit: also upload, submit, cancel; admin: also keys and endpoints.")
@click.option("--name", default="", help="A label for the key (who or what uses it).")
@click.pass_context
def keys_create(ctx: click.Context, tenant: str, scope: str, name: str) -> None:
    """Create a key and print it, once: only its hash is kept."""
    try:
        row, key = _keys(ctx).create(tenant, scope, name)
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(key)
    click.echo(f"key {row.id} for tenant {row.tenant}, scope {row.scopes}: store it now, it is not shown again",
               err=True)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.pass_context
def keys_list(ctx: click.Context, tenant: str | None) -> None:
    """List keys (never the keys themselves)."""
    try:
        rows = _keys(ctx).list(tenant)
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(f"{'ID':12}  {'TENANT':20} {'SCOPE':6} {'STATE':7} NAME")
    for k in rows:
        state = "revoked" if k["revoked_at_s"] is not None else "active"
        click.echo(f"{k['id']:12}  {k['tenant']:20} {k['scope']:6} {state:7} {k['name']}")


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke key KEY_ID for good (requests with it answer 401 at once)."""
    try:
        _keys(ctx).revoke(key_id)
    except FrameQueueError as exc:
        _fail(exc)
        return
    click.echo(f"key {key_id} revoked")


# -- models --------------------------------------------------------------------------------------------

@main.group()
def models() -> None:
    """The model repository (<home>/models/<name>/<version>/)."""


@models.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True, help="Output layout of the model, e.g. yolox.")
@click.option("--classes", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Text file with one class name per line (detection formats; face and lane formats imply theirs).")
@click.option("--runtime", type=click.Choice(["onnxruntime", "openvino"]), default="onnxruntime",
              show_default=True, help="In-process runtime; openvino is checked against ONNX Runtime fp32 first.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="OpenVINO's inference precision (bf16 runs fp32 on CPUs without bf16).")
@click.option("--check-image", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A real frame for the openvino accuracy check (default: a synthetic pattern).")
@click.option("--canonical-face", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="facemesh models: the 468-vertex canonical face .obj their head poses are solved against.")
@click.pass_context
def models_add(
    ctx: click.Context, name: str, path: Path, fmt: str, classes: Path | None, runtime: str, precision: str,
    check_image: Path | None, canonical_face: Path | None,
) -> None:
    """Add PATH as the next version of model NAME."""
    from framequeue.models.base import ServingConfig
    from framequeue.models.repository import ModelRepository

    settings = _settings(ctx)
    try:
        serving = ServingConfig(runtime=runtime, precision=precision)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    image = None
    if check_image is not None:
        import cv2

        image = cv2.imread(str(check_image), cv2.IMREAD_COLOR)
        if image is None:
            raise click.BadParameter(f"{check_image} is not an image OpenCV can read", param_hint="--check-image")
    try:
        version = ModelRepository(Path(settings.model_repo)).add(
            name, path, fmt, classes, serving=serving, check_image=None if image is None else image.astype("uint8"),
            canonical_face=canonical_face,
        )
    except FrameQueueError as exc:
        _fail(exc)
        return
    serving = version.serving
    click.echo(f"added {version.name} version {version.version} ({version.format}, {serving.runtime} "
               f"{serving.precision}) at {version.path}")


@models.command("list")
@click.pass_context
def models_list(ctx: click.Context) -> None:
    """List models and versions."""
    from framequeue.models.repository import ModelRepository

    for m in ModelRepository(Path(_settings(ctx).model_repo)).list():
        click.echo(f"{m.name:20} v{m.version:<4} {m.format:10} {m.path}")


# -- the main job ---------------------------------------------------------------------------------------

@main.command()
@click.option("--shared", type=click.Path(file_okay=False, path_type=Path), envvar="FQ_SHARED_DIR",
              show_envvar=True, default=Path("../shared"), help="Folder with models/ and media/.")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Video to process [default: <shared>/media/solidWhiteRight.mp4].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("framequeue-demo"),
              help="Where the outputs are downloaded.")
@click.option("--sample-fps", type=float, default=None)
@click.pass_context
def demo(ctx: click.Context, shared: Path, video: Path | None, out: Path, sample_fps: float | None) -> None:
    """Start framequeue embedded, register YOLOX-nano, submit the dashcam clip, follow it, fetch the results."""
    from framequeue.demo import run_demo

    settings = _settings(ctx, port=_free_port())
    try:
        sys.exit(run_demo(settings, shared, video, out, sample_fps, ctx.obj["log_level"]))
    except FrameQueueError as exc:
        _fail(exc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port

