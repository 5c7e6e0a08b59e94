"""Build framequeue's container image without a Docker engine or a registry, the image the Dockerfile makes:

    python -m tools.image.build --tag docker.io/local/framequeue:TAG --output FILE.tar [--models DIR] [--verify]

`debootstrap --variant=minbase` lays out Debian (tools.image.recipe.SUITE) from the archive the host's apt
uses, `python3 -m venv` and pip (reaching PyPI as the host's pip does: its index settings, proxy and CA
bundle) install the dependencies of the working tree's wheel, then the image is written as an OCI archive
(tools.image.oci) for `ctr -n k8s.io images import FILE.tar`. Needs root (debootstrap, chroot).

Layers: the Debian root with the dependencies (cached under ~/.cache/framequeue/image/, keyed by the
dependencies, the constraints, the Python and the suite), the models when --models names a folder, and
framequeue's own files. A rebuild after a source change installs only the new wheel and packs its layer.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import fnmatch
import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

from tools.image import oci, recipe

__all__ = ["ImageBuildError", "build_image", "main"]

#: the repository the wheel is built from
REPO = Path(__file__).resolve().parents[2]
CACHE = Path("~/.cache/framequeue/image").expanduser()
#: a Python version -> the Debian suite whose python3 it is
SUITES = {recipe.PYTHON: recipe.SUITE}
#: bump when the base recipe below changes, so cached bases are rebuilt
BASE_FORMAT = 1
#: cached bases kept (the newest), so two dependency sets can alternate without rebuilding
BASES_KEPT = 2
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: paths of the Debian root whose contents the base layer leaves out (the runtime mounts them)
EMPTY_IN_IMAGE = frozenset({"dev", "proc", "sys", "tmp", "run"})
#: removed from the base: documentation, package lists and caches
STRIPPED = ("usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "var/lib/apt/lists/*",
            "var/cache/apt/*", "var/cache/debconf/*-old", "var/log/*", "root/.cache")
_CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageBuildError(RuntimeError):
    """The image could not be built; the message says which step failed and why."""


def build_image(tag: str, output: Path, models: Path | None = None, *, python: str = recipe.PYTHON,
                cache: Path = CACHE, log: Callable[[str], None] | None = None) -> Path:
    """Build the CPU image of the working tree as the OCI archive `output`, named `tag` (fully qualified:
    docker.io/local/framequeue:TAG), with `models` baked at recipe.MODEL_REPO when given. Returns `output`."""
    say = log or _stderr
    _check_name(tag)
    if python not in SUITES:
        raise ImageBuildError(f"no Debian suite here has Python {python} (supported: {', '.join(SUITES)})")
    if os.geteuid() != 0:
        raise ImageBuildError("the offline image build needs root (debootstrap and chroot)")
    if models is not None and not models.is_dir():
        raise ImageBuildError(f"--models {models} is not a folder")
    output = output.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fq-image-") as scratch_name, _locked(cache / "lock"):
        scratch = Path(scratch_name)
        with _step(say, "wheel"):
            wheel = _build_wheel(scratch / "dist", _wheel_env(cache))
        constraints = _constraints()
        key = _base_key(python, constraints)
        base_dir = cache / f"base-{key[:20]}"
        if (base_dir / "layer.json").exists():
            say(f"image: base {base_dir.name} cached")
            os.utime(base_dir)
        else:
            with _step(say, f"base {base_dir.name} (debootstrap {SUITES[python]} + dependencies)"):
                _build_base(base_dir, SUITES[python], wheel, constraints, say)
            _prune(cache, keep=base_dir)
        base = oci.Layer.load(base_dir / "layer.json")
        root = base_dir / "root"
        layers = [base]
        if models is not None:
            with _step(say, f"models layer from {models}"):
                layers.append(oci.write_layer([oci.LayerSource(models.resolve(), recipe.MODEL_REPO.strip("/"),
                                                               as_root=True)], scratch / "models.tar.gz"))
        with _step(say, "app layer"):
            layers.append(_app_layer(root, wheel, python, scratch / "app.tar.gz"))
        with _step(say, f"archive {output}"):
            oci.write_archive(output, name=tag, layers=layers, config=_config(wheel, python, models))
    say(f"image: {tag} in {time.monotonic() - started:.1f} s -> {output}")
    return output


def _check_name(tag: str) -> None:
    registry, _, rest = tag.partition("/")
    if not rest or not ("." in registry or ":" in registry or registry == "localhost") or ":" not in rest:
        raise ImageBuildError(f"image name {tag!r} is not fully qualified (docker.io/local/framequeue:TAG): "
                              "the kubelet would try to pull a short name")


# --- the wheel and the dependency set ---------------------------------------------------------------------


def _wheel_env(cache: Path) -> Path:
    """The Python of a venv holding pyproject's build requirements, made once: an isolated build would
    install them afresh for every wheel."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    key = hashlib.sha256(json.dumps([sys.version, *requires]).encode()).hexdigest()[:16]
    env = cache / f"wheel-env-{key}"
    python = env / "bin" / "python"
    if not (env / ".ready").exists():
        shutil.rmtree(env, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(env)], "venv for the wheel build")
        _run([str(python), "-m", "pip", "install", "--quiet", "wheel", *requires], "the build requirements")
        (env / ".ready").touch()
    return python


