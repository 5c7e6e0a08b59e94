"""`framequeue demo`: the main jobs, end to end, on the embedded deployment.

It registers the shared models the pipelines need, starts `framequeue up`, and runs the dashcam clip through
`detect`, then through `road` (with a stated ego speed and the two-second rule, since the clip is 8.8 s long),
then a head-pose clip through `driver`, printing where each job's outputs were downloaded.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from framequeue.cli.common import EXIT_JOB_FAILED, reports_errors, settings_of
from framequeue.config import Settings
from framequeue.errors import InvalidParams, ServiceUnavailable, UnknownModel

if TYPE_CHECKING:
    from framequeue.client import Client

READY_TIMEOUT_S = 120.0
#: the dashcam clip's speed for the road demo: the clip has no telematics, 27 m/s (97 km/h) is a highway pace
DEMO_SPEED_MPS: Final = 27.0


@dataclass(frozen=True)
class DemoModel:
    name: str
    #: path inside the shared folder
    file: str
    format: str
    #: classes file inside the shared folder, None for face and lane formats
    classes: str | None = None
    #: facemesh: the canonical face inside the shared folder
    canonical_face: str | None = None


DEMO_MODELS: Final = (
    DemoModel("yolox_nano", "models/yolox_nano/yolox_nano.onnx", "yolox", "models/yolox_nano/coco_classes.txt"),
    DemoModel("lstr", "models/lstr/lstr_360x640.onnx", "lstr"),
    DemoModel("yunet", "models/yunet/yunet_s_640_640.onnx", "yunet"),
    DemoModel(
        "facemesh",
        "models/mediapipe/face_landmark.tflite",
        "facemesh",
        canonical_face="models/mediapipe/canonical_face_model.obj",
    ),
)
#: the driver-facing clip of the demo: a person turning her head (CC-BY-4.0, Intel IoT devkit sample videos)
DRIVER_CLIP: Final = "media/head-pose-face-detection-female.gif"


def ensure_demo_models(settings: Settings, shared: Path) -> list[str]:
    """Register the demo's models from the shared folder unless the repository has them; what was done."""
    from framequeue.models.repository import ModelRepository

    repo = ModelRepository(Path(settings.model_repo))
    done = []
    for model in DEMO_MODELS:
        try:
            version = repo.get(model.name)
            done.append(f"{version.name} v{version.version} (already in the repository)")
            continue
        except UnknownModel:
            pass
        source = shared / model.file
        if not source.is_file():
            raise InvalidParams(f"{source} not found; pass --shared pointing at the shared/ folder")
        classes = None if model.classes is None else shared / model.classes
        face = None if model.canonical_face is None else shared / model.canonical_face
        version = repo.add(model.name, source, model.format, classes, canonical_face=face)
        done.append(f"{version.name} v{version.version} (registered from {source.parent})")
    return done


def demo_jobs(video: Path, shared: Path, sample_fps: float | None) -> list[tuple[str, Path, dict[str, Any]]]:
    """(pipeline, input, params) of each demo job, in order."""
    sampling = {} if sample_fps is None else {"sample_fps": sample_fps}
    return [
        ("detect", video, dict(sampling)),
        ("road", video, {**sampling, "speed_mps": DEMO_SPEED_MPS, "following": {"profile": "two_second_rule"}}),
        ("driver", shared / DRIVER_CLIP, dict(sampling)),
    ]


def run_demo(
    settings: Settings, shared: Path, video: Path | None, out: Path, sample_fps: float | None, log_level: str
) -> int:
    from framequeue.client import Client
    from framequeue.worker.pool import spawn, stop_process

    video = video or shared / "media" / "solidWhiteRight.mp4"
    if not video.is_file():
        raise InvalidParams(f"video {video} not found; pass --video or --shared")
    for line in ensure_demo_models(settings, shared):
        click.echo(f"model: {line}")
    server = spawn(["up"], settings, "warning" if log_level == "info" else log_level)
    base_url = f"http://{settings.host}:{settings.port}"
    try:
        with Client(base_url) as client:
            client.wait_ready(READY_TIMEOUT_S)
            if server.poll() is not None:
                raise ServiceUnavailable(f"framequeue up exited with {server.returncode}")
            click.echo(f"framequeue is up at {base_url} (home {settings.home})")
            keys: dict[Path, str] = {}
            for pipeline, source, params in demo_jobs(video, shared, sample_fps):
                if source not in keys:
                    if not source.is_file():
                        raise InvalidParams(f"{source} not found; pass --shared pointing at the shared/ folder")
                    keys[source] = client.upload(source)["key"]
                code = _run_job(client, source, keys[source], pipeline, params, out)
                if code:
                    return code
            return 0
    finally:
        stop_process(server, settings.drain_s + 10)


def _run_job(client: Client, video: Path, key: str, pipeline: str, params: dict[str, Any], out: Path) -> int:
    from framequeue.cli.progress import follow

    record = client.submit({"pipeline": pipeline, "input": {"key": key}, "params": params})
    click.echo(f"\nsubmitted {video.name} to {pipeline} as job {record['id']} (params {params})")
    record = follow(client, record["id"])
    if record["status"] != "succeeded":
        err: dict[str, Any] = dict(record["error"] or {})
        click.secho(f"job {record['status']}: [{err.get('code')}] {err.get('message')}", fg="red")
        return EXIT_JOB_FAILED
    progress = record["progress"]
    click.secho(f"job {record['id']} ({pipeline}) succeeded: {progress['frames_total']} frames", fg="green")
    for name in record["outputs"]:
        path = client.download(record["id"], name, out / record["id"])
        click.echo(f"  {name:14} {path.resolve()}")
    if "timeline" in record["outputs"]:
        what = "distance, time gap and TTC" if pipeline == "road" else "head yaw and pitch"
        click.echo(f"  open {out / record['id'] / 'timeline.png'} first: {what} over the clip, events shaded")
    return 0


@click.command()
@click.option("--shared", type=click.Path(file_okay=False, path_type=Path), envvar="FQ_SHARED_DIR",
              show_envvar=True, default=Path("../shared"), help="Folder with models/ and media/.")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Video to process [default: <shared>/media/solidWhiteRight.mp4].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("framequeue-demo"),
              help="Where the outputs are downloaded.")
@click.option("--sample-fps", type=float, default=None)
@click.pass_context
@reports_errors
def demo(ctx: click.Context, shared: Path, video: Path | None, out: Path, sample_fps: float | None) -> None:
    """Start framequeue embedded, register YOLOX-nano, submit the dashcam clip, follow it, fetch the results."""
    settings = settings_of(ctx, port=_free_port())
    sys.exit(run_demo(settings, shared, video, out, sample_fps, ctx.obj["log_level"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
