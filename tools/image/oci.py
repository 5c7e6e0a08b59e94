"""Layers and OCI image archives from folders, with the standard library only.

`write_layer` packs folders into one gzip'd layer tar and measures both digests a layer has (of the gzip
blob, and `diff_id`, of the tar inside it); `write_archive` writes an OCI image layout as one tar, which
`ctr images import` (and `docker load`, through its manifest.json) loads under the image's full name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Layer", "LayerSource", "write_archive", "write_layer"]

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
#: the annotation containerd names an imported image by (the OCI ref.name annotation holds only the tag)
CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Layer:
    """A gzip'd layer tar on disk."""

    path: Path
    #: sha256:… of the gzip blob (the manifest's digest)
    digest: str
    #: sha256:… of the tar inside (the config's rootfs.diff_ids)
    diff_id: str
    size: int

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({**asdict(self), "path": str(self.path)}))

    @classmethod
    def load(cls, path: Path) -> Layer:
        data = json.loads(path.read_text())
        return cls(path=Path(data["path"]), digest=data["digest"], diff_id=data["diff_id"], size=data["size"])


@dataclass(frozen=True)
class LayerSource:
    """A folder packed at `arcname` in the layer (its parent folders are written as root-owned 0755)."""

    path: Path
    #: where the folder lands in the image, without the leading slash ("opt/framequeue")
    arcname: str
    #: skip these paths, relative to `path` ("dev", "proc"), keeping the folders themselves
    empty: frozenset[str] = frozenset()
    #: entries owned by root and readable by all (a model folder from the host), symlinks followed
    as_root: bool = False


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through it to `sink`."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink, self.sha, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += len(view)
        self.sink.write(view)
        return len(view)


def write_layer(sources: Sequence[LayerSource], out: Path, *, compresslevel: int = 6) -> Layer:
    """Pack `sources` into the gzip'd tar `out` (numeric owners, hard links kept, sockets skipped)."""
    with out.open("wb") as raw:
        blob = _Hashing(raw)
        with gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
            tar_stream = _Hashing(gz)  # type: ignore[arg-type]
            with tarfile.open(fileobj=tar_stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                written: set[str] = set()
                for source in sources:
                    _add_parents(tar, source.arcname, written)
                    _add_tree(tar, source, written)
    return Layer(path=out, digest=f"sha256:{blob.sha.hexdigest()}", diff_id=f"sha256:{tar_stream.sha.hexdigest()}",
                 size=blob.size)


def _add_parents(tar: tarfile.TarFile, arcname: str, written: set[str]) -> None:
    parts = [p for p in arcname.split("/") if p][:-1]
    for i in range(len(parts)):
        name = "/".join(parts[: i + 1])
        if name not in written:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
            written.add(name)


def _add_tree(tar: tarfile.TarFile, source: LayerSource, written: set[str]) -> None:
    top = source.arcname.strip("/")
    for path, arcname in _walk(source.path, top, source.empty, follow=source.as_root):
        if arcname in written:
            continue
        real = path.resolve() if source.as_root else path
        if stat.S_ISSOCK(real.lstat().st_mode):
            continue
        info = tar.gettarinfo(str(real), arcname)
        if source.as_root:
            info.uid = info.gid = 0
            info.mode |= 0o555 if info.isdir() else 0o444
        info.uname = info.gname = ""
        if info.isreg():
            with real.open("rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
        written.add(arcname)


def _walk(root: Path, top: str, empty: frozenset[str], *, follow: bool) -> Iterable[tuple[Path, str]]:
    """(path, arcname) of `root` and everything under it, parents first, names sorted; symlinked folders are
    descended only when `follow`."""
    if top:
        yield root, top
    stack = [(root, top, "")] if root.is_dir() else []
    while stack:
        folder, arc, rel = stack.pop()
        if rel in empty:
            continue
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it)
        children = []
        for name in names:
            path = folder / name
            child_arc, child_rel = f"{arc}/{name}" if arc else name, f"{rel}/{name}" if rel else name
            yield path, child_arc
            if path.is_dir() and (follow or not path.is_symlink()):
                children.append((path, child_arc, child_rel))
        stack.extend(reversed(children))


def write_archive(out: Path, *, name: str, layers: Sequence[Layer], config: dict[str, Any]) -> Path:
    """Write the OCI image layout of one image (`layers` bottom first, `config` the image config without its
    rootfs) as the tar `out`, named `name` (fully qualified: docker.io/local/framequeue:TAG)."""
    config = {**config, "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}}
    config_bytes = json.dumps(config, indent=None, separators=(",", ":")).encode()
    config_desc = _descriptor(CONFIG_MEDIA_TYPE, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config_desc,
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer.digest, "size": layer.size} for layer in layers],
    }
    manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            **_descriptor(MANIFEST_MEDIA_TYPE, manifest_bytes),
            "platform": {"architecture": config["architecture"], "os": config["os"]},
            "annotations": {CONTAINERD_NAME: name, OCI_REF_NAME: tag},
        }],
    }
    docker_manifest = [{
        "Config": _blob_name(config_desc["digest"]),
        "RepoTags": [name],
        "Layers": [_blob_name(layer.digest) for layer in layers],
    }]
    tmp = out.with_name(out.name + ".partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add_bytes(tar, "blobs", None)
        _add_bytes(tar, "blobs/sha256", None)
        _add_bytes(tar, _blob_name(config_desc["digest"]), config_bytes)
        for layer in layers:
            info = tarfile.TarInfo(_blob_name(layer.digest))
            info.size, info.mode = layer.size, 0o644
            with layer.path.open("rb") as f:
                tar.addfile(info, f)
        _add_bytes(tar, _blob_name(_digest(manifest_bytes)), manifest_bytes)
        _add_bytes(tar, "index.json", json.dumps(index, indent=2).encode())
        _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())
    tmp.replace(out)
    return out


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))
