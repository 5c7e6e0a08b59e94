"""Second instances of the real brokers, each on ports of its own, started, restarted and stopped by a fault
test, so the shared services on the default ports are never disturbed.

Each class knows how to start its server from the binaries installed on this machine, how to tell that it
answers, how to stop it, and the URLs of a framequeue deployment that uses it. `missing()` says why an
instance cannot run here (a binary is absent), for a skip locally and a failure in CI. Every instance keeps
its files in a folder of its own under the system's temporary folder (PostgreSQL must reach it as the
`postgres` user, and pytest's tmp_path is private to root); `close()` copies its logs beside the test's
other logs and removes that folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from tests.acceptance.deployment import free_port
from tests.contract.backends import PG_DSN

#: how long a server may take to answer after it was started (RabbitMQ boots in about 3-15 s)
START_TIMEOUT_S = 60.0
#: how long a server may take to exit once asked to, before it is killed
STOP_TIMEOUT_S = 30.0


class Instance:
    """A broker the test owns. The job store is the shared PostgreSQL (a schema per test) unless the
    instance hosts it too (`hosts_store`: PostgreSQL as queue and job store, restarted together)."""

    kind: ClassVar[str]
    hosts_store: ClassVar[bool] = False
    #: about the longest a restart takes on a busy 2-core machine (stop, 1 s down, start, answering again)
    restart_s: ClassVar[float] = 3.0

    def __init__(self, logs_to: Path) -> None:
        self.logs_to = logs_to
        self.root = Path(tempfile.mkdtemp(prefix=f"fq-{self.kind}-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def missing(cls) -> str | None:
        """Why this instance cannot run on this machine, or None."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self, down_s: float = 1.0) -> None:
        """Stop the server, leave it down for down_s, start it again (with the data it keeps)."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def broker_url(self, ns: str) -> str:
        raise NotImplementedError

    def store_url(self, ns: str) -> str:
        return f"{PG_DSN}{'&' if '?' in PG_DSN else '?'}schema={ns}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        for log in self.root.glob("*.log"):
            with contextlib.suppress(OSError):
                shutil.copy(log, self.logs_to / f"{self.kind}-{log.name}")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------------------

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None, log: str = "server.log") -> None:
        with open(self.root / log, "ab") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def _stop_group(self, sig: int = signal.SIGTERM) -> None:
        """Signal the server's process group and wait until every process of it is gone (a server's
        children, as RabbitMQ's beam.smp under its start script, outlive the process we started)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while proc.poll() is None or group_alive(proc.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                deadline = time.monotonic() + STOP_TIMEOUT_S
            time.sleep(0.05)

    def _wait_until(self, answers: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{what} exited with {self.proc.returncode}; see {self.root}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not answer within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)


class RedisInstance(Instance):
    """redis-server without persistence: a restart loses every message."""

    kind = "redis"

    @classmethod
    def missing(cls) -> str | None:
        return None if shutil.which("redis-server") else "redis-server is not installed"

    def start(self) -> None:
        self._spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", str(self.root), "--logfile", ""])
        self._wait_until(lambda: _exchange(self.port, b"PING\r\n", 7) == b"+PONG\r\n", "the second redis-server")

    def stop(self) -> None:
        self._stop_group(signal.SIGKILL)

    def broker_url(self, ns: str) -> str:
        return f"redis://127.0.0.1:{self.port}/0?queue={ns}"


class NatsInstance(Instance):
    """nats-server with JetStream on file storage: a restart keeps the streams, their messages and the
    consumer's state; with `wipe` the store folder is deleted while it is down, so it comes back empty (no
    stream, no consumer, no message), as a server that lost its disk."""

    kind = "nats"

    def __init__(self, logs_to: Path, wipe: bool = False) -> None:
        super().__init__(logs_to)
        self.wipe = wipe
        self.monitor_port = free_port()

    @classmethod
    def missing(cls) -> str | None:
        return None if _nats_server() else "nats-server is not installed"

    def start(self) -> None:
        server = _nats_server()
        assert server is not None
        self._spawn([server, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.root / "store"),
                     "-m", str(self.monitor_port)])
        self._wait_until(self._healthy, "the second nats-server")

    def _healthy(self) -> bool:
        # /healthz answers 200 once JetStream is up and its streams are recovered
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self._stop_group(signal.SIGTERM)

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        if self.wipe:
            shutil.rmtree(self.root / "store", ignore_errors=True)
        time.sleep(down_s)
        self.start()

    def broker_url(self, ns: str) -> str:
        # AckWait = the deployment's lease, as the README asks
        return f"nats://127.0.0.1:{self.port}?queue={ns}&ack_wait_s=4"


