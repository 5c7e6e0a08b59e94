"""`framequeue models`: the model repository on this machine (<home>/models/<name>/<version>/)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from framequeue.cli.common import reports_errors, settings_of
from framequeue.cli.output import emit_many, emit_one, output_option

if TYPE_CHECKING:
    from framequeue.models.version import ModelVersion


@click.group()
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
@output_option()
@click.pass_context
@reports_errors
def models_add(
    ctx: click.Context, name: str, path: Path, fmt: str, classes: Path | None, runtime: str, precision: str,
    check_image: Path | None, canonical_face: Path | None, output: str,
) -> None:
    """Add PATH as the next version of model NAME."""
    from framequeue.models.repository import ModelRepository
    from framequeue.models.serving import ServingConfig

    settings = settings_of(ctx)
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
    version = ModelRepository(Path(settings.model_repo)).add(
        name, path, fmt, classes, serving=serving, check_image=None if image is None else image.astype("uint8"),
        canonical_face=canonical_face,
    )

    def table(v: Mapping[str, Any]) -> None:
        click.echo(f"added {v['name']} version {v['version']} ({v['format']}, {v['runtime']} {v['precision']}) "
                   f"at {v['path']}")

    emit_one(_record(version), output, table)


def _record(v: ModelVersion) -> dict[str, Any]:
    """A model version as -o json prints it."""
    return {"name": v.name, "version": v.version, "format": v.format, "path": str(v.path),
            "input_size_hw": list(v.input_size_hw), "classes": len(v.classes), "runtime": v.serving.runtime,
            "precision": v.serving.precision, "sha256": v.sha256, "created_at": v.created_at}


def _models_table(rows: Sequence[Mapping[str, Any]]) -> None:
    for m in rows:
        click.echo(f"{m['name']:20} v{m['version']:<4} {m['format']:10} {m['path']}")


@models.command("list")
@output_option()
@click.pass_context
def models_list(ctx: click.Context, output: str) -> None:
    """List models and versions (-o json: an array)."""
    from framequeue.models.repository import ModelRepository

    versions = ModelRepository(Path(settings_of(ctx).model_repo)).list()
    emit_many([_record(v) for v in versions], output, _models_table)
