"""A stopgap offline image builder for tests/cluster until tools/image lands: a debootstrap'd Debian
bookworm base (cached), framequeue pip-installed into /opt/framequeue from this checkout, written as an OCI
archive that `ctr -n k8s.io images import` loads; plus the pause image, a static C program.

    python -m tools.kube.image --tag docker.io/local/framequeue:TAG --output FILE.tar
    python -m tools.kube.image --pause --tag docker.io/local/pause:1 --output FILE.tar
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framequeue" / "kube" / "image"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
#: bump when the base recipe changes
BASE_KEY = f"{SUITE}-{'-'.join(BASE_PACKAGES)}-1"
EXTRAS = "postgres,redis,s3,serve"
#: the container's user: not root
UID = 10001
PAUSE_C = "#include <signal.h>\n#include <unistd.h>\nstatic void on(int s){(void)s;_exit(0);}\n" \
    "int main(void){signal(SIGTERM,on);signal(SIGINT,on);for(;;)pause();}\n"


def _log(msg: str) -> None:
    print(f"[kube-image {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _run(cmd: list[str], **kwargs: object) -> None:
    _log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def _mirror() -> str:
    from tools.kube.build import _debian_archive

    return _debian_archive()[0]


def base_rootfs() -> Path:
    """The cached debootstrap'd base (minbase + python3, venv, CA certificates); built once (~3 min)."""
    base = CACHE / "base" / BASE_KEY
    if (base / ".complete").exists():
        return base / "rootfs"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE,
          str(base / "rootfs"), _mirror()])  # fmt: skip
    (base / ".complete").write_text("ok\n")
    return base / "rootfs"


def _sha(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest(), path.stat().st_size


def write_oci(layer: Path, tag: str, config: dict[str, object], output: Path) -> None:
    """One uncompressed layer, its config, manifest and index, as an OCI image-layout tar at `output`."""
    digest, size = _sha(layer)
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [digest]},
    }
    blobs: dict[str, bytes] = {}
    cfg = json.dumps(image_config).encode()
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    blobs[cfg_digest] = cfg
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}],
    }).encode()
    man_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    blobs[man_digest] = manifest
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_digest, "size": len(manifest),
            "annotations": {"io.containerd.image.name": tag,
                            "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[1]},
        }],
    }).encode()  # fmt: skip
    with tarfile.open(output, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add("index.json", index)
        for blob_digest, data in blobs.items():
            add(f"blobs/sha256/{blob_digest.split(':')[1]}", data)
        tar.add(layer, f"blobs/sha256/{digest.split(':')[1]}")


def build_pause(tag: str, output: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, binary, layer = Path(tmp, "pause.c"), Path(tmp, "pause"), Path(tmp, "layer.tar")
        src.write_text(PAUSE_C)
        _run(["gcc", "-static", "-Os", "-o", str(binary), str(src)])
        with tarfile.open(layer, "w") as tar:
            tar.add(binary, "pause")
        write_oci(layer, tag, {"Entrypoint": ["/pause"], "User": "65535"}, output)


def build_framequeue(tag: str, output: Path) -> None:
    base = base_rootfs()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rootfs = Path(tmp, "rootfs")
        _run(["cp", "-a", str(base), str(rootfs)])
        shutil.copy2("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
        shutil.copy2("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        src = rootfs / "tmp/src"
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.split()  # fmt: skip
        for name in files:
            if (ROOT / name).is_file():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, src / name)
        pip_cache = Path.home() / ".cache" / "pip"
        pip_cache.mkdir(parents=True, exist_ok=True)
        mount = rootfs / "root/.cache/pip"
        mount.mkdir(parents=True, exist_ok=True)
        _run(["mount", "--bind", str(pip_cache), str(mount)])
        try:
            _run(["chroot", str(rootfs), "python3", "-m", "venv", "/opt/framequeue"])
            _run(["chroot", str(rootfs), "/opt/framequeue/bin/pip", "install", "-q", f"/tmp/src[{EXTRAS}]"])
        finally:
            _run(["umount", str(mount)])
        shutil.rmtree(src)
        shutil.rmtree(rootfs / "root/.cache", ignore_errors=True)
        (rootfs / "etc/resolv.conf").write_text("")
        with open(rootfs / "etc/passwd", "a") as fh:
            fh.write(f"framequeue:x:{UID}:{UID}::/home/framequeue:/usr/sbin/nologin\n")
        (rootfs / "home/framequeue").mkdir(parents=True, exist_ok=True)
        os.chown(rootfs / "home/framequeue", UID, UID)
        layer = Path(tmp, "layer.tar")
        _run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(layer), "."])
        config: dict[str, object] = {
            "Entrypoint": ["/opt/framequeue/bin/framequeue"],
            "User": f"{UID}:{UID}",
            "WorkingDir": "/home/framequeue",
            "Env": ["PATH=/opt/framequeue/bin:/usr/local/bin:/usr/bin:/bin", "HOME=/home/framequeue",
                    "PYTHONUNBUFFERED=1"],
        }  # fmt: skip
        write_oci(layer, tag, config, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", help="fully qualified name, e.g. docker.io/local/framequeue:dev")
    parser.add_argument("--output", type=Path, help="the OCI archive to write")
    parser.add_argument("--pause", action="store_true", help="build the pause image instead")
    parser.add_argument("--base-only", action="store_true", help="only build the cached Debian base")
    args = parser.parse_args(argv)
    if args.base_only:
        print(base_rootfs())
        return 0
    if not args.tag or not args.output:
        parser.error("--tag and --output are required")
    CACHE.mkdir(parents=True, exist_ok=True)
    (build_pause if args.pause else build_framequeue)(args.tag, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
