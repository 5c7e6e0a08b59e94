"""Build kube-apiserver, kube-controller-manager, kube-scheduler and kubelet v1.20.2 from Debian bookworm's
`kubernetes` source package with Debian's golang-1.19-go, and cache them.

    python -m tools.kube.build            build once (~12 min on 2 cores), print the bin folder
    python -m tools.kube.build --check    exit 0 when the cache is complete, 1 otherwise

Only Debian's archive is needed (no Go module proxy: the orig tarball carries vendor/). The vendored
modern-go/reflect2 1.0.1 crashes kube-apiserver under Go >= 1.18 the first time a custom resource is
created, so it is replaced with Debian's golang-github-modern-go-reflect2-dev (1.0.2) before building.
The cache is keyed by version and recipe: a second run returns at once.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

VERSION = "v1.20.2"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
GO_PACKAGES = ("golang-1.19-go", "golang-1.19-src", "golang-github-modern-go-reflect2-dev")
#: bump when the recipe changes, so a cache built by an older recipe is rebuilt
RECIPE = "1"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framequeue" / "kube"


def cache_dir() -> Path:
    return CACHE_ROOT / VERSION


def bin_dir() -> Path:
    return cache_dir() / "bin"


def _stamp() -> Path:
    return cache_dir() / "complete"


def _key() -> str:
    return hashlib.sha256(f"{VERSION}/{RECIPE}/{','.join(BINARIES)}".encode()).hexdigest()[:16]


def is_built() -> bool:
    stamp = _stamp()
    return (
        stamp.exists()
        and stamp.read_text().strip() == _key()
        and all((bin_dir() / name).is_file() for name in BINARIES)
    )


def _log(msg: str) -> None:
    print(f"[kube-build {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _run(cmd: list[str], **kwargs: object) -> None:
    _log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def _debian_archive() -> tuple[str, str]:
    """(URI, suite) of the machine's own Debian archive (not -security, not -updates)."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file() and path.suffix in ("", ".list", ".sources"):
            texts.append(path.read_text())
    for text in texts:
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and "security" not in uris.group(1):
                suite = next((s for s in suites.group(1).split() if "-" not in s), None)
                if suite and "debian" in uris.group(1):
                    return uris.group(1), suite
        for line in text.splitlines():
            m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s", line)
            if m and "security" not in m.group(1) and "-" not in m.group(2) and "debian" in m.group(1):
                return m.group(1), m.group(2)
    return "http://deb.debian.org/debian", "bookworm"


def _apt(work: Path) -> list[str]:
    """apt-get reading a private sources list (deb + deb-src) and private lists/cache under `work`."""
    apt = work / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "parts"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    uri, suite = _debian_archive()
    (apt / "sources.list").write_text(f"deb {uri} {suite} main\ndeb-src {uri} {suite} main\n")
    return [
        "apt-get",
        "-q",
        "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={apt / 'parts'}",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
        "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip


def build(work: Path) -> None:
    apt = _apt(work)
    dl = work / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    if not list(dl.glob("kubernetes_*.dsc")) or not all(list(dl.glob(f"{p}_*.deb")) for p in GO_PACKAGES):
        _run([*apt, "update"])
        _run([*apt, "source", "--download-only", "kubernetes"], cwd=dl)
        _run([*apt, "download", *GO_PACKAGES], cwd=dl)
    go_root = work / "go"
    if not (go_root / "usr/lib/go-1.19/bin/go").exists():
        for package in GO_PACKAGES:
            (deb,) = dl.glob(f"{package}_*.deb")
            _run(["dpkg", "-x", str(deb), str(go_root)])
    src = work / "src"
    if src.exists():
        shutil.rmtree(src)
    (orig,) = dl.glob("kubernetes_*.orig.tar.*")
    src.mkdir()
    _run(["tar", "-xf", str(orig), "-C", str(src), "--strip-components=1"])
    vendored = src / "vendor/github.com/modern-go/reflect2"
    fixed = go_root / "usr/share/gocode/src/github.com/modern-go/reflect2"
    shutil.rmtree(vendored)
    shutil.copytree(fixed, vendored, symlinks=False)
    _log(f"replaced {vendored} with Debian's reflect2 1.0.2")
    goroot = go_root / "usr/lib/go-1.19"
    env = {
        **os.environ,
        "GOROOT": str(goroot),
        "PATH": f"{goroot / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "GOCACHE": str(work / "gocache"),
        "GOPATH": str(work / "gopath"),
        "GOFLAGS": "-mod=vendor",
        "GO111MODULE": "on",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
        "KUBE_GIT_VERSION": f"{VERSION}",
        "KUBE_GIT_TREE_STATE": "clean",
        "KUBE_GIT_COMMIT": "0" * 40,
        "KUBE_GIT_MAJOR": "1",
        "KUBE_GIT_MINOR": "20",
    }
    what = " ".join(f"cmd/{name}" for name in BINARIES)
    _run(["make", f"WHAT={what}"], cwd=src, env=env)
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name in BINARIES:
        (built,) = [p for p in (src / "_output").rglob(name) if p.is_file()][:1]
        shutil.copy2(built, out / name)
        (out / name).chmod(0o755)
    _stamp().write_text(_key() + "\n")


def ensure_built() -> Path:
    """The folder holding the four binaries; builds them first when the cache is incomplete."""
    if is_built():
        return bin_dir()
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build instead of racing it
        if not is_built():
            started = time.monotonic()
            work = CACHE_ROOT / "work"
            build(work)
            shutil.rmtree(work / "src", ignore_errors=True)
            shutil.rmtree(work / "gocache", ignore_errors=True)
            _log(f"built in {time.monotonic() - started:.0f} s into {bin_dir()}")
    return bin_dir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 0 when the cache is complete, 1 otherwise")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if is_built() else 1
    print(ensure_built())
    return 0


if __name__ == "__main__":
    sys.exit(main())
