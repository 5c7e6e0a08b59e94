"""The package as a user gets it: an sdist of the working tree, a wheel built from that sdist (never from the
tree), its metadata, and the wheel installed into a fresh venv on each supported Python, where
`framequeue --version` answers, a model without ONNX Runtime says which extra to install, and, with
`[cpu,tflite]`, `framequeue demo` runs detect, road and driver to the end.

The venvs install from PyPI through pip's cache (cold: every wheel downloaded once per Python, ~3 min a
Python; warm: only unpacked, ~1 min a Python with the demo), with constraints.txt, the exact set CI runs,
unless a version there has no wheel for that Python. A Python that is not installed skips locally; 3.11 and
3.12 fail under CI=true.
"""

from __future__ import annotations

import email.parser
import email.policy
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, require_shared
from tests.mediagen import make_video

pytestmark = pytest.mark.slow

#: the Pythons the classifiers claim, each installed and run below
SUPPORTED = ("3.11", "3.12", "3.13")
#: the Pythons CI must have (3.13 is tested where present)
REQUIRED_IN_CI = ("3.11", "3.12")
#: the Python constraints.txt was frozen on: its installs never fall back to the resolver
CONSTRAINTS_PYTHON = "3.11"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
#: what the sdist holds besides the package: what building the wheel reads, and the licence
SDIST_TOP_LEVEL = {
    "LICENSE", "PKG-INFO", "README.md", "pyproject.toml", "setup.cfg", "framequeue", "framequeue.egg-info",
}
#: the only extra whose requirements are pinned: the benchmark's peers (BENCHMARKS.md states their versions)
PINNED_EXTRAS = {"bench"}
#: limits on one pip or build command: a cold cache downloads ~400 MB of wheels per Python
COMMAND_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path
    #: stdout and stderr of both builds, for the warnings check
    log: str


