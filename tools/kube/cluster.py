"""A throwaway single-node Kubernetes 1.20 inside a network namespace this module creates.

`Cluster(workdir).start()` brings up, each inside the namespace: etcd, kube-apiserver (its insecure port on
the namespace's address; a service-account key; 1.20's default admission), kube-controller-manager,
kube-scheduler, containerd (own root, state and socket under `workdir`; CRI with restrict_oom_score_adj;
CNI bridge + host-local + loopback, so every pod gets its own address in POD_CIDR), a kubelet registering
one node, and the services the pods use: PostgreSQL (a throwaway cluster from the machine's own binaries),
Redis, and an S3-protocol server (moto). A veth pair joins the host (HOST_IP) to the namespace (NS_IP) on
a private /30, and a host route sends POD_CIDR through it: the test talks only to these addresses.

`stop()` tears everything down, also after a failed start: containers (through containerd, then their
cgroups), processes, mounts under `workdir`, the pods' network namespaces, the namespace and its veth.
No kube-proxy and no DNS: Services do not route, so clients use pod and namespace addresses.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: Debian packages the cluster needs, by the command that proves each is installed
PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "etcd": "etcd-server",
    "ip": "iproute2",
    "redis-server": "redis-server",
    "openssl": "openssl",
    "gcc": "gcc",
}
NETNS = "fqkube"
HOST_IP = "10.203.0.1"
NS_IP = "10.203.0.2"
POD_CIDR = "10.204.0.0/24"
SERVICE_CIDR = "10.205.0.0/24"
API_PORT = 6443
POSTGRES_PORT = 5432
REDIS_PORT = 6379
S3_PORT = 9000
S3_BUCKET = "fq-cluster"
NODE = "fq-node"
PAUSE_IMAGE = "docker.io/local/pause:1"
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: the API server's certificate is self-signed at start-up; the address is the namespace's own
_UNVERIFIED = ssl._create_unverified_context()


def _log(msg: str) -> None:
    print(f"[kube-cluster {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _which(name: str) -> bool:
    return Path(name).exists() if name.startswith("/") else shutil.which(name) is not None


def ensure_packages() -> None:
    """apt-get install the Debian packages that are missing (after one `apt-get update`); none when all are."""
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if not _which(cmd)})
    if not Path("/usr/lib/postgresql").is_dir():
        missing.append("postgresql")
    if not missing:
        return
    _log(f"installing {missing}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, timeout=900,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def postgres_bin() -> Path:
    return sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent


def _sh(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        output = proc.stdout[-2000:] + proc.stderr[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{output}")
    return proc


def _in_ns(*cmd: str) -> list[str]:
    # nsenter joins only the network namespace; `ip netns exec` would also remount /sys, hiding the cgroup
    # hierarchies the kubelet and runc need
    return ["nsenter", f"--net=/var/run/netns/{NETNS}", "--", *cmd]


@dataclass
class Cluster:
    workdir: Path
    #: the folder holding kube-apiserver, kube-controller-manager, kube-scheduler and kubelet
    kube_bin: Path
    python: str = sys.executable
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _netns_before: set[str] = field(default_factory=set)
    _podlogs_before: set[str] = field(default_factory=set)
    #: the size limit of the tmpfs the whole cluster lives on (images, etcd, PostgreSQL, pod volumes)
    tmpfs_size: str = "10g"
    #: the bearer token of the cluster's one user (group system:masters)
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    # ---- addresses clients use
    @property
    def api_url(self) -> str:
        return f"https://{NS_IP}:{API_PORT}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def containerd_sock(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@{NS_IP}:{POSTGRES_PORT}/postgres"

    @property
    def redis_url(self) -> str:
        return f"redis://{NS_IP}:{REDIS_PORT}/0"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{NS_IP}:{S3_PORT}"

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    # ---- lifecycle
    def start(self) -> Cluster:
        try:
            self._start()
        except BaseException:
            _log("start failed; tearing down")
            self.stop()
            raise
        return self

    def _start(self) -> None:
        ensure_packages()
        # everything lives on a tmpfs: deleting gigabytes of image layers from a disk mounted with `discard`
        # takes minutes; unmounting a tmpfs is instant
        self.workdir.mkdir(parents=True, exist_ok=True)
        _sh("mount", "-t", "tmpfs", "-o", f"size={self.tmpfs_size},mode=0711", "fqkube", str(self.workdir))
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self._netns_before = set(os.listdir("/var/run/netns")) if Path("/var/run/netns").is_dir() else set()
        pods = Path("/var/log/pods")
        self._podlogs_before = set(os.listdir(pods)) if pods.is_dir() else set()
        self._network()
        self._keys()
        self._write_kubeconfig()
        self._spawn("etcd", [
            "etcd", "--data-dir", str(self.workdir / "etcd"), "--name", "fq",
            "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "fq=http://127.0.0.1:2380",
        ])  # fmt: skip
        self._wait_http("etcd", "http://127.0.0.1:2379/health", in_ns=True)
        self._spawn("kube-apiserver", [
            str(self.kube_bin / "kube-apiserver"),
            "--etcd-servers=http://127.0.0.1:2379",
            f"--advertise-address={NS_IP}", f"--bind-address={NS_IP}", f"--secure-port={API_PORT}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-key-file={self.workdir / 'sa.pub'}",
            f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            # a throwaway cluster reached only through its own namespace: one static token, everything allowed
            f"--token-auth-file={self.workdir / 'tokens.csv'}", "--authorization-mode=AlwaysAllow",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
        ])  # fmt: skip
        self._wait_http("kube-apiserver", f"{self.api_url}/readyz", timeout_s=120)
        self._spawn("kube-controller-manager", [
            str(self.kube_bin / "kube-controller-manager"),
            f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
            f"--service-account-private-key-file={self.workdir / 'sa.key'}",
            f"--root-ca-file={self.workdir / 'apiserver-certs' / 'apiserver.crt'}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle", "--port=10252", "--secure-port=0",
            "--use-service-account-credentials=false",
            "--node-monitor-grace-period=120s", "--pod-eviction-timeout=10m",
        ])  # fmt: skip
        self._spawn("kube-scheduler", [
            str(self.kube_bin / "kube-scheduler"),
            f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--port=10251", "--secure-port=0",
        ])  # fmt: skip
        self._containerd()
        self._kubelet()
        self._postgres()
        self._spawn("redis", [
            "redis-server", "--bind", NS_IP, "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--dir", str(self.workdir),
        ])  # fmt: skip
        self._spawn("s3", [self.python, "-m", "moto.server", "-H", NS_IP, "-p", str(S3_PORT)])
        self._wait_http("s3", f"{self.s3_endpoint}/{S3_BUCKET}", method="PUT")
        self.wait_node_ready()

    def _network(self) -> None:
        _sh("ip", "netns", "del", NETNS, check=False)
        _sh("ip", "link", "del", "fqkube-h", check=False)
        _sh("ip", "netns", "add", NETNS)
        _sh("ip", "link", "add", "fqkube-h", "type", "veth", "peer", "name", "fqkube-n")
        _sh("ip", "link", "set", "fqkube-n", "netns", NETNS)
        _sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", "fqkube-h")
        _sh("ip", "link", "set", "fqkube-h", "up")
        _sh(*_in_ns("ip", "addr", "add", f"{NS_IP}/30", "dev", "fqkube-n"))
        _sh(*_in_ns("ip", "link", "set", "fqkube-n", "up"))
        _sh(*_in_ns("ip", "link", "set", "lo", "up"))
        _sh(*_in_ns("sysctl", "-qw", "net.ipv4.ip_forward=1"))
        _sh("ip", "route", "add", POD_CIDR, "via", NS_IP, "dev", "fqkube-h")

    def _keys(self) -> None:
        _sh("openssl", "genrsa", "-out", str(self.workdir / "sa.key"), "2048")
        _sh("openssl", "rsa", "-in", str(self.workdir / "sa.key"), "-pubout", "-out", str(self.workdir / "sa.pub"))

    def _write_kubeconfig(self) -> None:
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin,"system:masters"\n')
        tokens.chmod(0o600)
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fq",
            "clusters": [{"name": "fq", "cluster": {"server": self.api_url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "fq", "user": {"token": self.token}}],
            "contexts": [{"name": "fq", "context": {"cluster": "fq", "user": "fq", "namespace": "default"}}],
        }  # fmt: skip
        self.kubeconfig.write_text(json.dumps(config))
        self.kubeconfig.chmod(0o600)

    def _containerd(self) -> None:
        base = self.workdir / "containerd"
        cni = self.workdir / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        (cni / "net.d" / "10-fq.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "fq",
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]], "routes": [{"dst": "0.0.0.0/0"}],
                          "dataDir": str(cni / "ipam")}},
                {"type": "loopback"},
            ],
        }))  # fmt: skip
        (base / "config.toml").parent.mkdir(parents=True, exist_ok=True)
        (base / "config.toml").write_text(f"""version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