def _build_wheel(dist: Path, python: Path) -> Path:
    """A wheel of the working tree, built from a copy of what the Dockerfile's context holds (so files a
    previous in-tree build left behind never get into it)."""
    source = dist.parent / "source"
    ignored = _dockerignore()
    shutil.copytree(REPO, source, ignore=lambda folder, names: [
        n for n in names if _ignored(Path(folder, n).relative_to(REPO).as_posix(), ignored)])
    _run([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dist),
          str(source)], "building the framequeue wheel")
    (wheel,) = dist.glob("framequeue-*.whl")
    return wheel


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, p[3:]) if p.startswith("**/") else fnmatch.fnmatch(rel, p) for p in patterns)


def _constraints() -> str:
    """The exact versions to install: the repository's constraints.txt, or else what this venv resolved."""
    path = REPO / "constraints.txt"
    if path.exists():
        return path.read_text()
    frozen = _run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], "pip freeze").stdout
    return "".join(line + "\n" for line in frozen.splitlines()
                   if line and not line.startswith(("#", "-e")) and " @ " not in line)


def _base_key(python: str, constraints: str) -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    recipe_of_base = {
        "format": BASE_FORMAT,
        "suite": SUITES[python],
        "python": python,
        "packages": [*recipe.RUNTIME_PACKAGES, *recipe.BUILD_PACKAGES],
        "extras": recipe.EXTRAS,
        "dependencies": project.get("dependencies", []),
        "optional": project.get("optional-dependencies", {}),
        "constraints": constraints,
        "user": [recipe.USER, recipe.UID, recipe.GID, recipe.HOME, recipe.VENV],
    }
    return hashlib.sha256(json.dumps(recipe_of_base, sort_keys=True).encode()).hexdigest()


# --- the base: Debian, Python and the dependencies --------------------------------------------------------


def _build_base(base_dir: Path, suite: str, wheel: Path, constraints: str, say: Callable[[str], None]) -> None:
    shutil.rmtree(base_dir, ignore_errors=True)
    building = base_dir.with_name(base_dir.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    root = building / "root"
    root.parent.mkdir(parents=True)
    _ensure_debootstrap()
    packages = ",".join([*recipe.RUNTIME_PACKAGES, *recipe.BUILD_PACKAGES])
    with _step(say, "debootstrap"):
        _run(["debootstrap", "--variant=minbase", f"--include={packages}", suite, str(root), _host_mirror()],
             "debootstrap")
    with _host_network(root):
        if _host_codename() == suite:
            with _step(say, "apt upgrade (security updates, as debian:*-slim has them)"):
                _apt_upgrade(root)
        with _step(say, "venv + dependencies"):
            build = root / "tmp" / "fq-build"
            build.mkdir(parents=True)
            shutil.copy2(wheel, build / wheel.name)
            (build / "constraints.txt").write_text(constraints)
            _chroot(root, ["python3", "-m", "venv", recipe.VENV], "python3 -m venv")
            pip = [f"{recipe.VENV}/bin/python", "-m", "pip"]
            _chroot(root, [*pip, "install", "--quiet", "--constraint", "/tmp/fq-build/constraints.txt",
                           f"/tmp/fq-build/{wheel.name}[{recipe.EXTRAS}]"], "pip install (dependencies)")
            _chroot(root, [*pip, "uninstall", "--quiet", "--yes", "framequeue"], "pip uninstall framequeue")
    _add_user(root)
    (root / recipe.MODEL_REPO.strip("/")).mkdir(mode=0o755, exist_ok=True)
    _strip(root)
    with _step(say, "base layer"):
        layer = oci.write_layer([oci.LayerSource(root, "", empty=EMPTY_IN_IMAGE)], building / "layer.tar.gz")
    building.rename(base_dir)
    oci.Layer(base_dir / "layer.tar.gz", layer.digest, layer.diff_id, layer.size).save(base_dir / "layer.json")


def _ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], "apt-get update", env=env)
    _run(["apt-get", "install", "-y", "-qq", "debootstrap"], "apt-get install debootstrap", env=env)