def run(args: Sequence[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout_s: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def checked(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{' '.join(proc.args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def project() -> dict[str, object]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        table: dict[str, object] = tomllib.load(f)["project"]
    return table


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """`python -m build --sdist` of the working tree, then `--wheel` of that sdist unpacked elsewhere."""
    out = tmp_path_factory.mktemp("dist")
    log = checked(run([sys.executable, "-m", "build", "--sdist", "--outdir", out, REPO_ROOT]))
    (sdist,) = out.glob("framequeue-*.tar.gz")
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter="data")
    (tree,) = unpacked.iterdir()
    log += checked(run([sys.executable, "-m", "build", "--wheel", "--outdir", out, tree]))
    (wheel,) = out.glob("framequeue-*.whl")
    return Dists(sdist, wheel, log)


def package_files() -> set[str]:
    """framequeue/... paths of every file of the package in the working tree (sources and data)."""
    root = REPO_ROOT / "framequeue"
    return {
        str(p.relative_to(REPO_ROOT))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in {".pyc", ".pyo"}
    }


def wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser(policy=email.policy.compat32).parsestr(zf.read(name).decode())


def test_build_is_warning_free(dists: Dists) -> None:
    """No deprecation or backend warning from setuptools (the table-form licence was one)."""
    warnings = [line for line in dists.log.splitlines() if re.search(r"\w+Warning\b|^\s*!!\s*$", line)]
    assert warnings == []


def test_sdist_holds_the_package_and_what_the_wheel_build_reads(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    assert {n.split("/", 1)[0] for n in names} == SDIST_TOP_LEVEL
    assert package_files() <= set(names)
    # no tests, benchmarks, chart or docs (they need the repository and ../shared), no caches
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert dists.sdist.stat().st_size < 2_000_000


def test_wheel_ships_the_package_data_and_the_licence(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as zf:
        names = set(zf.namelist())
    assert package_files() <= names  # py.typed and the dashboard's assets too, not only modules
    dist_info = f"framequeue-{project()['version']}.dist-info"
    assert "framequeue/py.typed" in names
    assert f"{dist_info}/licenses/LICENSE" in names
    assert {n.split("/", 1)[0] for n in names} == {"framequeue", dist_info}


def test_wheel_metadata_has_ranges_extras_and_pep639_licence(dists: Dists) -> None:
    meta = wheel_metadata(dists.wheel)
    assert meta["Metadata-Version"] in {"2.4", "2.5"}
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["License"] is None  # the deprecated free-text field is gone
    classifiers = meta.get_all("Classifier")
    assert {f"Programming Language :: Python :: {v}" for v in SUPPORTED} <= set(classifiers)
    assert "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression says it
    assert {u.split(",")[0] for u in meta.get_all("Project-URL")} >= {"Homepage", "Source", "Issues"}

    requires = meta.get_all("Requires-Dist")
    extra_of = {r: (m.group(1) if (m := re.search(r'extra == "([^"]+)"', r)) else None) for r in requires}
    pinned = [r for r, extra in extra_of.items() if "==" in r.split(";")[0] and extra not in PINNED_EXTRAS]
    assert pinned == []
    # ONNX Runtime: one wheel or the other, each only through its extra
    runtimes = {re.split(r"[<>=!~;\s]", r)[0]: extra for r, extra in extra_of.items() if r.startswith("onnxruntime")}
    assert runtimes == {"onnxruntime": "cpu", "onnxruntime-gpu": "gpu"}
    assert set(meta.get_all("Provides-Extra")) >= {"cpu", "gpu", "all", "dev", "tflite", "openvino", "serve"}
    (everything,) = [r for r, extra in extra_of.items() if extra == "all"]
    assert "gpu" not in everything and "cpu" in everything


def test_twine_accepts_both_dists(dists: Dists) -> None:
    checked(run([sys.executable, "-m", "twine", "check", "--strict", dists.sdist, dists.wheel]))


def test_constraints_pin_every_package_of_the_dev_venv() -> None:
    """constraints.txt is `pip freeze` of a `[dev]` install: every line exact, the project itself absent."""
    lines = [ln for ln in CONSTRAINTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+", ln) for ln in lines), lines
    names = {ln.split("==")[0].lower().replace("_", "-") for ln in lines}
    assert "framequeue" not in names
    assert {"onnxruntime", "numpy", "pytest", "build", "twine"} <= names
    assert "onnxruntime-gpu" not in names  # CI runs the [cpu] wheel


# -- a fresh venv per Python ----------------------------------------------------------------------------------


def find_python(version: str) -> Path | None:
    """An interpreter of `version` that can make venvs: on PATH, in /usr, or in pyenv's versions."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}"), f"/usr/bin/python{version}", f"/usr/local/bin/python{version}",
                  *sorted(glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / f"python{version}")),
                          reverse=True)]
    probe = "import ensurepip, sys, venv; print('%d.%d' % sys.version_info[:2])"
    for candidate in filter(None, candidates):
        # a pyenv shim of a version that is not selected exits 127: try the next candidate
        proc = run([candidate, "-c", probe], timeout_s=30) if Path(candidate).exists() else None
        if proc is not None and proc.returncode == 0 and proc.stdout.strip() == version:
            return Path(candidate)
    return None


def clean_env() -> dict[str, str]:
    """The user's environment without this venv, the repository on sys.path or framequeue settings."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYENV_VERSION"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("FQ_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    return env


class Venv:
    def __init__(self, python: Path, root: Path, version: str) -> None:
        self.root, self.version, self.env = root, version, clean_env()
        checked(run([python, "-m", "venv", root / "venv"], env=self.env))
        self.bin = root / "venv" / "bin"
        #: seconds each install took (reported on failure, and printed with -s)
        self.timings: dict[str, float] = {}

    def pip_install(self, what: str) -> str:
        """`pip install WHAT` with constraints.txt; off the constraints Python, the resolver alone when a pinned
        version has no wheel there."""
        started = time.monotonic()
        # --no-compile: byte-compiling the ~400 MB of wheels took 55 of a warm install's 70 s (the venv is
        # thrown away; Python compiles what the demo imports anyway)
        base = [self.bin / "python", "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", what]
        proc = run([*base, "-c", CONSTRAINTS], cwd=self.root, env=self.env)
        how = "constraints.txt"
        if proc.returncode != 0 and self.version != CONSTRAINTS_PYTHON and "No matching distribution" in proc.stderr:
            proc, how = run(base, cwd=self.root, env=self.env), "resolver (constraints.txt has no wheel here)"
        checked(proc)
        self.timings[what.split("/")[-1]] = time.monotonic() - started
        print(f"python {self.version}: {what} via {how} in {self.timings[what.split('/')[-1]]:.0f} s")
        return how

    def framequeue(self, *args: str | Path, timeout_s: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        # the venv's root as working directory: the source tree must not shadow the installed wheel
        return run([self.bin / "framequeue", *args], cwd=self.root, env=self.env, timeout_s=timeout_s)


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("version", SUPPORTED)
def test_wheel_installs_and_runs_the_demo(
    version: str, dists: Dists, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    python = find_python(version)
    if python is None:
        if os.environ.get("CI") and version in REQUIRED_IN_CI:
            pytest.fail(f"Python {version} is missing; CI must test the package on it")
        pytest.skip(f"Python {version} is not installed")
    venv = Venv(python, tmp_path, version)

    # the base install: the API, the client and the CLI, no ONNX Runtime
    venv.pip_install(str(dists.wheel))
    version_line = checked(venv.framequeue("--version")).strip()
    assert version_line == f"framequeue, version {project()['version']}"
    where = checked(run([venv.bin / "python", "-c", "import framequeue; print(framequeue.__file__)"],
                        cwd=tmp_path, env=venv.env)).strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    assert (Path(where).parent / "py.typed").is_file()
    assert (Path(where).parent / "api" / "ui" / "static" / "index.html").is_file()
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not read: the runtime is missing before the file is")
    no_runtime = venv.framequeue("--home", tmp_path / "home", "models", "add", "m", model, "--format", "yolox")
    assert no_runtime.returncode == 1, no_runtime.stderr
    assert "pip install 'framequeue[cpu]'" in no_runtime.stderr and "framequeue[gpu]" in no_runtime.stderr

    # the demo's extras: ONNX Runtime on the CPU and LiteRT for FaceMesh
    venv.pip_install(f"{dists.wheel}[cpu,tflite]")
    shared = require_shared("models")
    clip = make_video(tmp_path_factory.mktemp("media") / "clip.mp4", frames=20)
    demo = venv.framequeue("--home", tmp_path / "home", "demo", "--shared", shared.parent, "--video", clip,
                           "--out", tmp_path / "out", "--sample-fps", "5")
    assert demo.returncode == 0, f"{demo.stdout}\n{demo.stderr}"
    jobs = sorted((tmp_path / "out").iterdir())
    assert len(jobs) == 3
    assert all((job / "contact_sheet.png").is_file() and (job / "annotated.mp4").is_file() for job in jobs)
    assert sum((job / "timeline.png").is_file() for job in jobs) == 2  # road and driver
    for pipeline in ("detect", "road", "driver"):
        assert re.search(rf"job \w+ \({pipeline}\) succeeded", demo.stdout), demo.stdout