class RabbitMQInstance(Instance):
    """A second RabbitMQ node (its own node name, AMQP and distribution ports, data, logs and config; the
    management plugin off; epmd shared). A restart keeps its data folder, so quorum queues keep their
    messages. Stopped with SIGTERM to its process group, which the Erlang VM takes as a clean shutdown."""

    kind = "rabbitmq"
    restart_s = 12.0

    def __init__(self, logs_to: Path) -> None:
        super().__init__(logs_to)
        self.node = f"fqtest{self.port}@localhost"
        self.dist_port = free_port()
        (self.root / "rabbitmq.conf").write_text("loopback_users.guest = true\n")  # guest from loopback only
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")  # not the system's (it names the shared node)

    @classmethod
    def missing(cls) -> str | None:
        return None if _rabbitmq_server() else "rabbitmq-server is not installed"

    def start(self) -> None:
        server = _rabbitmq_server()
        assert server is not None
        root = str(self.root)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            # the Erlang cookie is created here on the first start
            "HOME": root,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            # the default (AMQP port + 20000) can be past 65535 for a port the system handed out
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": f"{root}/mnesia",
            "RABBITMQ_LOG_BASE": f"{root}/log",
            "RABBITMQ_CONFIG_FILE": f"{root}/rabbitmq.conf",
            "RABBITMQ_CONF_ENV_FILE": f"{root}/rabbitmq-env.conf",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{root}/enabled_plugins",
            "RABBITMQ_PID_FILE": f"{root}/rabbitmq.pid",
        }
        self._spawn([server], env)
        self._wait_until(self._speaks_amqp, f"the second RabbitMQ node {self.node}")

    def _speaks_amqp(self) -> bool:
        # the AMQP listener opens last in the boot; it answers the protocol header with Connection.Start
        reply = _exchange(self.port, b"AMQP\x00\x00\x09\x01", 1)
        return reply == b"\x01"

    def stop(self) -> None:
        self._stop_group(signal.SIGTERM)

    def broker_url(self, ns: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/?queue={ns}"


class PostgresInstance(Instance):
    """A second PostgreSQL cluster (initdb in a folder of its own, trust authentication, TCP on loopback
    and its socket in that folder), run as the `postgres` user when the tests run as root, since initdb
    refuses root. It is the job store and the queue of its deployment, so a restart takes both away.
    Stopped with `pg_ctl stop -m fast` (sessions are ended, committed work is kept)."""

    kind = "postgres"
    hosts_store = True

    def __init__(self, logs_to: Path) -> None:
        super().__init__(logs_to)
        bindir = _pg_bindir()
        assert bindir is not None
        self.bin = bindir
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        try:
            self._as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                            "-E", "UTF8", "--no-sync"])
        except BaseException:
            self.close()
            raise

    @classmethod
    def missing(cls) -> str | None:
        if _pg_bindir() is None:
            return "PostgreSQL's initdb and pg_ctl are not installed (/usr/lib/postgresql/*/bin)"
        if os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists("postgres")):
            return "initdb refuses root, and there is no runuser or no postgres user to run it as"
        return None

    def _as_owner(self, argv: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with open(self.root / "pg_ctl.log", "ab") as out:
            subprocess.run(prefix + argv, cwd=self.root, stdout=out, stderr=subprocess.STDOUT, check=True,
                           timeout=START_TIMEOUT_S + 10)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c fsync=off")
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                        "-w", "-t", str(int(START_TIMEOUT_S)), "-o", options, "start"])

    def stop(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(int(STOP_TIMEOUT_S)),
                            "-m", "fast", "stop"])
        except (subprocess.SubprocessError, OSError):
            # pg_ctl gave up: an immediate shutdown (SIGQUIT to the postmaster), so nothing outlives the test
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
            raise

    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def broker_url(self, ns: str) -> str:
        return f"{self.dsn()}?schema={ns}&queue={ns}"

    def store_url(self, ns: str) -> str:
        return f"{self.dsn()}?schema={ns}"


#: the instances the restart tests run on, by test id: (class, keyword arguments)
INSTANCES: dict[str, tuple[type[Instance], dict[str, Any]]] = {
    "redis": (RedisInstance, {}),
    "nats": (NatsInstance, {}),
    "nats-wiped": (NatsInstance, {"wipe": True}),
    "rabbitmq": (RabbitMQInstance, {}),
    "postgres": (PostgresInstance, {}),
}


def group_alive(pgid: int) -> bool:
    """Whether a process of this process group is still running (zombies count as gone)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _exchange(port: int, request: bytes, size: int) -> bytes:
    """Send request to 127.0.0.1:port and read the first `size` bytes of the answer (b"" on any failure)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(request)
            answer = b""
            while len(answer) < size:
                chunk = sock.recv(size - len(answer))
                if not chunk:
                    break
                answer += chunk
            return answer
    except OSError:
        return b""


def _nats_server() -> str | None:
    return shutil.which("nats-server") or next(
        (p for p in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server") if os.access(p, os.X_OK)), None)


def _rabbitmq_server() -> str | None:
    # Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user (who cannot read the
    # instance's folder) and writes its output under /var/log/rabbitmq: use the script it wraps
    for path in ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/opt/rabbitmq/sbin/rabbitmq-server"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("rabbitmq-server")


def _pg_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with initdb and pg_ctl, else the folder of pg_ctl on PATH."""
    def version(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        bindir = Path(initdb).parent
        if os.access(bindir / "pg_ctl", os.X_OK):
            return bindir
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        bindir = Path(os.path.realpath(pg_ctl)).parent
        if os.access(bindir / "initdb", os.X_OK):
            return bindir
    return None


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