def _host_sources() -> list[Path]:
    apt = Path("/etc/apt")
    return [p for p in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*"))]
            if p.is_file() and p.suffix in (".list", ".sources")]


def _host_mirror() -> str:
    """The Debian archive the host's apt uses (a mirror or a proxying URL), else deb.debian.org."""
    for path in _host_sources():
        for line in path.read_text().splitlines():
            words = line.split()
            urls = words[1:] if words[:1] == ["URIs:"] else words[1:2] if words[:1] == ["deb"] else []
            for url in urls:
                if url.startswith(("http://", "https://")) and "security" not in url and "debian" in url:
                    return url
    return DEFAULT_MIRROR


def _host_codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return ""


@contextlib.contextmanager
def _host_network(root: Path) -> Iterator[None]:
    """While the build runs, the root resolves names and trusts CAs as the host does; the image keeps its
    own (empty resolv.conf, which the runtime mounts; Debian's CA bundle)."""
    resolv = root / "etc" / "resolv.conf"
    if Path("/etc/resolv.conf").exists():
        resolv.unlink(missing_ok=True)
        shutil.copyfile("/etc/resolv.conf", resolv)
    ca = Path(os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        shutil.copyfile(ca, root / "tmp" / "host-ca.pem")
    try:
        yield
    finally:
        resolv.unlink(missing_ok=True)
        resolv.write_text("")
        (root / "tmp" / "host-ca.pem").unlink(missing_ok=True)


def _apt_upgrade(root: Path) -> None:
    """Upgrade the root from the host's apt sources (the suite's updates and security archives) through the
    host's apt configuration (proxies), then give the image Debian's standard sources."""
    image_sources = {p: p.read_bytes() for p in (root / "etc/apt").rglob("*") if p.is_file()
                     and (p.suffix in (".list", ".sources") or p.parent.name == "apt.conf.d")}
    for path in _host_sources():
        shutil.copyfile(path, root / path.relative_to("/"))
    for conf in Path("/etc/apt/apt.conf.d").glob("*"):
        if conf.is_file() and "proxy" in conf.read_text(errors="replace").lower():
            shutil.copyfile(conf, root / conf.relative_to("/"))
    try:
        _chroot(root, ["apt-get", "update", "-qq"], "apt-get update")
        _chroot(root, ["apt-get", "upgrade", "-y", "-qq"], "apt-get upgrade")
        _chroot(root, ["apt-get", "clean"], "apt-get clean")
    finally:
        for path in [*(root / "etc/apt/sources.list.d").glob("*"), *(root / "etc/apt/apt.conf.d").glob("*")]:
            if path not in image_sources:
                path.unlink()
        for path, data in image_sources.items():
            path.write_bytes(data)


def _add_user(root: Path) -> None:
    """The non-root user the image runs as (the Dockerfile's groupadd/useradd, written directly)."""
    with (root / "etc/group").open("a") as f:
        f.write(f"{recipe.USER}:x:{recipe.GID}:\n")
    with (root / "etc/passwd").open("a") as f:
        f.write(f"{recipe.USER}:x:{recipe.UID}:{recipe.GID}::{recipe.HOME}:/usr/sbin/nologin\n")
    with (root / "etc/shadow").open("a") as f:
        f.write(f"{recipe.USER}:!:{(dt.date.today() - dt.date(1970, 1, 1)).days}:0:99999:7:::\n")
    home = root / recipe.HOME.strip("/")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    os.chown(home, recipe.UID, recipe.GID)


def _strip(root: Path) -> None:
    for pattern in STRIPPED:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for path in (root / "tmp").iterdir():
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _prune(cache: Path, keep: Path) -> None:
    bases = sorted((p for p in cache.glob("base-*") if p.is_dir() and p != keep), key=lambda p: p.stat().st_mtime)
    for old in bases[: max(0, len(bases) - (BASES_KEPT - 1))]:
        shutil.rmtree(old, ignore_errors=True)


# --- the app layer and the image config -------------------------------------------------------------------


def _app_layer(root: Path, wheel: Path, python: str, out: Path) -> oci.Layer:
    """Install the wheel into the cached root, pack exactly the files it installed, and uninstall it again."""
    pip = [f"{recipe.VENV}/bin/python", "-m", "pip"]
    stage = root / "tmp" / "fq-app"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    shutil.copy2(wheel, stage / wheel.name)
    _chroot(root, [*pip, "uninstall", "--quiet", "--yes", "framequeue"], "pip uninstall framequeue")
    try:
        _chroot(root, [*pip, "install", "--quiet", "--no-deps", "--no-index", f"/tmp/fq-app/{wheel.name}"],
                "pip install framequeue")
        site = root / recipe.VENV.strip("/") / "lib" / f"python{python}" / "site-packages"
        (dist_info,) = site.glob("framequeue-*.dist-info")
        tops: set[Path] = set()
        for line in (dist_info / "RECORD").read_text().splitlines():
            path = Path(os.path.normpath(site / line.split(",")[0]))
            tops.add(site / path.relative_to(site).parts[0] if path.is_relative_to(site) else path)
        sources = [oci.LayerSource(path, path.relative_to(root).as_posix()) for path in sorted(tops)]
        return oci.write_layer(sources, out)
    finally:
        _chroot(root, [*pip, "uninstall", "--quiet", "--yes", "framequeue"], "pip uninstall framequeue")
        shutil.rmtree(stage, ignore_errors=True)


def _config(wheel: Path, python: str, models: Path | None) -> dict[str, object]:
    version = wheel.name.split("-")[1]
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    history = [f"tools.image.build: debootstrap {SUITES[python]}, python{python} venv, framequeue[{recipe.EXTRAS}]"
               " dependencies"]
    if models is not None:
        history.append(f"tools.image.build: models at {recipe.MODEL_REPO}")
    history.append(f"tools.image.build: {wheel.name}")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "created": now,
        "architecture": arch,
        "os": "linux",
        "config": {
            "User": recipe.USER_SPEC,
            "Env": [f"{k}={v}" for k, v in recipe.ENV.items()],
            "Entrypoint": list(recipe.ENTRYPOINT),
            "Cmd": list(recipe.CMD),
            "WorkingDir": recipe.HOME,
            "Labels": {"org.opencontainers.image.title": "framequeue", "org.opencontainers.image.version": version},
        },
        "history": [{"created": now, "created_by": line} for line in history],
    }


