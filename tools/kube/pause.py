"""The pod sandbox ("pause") image for tools.kube.cluster: a statically linked C program that waits for a
signal, written as an OCI archive with tools.image.oci (no registry holds one that this machine can reach).

    python -m tools.kube.pause --output FILE.tar     (docker.io/local/pause:1)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.image import oci

NAME = "docker.io/local/pause:1"
SOURCE = """#include <signal.h>
#include <unistd.h>
static void on(int s) { (void)s; _exit(0); }
int main(void) { signal(SIGTERM, on); signal(SIGINT, on); for (;;) pause(); }
"""


def build_pause(output: Path, name: str = NAME) -> Path:
    """Compile the pause program (gcc -static) and write it as the one layer of image `name` at `output`."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "bin")
        folder.mkdir()
        Path(tmp, "pause.c").write_text(SOURCE)
        subprocess.run(["gcc", "-static", "-Os", "-o", str(folder / "pause"), str(Path(tmp, "pause.c"))],
                       check=True, capture_output=True)  # fmt: skip
        layer = oci.write_layer([oci.LayerSource(folder, "bin")], Path(tmp, "layer.tar.gz"))
        config = {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/pause"], "User": "65535"}}
        return oci.write_archive(output, name=name, layers=[layer], config=config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="the OCI archive to write")
    print(build_pause(parser.parse_args(argv).output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
