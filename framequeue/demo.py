"""`framequeue demo`: the main job, end to end, on the embedded deployment."""

from __future__ import annotations

from pathlib import Path

import click

from framequeue.client import Client
from framequeue.config import Settings
from framequeue.errors import InvalidParams, ServiceUnavailable, UnknownModel
from framequeue.models.repository import ModelRepository
from framequeue.progress import follow
from framequeue.supervisor import spawn, stop_process

DEMO_MODEL = "yolox_nano"
READY_TIMEOUT_S = 120.0


def ensure_demo_model(settings: Settings, shared: Path) -> str:
    repo = ModelRepository(Path(settings.model_repo))
    try:
        version = repo.get(DEMO_MODEL)
        return f"{version.name} v{version.version} (already in the repository)"
    except UnknownModel:
        pass
    src = shared / "models" / "yolox_nano"
    if not (src / "yolox_nano.onnx").is_file():
        raise InvalidParams(f"YOLOX-nano not found in {src}; pass --shared pointing at the shared/ folder")
    version = repo.add(DEMO_MODEL, src / "yolox_nano.onnx", "yolox", src / "coco_classes.txt")
    return f"{version.name} v{version.version} (registered from {src})"


def run_demo(
    settings: Settings, shared: Path, video: Path | None, out: Path, sample_fps: float | None, log_level: str
) -> int:
    video = video or shared / "media" / "solidWhiteRight.mp4"
    if not video.is_file():
        raise InvalidParams(f"video {video} not found; pass --video or --shared")
    click.echo(f"model: {ensure_demo_model(settings, shared)}")
    server = spawn(["up"], settings, "warning" if log_level == "info" else log_level)
    base_url = f"http://{settings.host}:{settings.port}"
    try:
        with Client(base_url) as client:
            client.wait_ready(READY_TIMEOUT_S)
            if server.poll() is not None:
                raise ServiceUnavailable(f"framequeue up exited with {server.returncode}")
            click.echo(f"framequeue is up at {base_url} (home {settings.home})")
            uploaded = client.upload(video)
            params = {} if sample_fps is None else {"sample_fps": sample_fps}
            record = client.submit({"pipeline": "detect", "input": {"key": uploaded["key"]}, "params": params})
            click.echo(f"submitted {video.name} as job {record['id']}")
            record = follow(client, record["id"])
            if record["status"] != "succeeded":
                err = record.get("error") or {}
                click.secho(f"job {record['status']}: [{err.get('code')}] {err.get('message')}", fg="red")
                return 3
            progress = record["progress"]
            click.secho(f"job {record['id']} succeeded: {progress['frames_total']} frames", fg="green")
            for name in record["outputs"]:
                path = client.download(record["id"], name, out / record["id"])
                click.echo(f"  {name:14} {path.resolve()}")
            return 0
    finally:
        stop_process(server, settings.drain_s + 10)