# --- processes --------------------------------------------------------------------------------------------


@functools.cache
def _chroot_env() -> dict[str, str]:
    """The environment commands in the root run with: the host's proxies and pip index settings (local
    file:// indexes left out: they are not in the root), the host's CA bundle, no pip cache."""
    env = {"PATH": _CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
           "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CERT": "/tmp/host-ca.pem",
           "SSL_CERT_FILE": "/tmp/host-ca.pem", "REQUESTS_CA_BUNDLE": "/tmp/host-ca.pem"}
    for name, value in os.environ.items():
        if name.lower() in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
            env[name] = value
    settings = _run([sys.executable, "-m", "pip", "config", "list"], "pip config list").stdout
    for line in settings.splitlines():
        key, _, value = line.partition("=")
        option = key.rsplit(".", 1)[-1]
        if option in ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout", "retries"):
            kept = [v for v in value.strip("'\"").split() if not v.startswith(("file:", "/"))]
            if kept:
                env["PIP_" + option.upper().replace("-", "_")] = " ".join(kept)
    return env


def _chroot(root: Path, argv: list[str], what: str) -> None:
    _run(["chroot", str(root), *argv], what, env=dict(_chroot_env()))


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr)[-4000:]
        raise ImageBuildError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{tail}")
    return result


@contextlib.contextmanager
def _step(say: Callable[[str], None], what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    say(f"image: {what}: {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per cache: the base root is shared and the app step installs into it."""
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.image.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", required=True, help="fully qualified image name, docker.io/local/framequeue:TAG")
    parser.add_argument("--output", required=True, type=Path, help="the OCI archive to write (FILE.tar)")
    parser.add_argument("--models", type=Path, default=None, help=f"a model repository to bake at {recipe.MODEL_REPO}")
    parser.add_argument("--python", default=recipe.PYTHON, choices=sorted(SUITES))
    parser.add_argument("--verify", action="store_true",
                        help="import the archive into a private containerd and run `framequeue --version` in it")
    args = parser.parse_args(argv)
    try:
        out = build_image(args.tag, args.output, args.models, python=args.python)
        if args.verify:
            from tools.image.containerd import verify_image

            _stderr(verify_image(out, args.tag))
    except ImageBuildError as exc:
        _stderr(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
