"""The container images' recipe: both Dockerfiles and the offline builder (tools.image.build) say the same user,
entrypoint, working directory, environment, paths, extras and Debian packages as tools/image/recipe.py, so
the images cannot drift apart; and the OCI writer (tools.image.oci) writes layers and archives whose digests,
owners, links and names are what containerd reads."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tools.image import build, oci, recipe

REPO = Path(__file__).resolve().parents[2]
#: chown needs root; elsewhere the owner checks use the caller's own ids
ROOT = os.geteuid() == 0


@dataclass
class Stage:
    base: str
    name: str
    #: (instruction, arguments) in order, continuation lines joined
    lines: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.lines if ins == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"stage {self.name or self.base} has no {instruction}"
        return found[-1]

    def env(self) -> dict[str, str]:
        return dict(word.split("=", 1) for args in self.all("ENV") for word in shlex.split(args))

    def args(self) -> dict[str, str]:
        return {name: value for name, _, value in (a.strip().partition("=") for a in self.all("ARG"))}

    def apt_packages(self) -> list[str]:
        (run,) = [a for a in self.all("RUN") if "apt-get install" in a]
        return run.split("--no-install-recommends", 1)[1].split("&&", 1)[0].split()


def parse(path: Path) -> list[Stage]:
    joined: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for line in joined:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = args.split()
            base = words[0]
            for name, value in global_args.items():
                base = base.replace("${" + name + "}", value)
            stages.append(Stage(base, words[2] if len(words) == 3 and words[1].upper() == "AS" else ""))
        elif not stages:
            assert instruction == "ARG", f"{path.name}: only ARG may come before the first FROM"
            name, _, value = args.partition("=")
            global_args[name] = value
        else:
            stages[-1].lines.append((instruction, args))
    return stages


DOCKERFILES = {"Dockerfile": recipe.EXTRAS, "Dockerfile.gpu": recipe.EXTRAS_GPU}


@pytest.fixture(params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, list[Stage]]:
    return request.param, parse(REPO / request.param)


def offline_config() -> dict[str, object]:
    config = build._config(Path("framequeue-0.1.0-py3-none-any.whl"), recipe.PYTHON, None)["config"]
    assert isinstance(config, dict)
    return config


def test_the_runtime_stage_runs_framequeue_as_the_recipes_user_and_so_does_the_offline_image(
        dockerfile: tuple[str, list[Stage]]) -> None:
    _, stages = dockerfile
    final = stages[-1]
    offline = offline_config()
    assert json.loads(final.last("ENTRYPOINT")) == list(recipe.ENTRYPOINT) == offline["Entrypoint"]
    assert json.loads(final.last("CMD")) == list(recipe.CMD) == offline["Cmd"]
    assert final.last("USER") == recipe.USER_SPEC == offline["User"] == "10001:10001"
    assert final.last("WORKDIR") == recipe.HOME == offline["WorkingDir"]
    assert final.env() == recipe.ENV
    assert offline["Env"] == [f"{k}={v}" for k, v in final.env().items()]
    assert final.env()["FQ_MODEL_REPO"] == recipe.MODEL_REPO
    assert final.env()["PATH"].startswith(f"{recipe.VENV}/bin:")


def test_the_user_is_made_with_the_recipes_ids_and_home(dockerfile: tuple[str, list[Stage]]) -> None:
    _, stages = dockerfile
    (run,) = [a for a in stages[-1].all("RUN") if "useradd" in a]
    assert f"groupadd --gid {recipe.GID} {recipe.USER}" in run
    assert f"useradd --uid {recipe.UID} --gid {recipe.GID} --home-dir {recipe.HOME} --create-home" in run
    assert run.rstrip().endswith(recipe.USER)


def test_the_builder_fills_the_recipes_venv_with_the_recipes_extras_and_the_runtime_copies_it(
        dockerfile: tuple[str, list[Stage]]) -> None:
    name, stages = dockerfile
    (builder,) = [s for s in stages if s.name == "builder"]
    (run,) = [a for a in builder.all("RUN") if "pip install" in a]
    assert f"python3 -m venv {recipe.VENV}" in run
    assert "[${EXTRAS}]" in run and "--constraint constraints.txt" in run
    assert builder.args()["EXTRAS"] == DOCKERFILES[name]
    assert f"--from=builder {recipe.VENV} {recipe.VENV}" in stages[-1].all("COPY")


def test_models_are_baked_from_the_models_dir_build_arg_at_the_model_repo(
        dockerfile: tuple[str, list[Stage]]) -> None:
    _, stages = dockerfile
    (models,) = [s for s in stages if s.name == "models"]
    assert "MODELS_DIR" in models.args()
    assert models.args()["MODELS_DIR"] == ""
    (copy,) = models.all("COPY")
    assert copy.split() == ["pyproject.toml", "${MODELS_DIR}", "/models/"]
    assert f"--from=models /models {recipe.MODEL_REPO}" in stages[-1].all("COPY")


def test_the_cpu_image_is_the_offline_builders_debian_with_its_packages() -> None:
    stages = parse(REPO / "Dockerfile")
    assert {s.base for s in stages} == {f"debian:{recipe.SUITE}-slim"}
    assert build.SUITES[recipe.PYTHON] == recipe.SUITE
    (builder,) = [s for s in stages if s.name == "builder"]
    assert builder.apt_packages() == [*recipe.RUNTIME_PACKAGES, *recipe.BUILD_PACKAGES]
    assert stages[-1].apt_packages() == list(recipe.RUNTIME_PACKAGES)


def test_the_gpu_image_is_cudas_runtime_with_onnxruntime_gpu() -> None:
    stages = parse(REPO / "Dockerfile.gpu")
    assert all(s.base.startswith("nvidia/cuda:") and "cudnn-runtime" in s.base for s in stages)
    assert "gpu" in recipe.EXTRAS_GPU.split(",") and "cpu" not in recipe.EXTRAS_GPU.split(",")
    assert stages[-1].apt_packages() == list(recipe.RUNTIME_PACKAGES)


def test_the_build_context_holds_the_package_and_the_offline_wheel_is_built_from_the_same_files() -> None:
    patterns = build._dockerignore()
    for kept in ("framequeue/cli/__init__.py", "pyproject.toml", "README.md", "constraints.txt", "LICENSE"):
        assert not build._ignored(kept, patterns), kept
    for left_out in (".venv", ".git", "tests", "framequeue/__pycache__", "framequeue.egg-info", "bench"):
        assert build._ignored(left_out, patterns), left_out


@pytest.mark.parametrize("tag", ["framequeue:dev", "local/framequeue:dev", "docker.io/local/framequeue"])
def test_a_short_or_untagged_image_name_is_refused(tag: str) -> None:
    with pytest.raises(build.ImageBuildError, match="fully qualified"):
        build._check_name(tag)


# --- the OCI writer ---------------------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    os.link(root / "etc" / "os-release", root / "etc" / "os-release.hard")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    (root / "usr" / "bin" / "tool").chmod(0o755)
    (root / "usr" / "bin" / "alias").symlink_to("tool")
    (root / "dev").mkdir()
    (root / "dev" / "null-ish").write_text("left out")
    (root / "home").mkdir(mode=0o700)
    if ROOT:
        os.chown(root / "home", 10001, 10001)


def test_a_layer_keeps_owners_modes_and_links_and_its_digests_are_the_blobs_and_the_tars(tmp_path: Path) -> None:
    make_tree(tmp_path / "root")
    layer = oci.write_layer([oci.LayerSource(tmp_path / "root", "", empty=frozenset({"dev"}))], tmp_path / "l.tgz")
    blob = layer.path.read_bytes()
    assert layer.digest == f"sha256:{hashlib.sha256(blob).hexdigest()}" and layer.size == len(blob)
    assert layer.diff_id == f"sha256:{hashlib.sha256(gzip.decompress(blob)).hexdigest()}"
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert "dev" in members and "dev/null-ish" not in members
        assert members["usr/bin/alias"].issym() and members["usr/bin/alias"].linkname == "tool"
        assert members["usr/bin/tool"].mode & 0o777 == 0o755
        assert members["etc/os-release.hard"].islnk() and members["etc/os-release.hard"].linkname == "etc/os-release"
        owner = (10001, 10001) if ROOT else (os.getuid(), os.getgid())
        assert (members["home"].uid, members["home"].gid, members["home"].mode & 0o777) == (*owner, 0o700)
        assert all(not m.name.startswith("/") and m.uname == "" for m in members.values())
        names = list(members)
        assert names.index("usr") < names.index("usr/bin") < names.index("usr/bin/tool")


def test_a_layer_at_a_deep_path_writes_its_parents_and_a_host_folder_as_root_readable_by_all(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "yolox").mkdir(parents=True)
    (models / "yolox" / "model.onnx").write_bytes(b"onnx")
    (models / "yolox" / "model.onnx").chmod(0o600)
    if ROOT:
        os.chown(models / "yolox" / "model.onnx", 1234, 1234)
    (models / "linked").symlink_to(models / "yolox")
    layer = oci.write_layer([oci.LayerSource(models, "srv/models", as_root=True)], tmp_path / "m.tgz")
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members)[:2] == ["srv", "srv/models"]
        onnx = members["srv/models/yolox/model.onnx"]
        assert (onnx.uid, onnx.gid, onnx.mode & 0o444) == (0, 0, 0o444)
        assert members["srv/models/linked"].isdir() and "srv/models/linked/model.onnx" in members
        assert tar.extractfile(onnx).read() == b"onnx"  # type: ignore[union-attr]


def test_an_archive_is_an_oci_layout_naming_the_image_for_containerd_and_docker(tmp_path: Path) -> None:
    make_tree(tmp_path / "root")
    layer = oci.write_layer([oci.LayerSource(tmp_path / "root", "")], tmp_path / "l.tgz")
    config = build._config(Path("framequeue-0.1.0-py3-none-any.whl"), recipe.PYTHON, None)
    name = "docker.io/local/framequeue:t1"
    out = oci.write_archive(tmp_path / "image.tar", name=name, layers=[layer], config=config)
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    for path, data in files.items():
        if path.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == path.rsplit("/", 1)[1]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"] == {oci.CONTAINERD_NAME: name, oci.OCI_REF_NAME: "t1"}
    assert entry["platform"]["os"] == "linux"
    manifest = json.loads(files["blobs/sha256/" + entry["digest"].removeprefix("sha256:")])
    assert [lay["digest"] for lay in manifest["layers"]] == [layer.digest]
    image_config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].removeprefix("sha256:")])
    assert image_config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id]}
    assert image_config["config"]["Entrypoint"] == ["framequeue"]
    (docker,) = json.loads(files["manifest.json"])
    assert docker["RepoTags"] == [name] and docker["Layers"] == ["blobs/sha256/" + layer.digest[7:]]
