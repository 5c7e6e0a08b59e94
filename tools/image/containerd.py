"""A private containerd (its own root, state and socket under a folder) to prove an image archive imports and
runs as the kubelet would see it: `ctr -n k8s.io images import`, then `ctr run` of its entrypoint."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Containerd", "ContainerdError", "private_containerd", "verify_image"]

#: the namespace the kubelet's CRI plugin reads images from
NAMESPACE = "k8s.io"
START_TIMEOUT_S = 30.0


class ContainerdError(RuntimeError):
    """containerd or ctr failed; the message carries ctr's output or containerd's log."""


@dataclass(frozen=True)
class Containerd:
    address: Path
    snapshotter: str

    def ctr(self, *args: str, timeout_s: float = 300.0) -> str:
        argv = ["ctr", "--address", str(self.address), "--namespace", NAMESPACE, *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
        if result.returncode != 0:
            raise ContainerdError(f"{' '.join(argv)} failed (exit {result.returncode}):\n"
                                  f"{(result.stdout + result.stderr)[-4000:]}")
        return result.stdout

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", "--snapshotter", self.snapshotter, str(archive))

    def images(self) -> list[str]:
        return self.ctr("images", "ls", "--quiet").split()

    def run(self, image: str, *args: str) -> str:
        """Run `image` once, with `args` as its whole command line when given (ctr replaces the entrypoint
        too), and return its output."""
        return self.ctr("run", "--rm", "--snapshotter", self.snapshotter, image, f"fq-{uuid.uuid4().hex[:8]}", *args)


@contextlib.contextmanager
def private_containerd(workdir: Path, snapshotter: str = "overlayfs") -> Iterator[Containerd]:
    """Start containerd under `workdir` (no CRI plugin: nothing but ctr talks to it) and stop it on exit."""
    for tool in ("containerd", "ctr"):
        if shutil.which(tool) is None:
            raise ContainerdError(f"{tool} is not installed (apt-get install containerd)")
    address = workdir / "containerd.sock"
    config = workdir / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{workdir / "root"}"\n'
        f'state = "{workdir / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{address}"\n'
        f'[ttrpc]\n  address = "{workdir / "ttrpc.sock"}"\n'
        f'[debug]\n  address = "{workdir / "debug.sock"}"\n'
        f'[metrics]\n  address = ""\n'
    )
    log_path = workdir / "containerd.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        daemon = Containerd(address, snapshotter)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise ContainerdError(f"containerd exited {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                daemon.ctr("version", timeout_s=5)
                break
            except (ContainerdError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise ContainerdError(f"containerd did not answer in {START_TIMEOUT_S:.0f} s:\n"
                                          f"{log_path.read_text()[-4000:]}") from None
                time.sleep(0.2)
        yield daemon
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def verify_image(archive: Path, name: str) -> str:
    """Import `archive` into a private containerd, check it is listed as `name`, run its entrypoint with
    `--version` and return what it printed."""
    with tempfile.TemporaryDirectory(prefix="fq-containerd-") as folder, \
            private_containerd(Path(folder)) as daemon:
        daemon.import_image(archive)
        if name not in daemon.images():
            raise ContainerdError(f"{name} not among the imported images: {daemon.images()}")
        return daemon.run(name, "framequeue", "--version")