[grpc]
  address = "{self.containerd_sock}"
[ttrpc]
  address = "{base / 'containerd.sock.ttrpc'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni / 'net.d'}"
""")
        self._spawn("containerd", ["containerd", "--config", str(base / "config.toml")])
        deadline = time.monotonic() + 60
        while not self.containerd_sock.exists():
            self._check_alive("containerd")
            if time.monotonic() > deadline:
                raise RuntimeError("containerd did not open its socket\n" + self.tail("containerd"))
            time.sleep(0.2)

    def ctr(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _sh("ctr", "--address", str(self.containerd_sock), "-n", "k8s.io", *args, timeout=timeout,
                   check=check)

    def import_images(self, *archives: Path) -> None:
        """Load OCI archives into containerd's k8s.io namespace, where the kubelet finds them."""
        for archive in archives:
            self.ctr("images", "import", str(archive), timeout=900)

    def _cgroup_root(self) -> None:
        """The kubelet's --cgroup-root in every cgroup v1 hierarchy (it must exist; its cpuset copies the root's)."""
        for hierarchy in CGROUP_ROOT.iterdir():
            if hierarchy.name == "unified" or not hierarchy.is_dir() or hierarchy.is_symlink():
                continue
            ours = hierarchy / "fqkube"
            ours.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (hierarchy / name).exists():
                    (ours / name).write_text((hierarchy / name).read_text())

    def _kubelet(self) -> None:
        root = self.workdir / "kubelet"
        root.mkdir(parents=True, exist_ok=True)
        self._cgroup_root()
        self._spawn("kubelet", [
            str(self.kube_bin / "kubelet"),
            f"--kubeconfig={self.kubeconfig}", f"--root-dir={root}", f"--cert-dir={root / 'pki'}",
            "--container-runtime=remote",
            f"--container-runtime-endpoint=unix://{self.containerd_sock}",
            f"--image-service-endpoint=unix://{self.containerd_sock}",
            f"--hostname-override={NODE}", f"--node-ip={NS_IP}",
            f"--pod-infra-container-image={PAUSE_IMAGE}",
            "--cgroup-driver=cgroupfs", "--cgroup-root=/fqkube", "--fail-swap-on=false",
            "--enforce-node-allocatable=", "--cgroups-per-qos=true",
            "--eviction-hard=memory.available<1Mi,nodefs.available<1%,imagefs.available<1%",
            "--image-gc-high-threshold=100", "--image-gc-low-threshold=99",
            "--read-only-port=0", "--anonymous-auth=true", "--authorization-mode=AlwaysAllow",
            "--make-iptables-util-chains=false", "--resolv-conf=", "--serialize-image-pulls=false",
            "--runtime-request-timeout=10m", "--node-status-update-frequency=5s",
            "--sync-frequency=5s", "--file-check-frequency=5s", "--v=1",
        ])  # fmt: skip

    def _postgres(self) -> None:
        data = self.workdir / "postgres"
        data.mkdir()
        shutil.chown(data, "postgres", "postgres")
        data.chmod(0o700)
        pg = postgres_bin()
        _sh("runuser", "-u", "postgres", "--", str(pg / "initdb"), "-D", str(data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", timeout=120)  # fmt: skip
        with open(data / "pg_hba.conf", "a") as fh:
            fh.write("host all all 0.0.0.0/0 trust\n")
        self._spawn("postgres", [
            "runuser", "-u", "postgres", "--", str(pg / "postgres"), "-D", str(data),
            "-c", f"listen_addresses={NS_IP}", "-c", f"port={POSTGRES_PORT}",
            "-c", f"unix_socket_directories={data}", "-c", "fsync=off", "-c", "max_connections=200",
        ])  # fmt: skip
        deadline = time.monotonic() + 60
        while _sh(*_in_ns(str(pg / "pg_isready"), "-h", NS_IP, "-p", str(POSTGRES_PORT)), check=False).returncode:
            self._check_alive("postgres")
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not start\n" + self.tail("postgres"))
            time.sleep(0.3)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.log_path(name), "wb")  # noqa: SIM115
        self._logs.append(log)
        _log(f"starting {name}")
        self.procs[name] = subprocess.Popen(_in_ns(*cmd), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.tail(name)}")

    def _wait_http(self, name: str, url: str, *, in_ns: bool = False, method: str = "GET",
                   timeout_s: float = 60) -> None:  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive(name)
            if in_ns:
                ok = _sh(*_in_ns(self.python, "-c", f"import urllib.request as u; u.urlopen({url!r}, timeout=2)"),
                         check=False).returncode == 0  # fmt: skip
            else:
                try:
                    headers = {"Authorization": f"Bearer {self.token}"}
                    with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers),
                                                timeout=2, context=_UNVERIFIED):  # fmt: skip
                        ok = True
                except OSError:
                    ok = False
            if ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {url} in {timeout_s:.0f} s\n{self.tail(name)}")
            time.sleep(0.3)

    def api(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        """One call to the API server's REST API; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.api_url}{path}", data=data, method=method,
                                     headers={"Content-Type": content_type, "Accept": "application/json",
                                              "Authorization": f"Bearer {self.token}"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=30, context=_UNVERIFIED) as resp:
            return json.loads(resp.read() or b"null")

    def wait_node_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive("kubelet")
            with contextlib.suppress(OSError):
                node = self.api("GET", f"/api/v1/nodes/{NODE}")
                if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]):
                    _log("node Ready")
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {NODE} not Ready in {timeout_s:.0f} s\n{self.tail('kubelet')}")
            time.sleep(1)

    # ---- diagnostics
    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_path(name)
        if not path.exists():
            return f"(no {name} log)"
        text = path.read_text(errors="replace").splitlines()
        # a Go fatal error dumps every goroutine after its message: show what came before the dump
        dump = next((i for i, line in enumerate(text) if line.startswith("goroutine ")), len(text))
        return f"--- {name} log tail ---\n" + "\n".join(text[max(0, dump - lines) : dump])

    def pod_logs(self, lines: int = 40) -> str:
        """The last lines of every container log the kubelet wrote under /var/log/pods for this cluster."""
        out = []
        pods = Path("/var/log/pods")
        for entry in sorted(set(os.listdir(pods)) - self._podlogs_before) if pods.is_dir() else []:
            for log in sorted((pods / entry).rglob("*.log")):
                text = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log.relative_to(pods)} ---\n" + "\n".join(text))
        return "\n".join(out)

    def pod_log(self, namespace: str, pod: str) -> str:
        """Every container log of one pod (all restarts), as the kubelet wrote them."""
        return "\n".join(log.read_text(errors="replace")
                         for log in sorted(Path("/var/log/pods").glob(f"{namespace}_{pod}_*/*/*.log")))  # fmt: skip

    def diagnostics(self) -> str:
        names = ("kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd")
        return "\n".join([self.pod_logs(), *(self.tail(n, 25) for n in names)])

    # ---- teardown
    def stop(self) -> None:
        steps = (self._stop_containers, self._stop_processes, self._kill_cgroups, self._unmount,
                 self._remove_netns, self._remove_files)  # fmt: skip
        for step in steps:
            started = time.monotonic()
            try:
                step()
            except Exception as exc:  # every step runs even when one fails
                _log(f"teardown {step.__name__}: {exc!r}")
            _log(f"teardown {step.__name__}: {time.monotonic() - started:.1f} s")

    def _stop_containers(self) -> None:
        kubelet = self.procs.pop("kubelet", None)
        if kubelet is not None:  # first, so that it restarts nothing; it keeps no state worth a clean exit
            with contextlib.suppress(ProcessLookupError):
                os.killpg(kubelet.pid, signal.SIGKILL)
            kubelet.wait(timeout=15)
        if self.procs.get("containerd") is None or not self.containerd_sock.exists():
            return
        tasks = self.ctr("tasks", "ls", "-q", timeout=30).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", task, timeout=30, check=False)
        deadline = time.monotonic() + 30
        while "RUNNING" in self.ctr("tasks", "ls", timeout=30, check=False).stdout and time.monotonic() < deadline:
            time.sleep(0.3)
        for task in tasks:
            self.ctr("tasks", "delete", task, timeout=30, check=False)

    def _terminate(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                # PostgreSQL's SIGTERM waits for its clients to leave; SIGINT is its fast shutdown
                os.killpg(proc.pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)

    def _stop_processes(self) -> None:
        for name in reversed(list(self.procs)):
            self._terminate(name, self.procs.pop(name))
        # shims and anything else still holding the namespace
        pids = _sh("ip", "netns", "pids", NETNS, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def _kill_cgroups(self) -> None:
        """Kill what is left in the pods' cgroups (the kubelet's --cgroup-root), then remove them."""
        for hierarchy in CGROUP_ROOT.iterdir():
            root = hierarchy / "fqkube"
            if not root.is_dir():
                continue
            for _ in range(3):
                for procs in root.rglob("cgroup.procs"):
                    for pid in procs.read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.2)
            for cg in [*sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), root]:
                with contextlib.suppress(OSError):
                    cg.rmdir()

    def _unmount(self) -> None:
        prefix = str(self.workdir.resolve())
        for _ in range(3):
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
            ours = [m for m in mounts if m == prefix or m.startswith(prefix + "/")]
            if not ours:
                return
            for mount in sorted(ours, key=len, reverse=True):
                _sh("umount", "-l", mount, check=False)

    def _remove_netns(self) -> None:
        if Path("/var/run/netns").is_dir():
            for name in set(os.listdir("/var/run/netns")) - self._netns_before - {NETNS}:
                if name.startswith("cni-"):
                    _sh("ip", "netns", "del", name, check=False)
        _sh("ip", "netns", "del", NETNS, check=False)
        _sh("ip", "link", "del", "fqkube-h", check=False)

    def _remove_files(self) -> None:
        pods = Path("/var/log/pods")
        if pods.is_dir():
            for entry in set(os.listdir(pods)) - self._podlogs_before:
                shutil.rmtree(pods / entry, ignore_errors=True)
        containers = Path("/var/log/containers")
        if containers.is_dir():
            for link in containers.iterdir():
                if link.is_symlink() and not link.exists():
                    link.unlink()
        shutil.rmtree(self.workdir, ignore_errors=True)
