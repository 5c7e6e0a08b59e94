"""The offline image build (tools.image.build) end to end: a debootstrap'd Debian with framequeue and its
dependencies from PyPI, written as an OCI archive, imported by a real containerd (a private one, under a temp
folder) under its full name, and run: the entrypoint and its default command, as user 10001, with the backends'
libraries importable and a baked model repository at FQ_MODEL_REPO. The first build makes the cached base
(minutes: debootstrap and the dependencies); a rebuild reuses it and installs only framequeue."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.image import recipe
from tools.image.build import build_image
from tools.image.containerd import Containerd, private_containerd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def require_builder() -> None:
    missing = [tool for tool in ("debootstrap", "containerd", "ctr", "runc", "chroot") if shutil.which(tool) is None]
    reason = "needs root" if os.geteuid() != 0 else f"missing {', '.join(missing)}" if missing else ""
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the offline image build {reason}; CI must provide it")
        pytest.skip(f"the offline image build {reason}")


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    require_builder()
    with private_containerd(tmp_path_factory.mktemp("containerd")) as daemon:
        yield daemon


def test_the_image_builds_offline_imports_into_containerd_and_runs_framequeue(
        tmp_path: Path, containerd: Containerd) -> None:
    name = "docker.io/local/framequeue:acceptance"
    models = tmp_path / "models"
    (models / "tiny").mkdir(parents=True)
    (models / "tiny" / "model.yaml").write_text("name: tiny\n")
    archive = build_image(name, tmp_path / "image.tar", models=models)

    containerd.import_image(archive)
    assert name in containerd.images()
    assert "Usage: framequeue" in containerd.run(name)  # ENTRYPOINT framequeue, CMD --help
    assert "0.1.0" in containerd.run(name, "framequeue", "--version")
    assert containerd.run(name, "id", "-u", "-n").split() == [recipe.USER]
    assert containerd.run(name, "pwd").strip() == recipe.HOME
    env = dict(line.split("=", 1) for line in containerd.run(name, "env").splitlines() if "=" in line)
    assert {k: env.get(k) for k in recipe.ENV} == recipe.ENV
    assert containerd.run(name, "cat", f"{recipe.MODEL_REPO}/tiny/model.yaml") == "name: tiny\n"
    imports = "import framequeue.cli, onnxruntime, av, cv2, psycopg, redis, aio_pika, nats, obstore, grpc; print('ok')"
    assert containerd.run(name, "python", "-c", imports).strip() == "ok"


def test_a_rebuild_reuses_the_cached_base_and_only_repacks_framequeue(tmp_path: Path, containerd: Containerd) -> None:
    name = "docker.io/local/framequeue:rebuild"
    build_image(name, tmp_path / "first.tar")  # warm after the test above, or builds the base
    started = time.monotonic()
    messages: list[str] = []
    archive = build_image(name, tmp_path / "second.tar", log=messages.append)
    took_s = time.monotonic() - started
    print(f"warm rebuild: {took_s:.1f} s", *messages, sep="\n")
    assert any("cached" in m for m in messages) and not any("debootstrap" in m for m in messages)
    containerd.import_image(archive)
    assert "0.1.0" in containerd.run(name, "framequeue", "--version")
