"""Separate hosts on one machine, for the fault tests: each host is a network namespace joined to this one
by its own veth pair (this side 10.A.I.1/30, the host's side 10.A.I.2/30, `lo` up inside), and the
services, which listen on 127.0.0.1 only, are bridged onto 10.A.I.1 by a TCP forwarder in the test
process (tests/faults/tcpproxy.py). A process started in a host (`Host.wrap` + its command) reaches them
over its veth link only, as a remote host would; this machine's loopback is not its loopback.

Namespaces do not isolate the file system: a SQLite file or a file:// object store stays shared.
Needs root and iproute2 (`unavailable()` says why not, for a skip)."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.faults.tcpproxy import FaultProxy

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: the port a URL without one means, by scheme
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "amqp": 5672, "nats": 4222}
#: serialises choosing a subnet and creating the links among the runs on this machine
LOCK_FILE = Path(tempfile.gettempdir()) / "framequeue-netns.lock"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@functools.cache
def unavailable() -> str | None:
    """Why network namespaces with veth links cannot be made here, or None when they can (tried once)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux only (this is {sys.platform})"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    try:
        with SeparateHosts(1):
            pass
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        return f"cannot create a network namespace with a veth link: {detail}"
    return None


@dataclass(frozen=True)
class Host:
    netns: str
    #: this machine's end of the veth pair (the other end, inside the namespace, is `peer`)
    veth: str
    peer: str
    #: this machine's address on the link: where the services are bridged
    gateway: str
    #: the host's own address on the link
    address: str

    @property
    def wrap(self) -> list[str]:
        """Command prefix that runs a command inside this host (it execs the command: the pid stays)."""
        return ["ip", "netns", "exec", self.netns]

    def netns_inode(self) -> int:
        return os.stat(f"/run/netns/{self.netns}").st_ino

    def holds(self, pid: int) -> bool:
        """Whether process PID lives in this host's network namespace."""
        try:
            return os.stat(f"/proc/{pid}/ns/net").st_ino == self.netns_inode()
        except OSError:  # gone
            return False

    def reachable(self, *addresses: tuple[str, int]) -> dict[tuple[str, int], bool]:
        """Whether a TCP connection to each (address, port) succeeds from inside this host."""
        probe = (
            "import json, socket, sys\n"
            "def ok(a, p):\n"
            "    try:\n"
            "        socket.create_connection((a, p), timeout=3).close()\n"
            "        return True\n"
            "    except OSError:\n"
            "        return False\n"
            "print(json.dumps([ok(a, p) for a, p in json.loads(sys.argv[1])]))\n"
        )
        out = subprocess.run([*self.wrap, sys.executable, "-c", probe, json.dumps(addresses)], capture_output=True,
                             text=True, check=True, timeout=60).stdout
        return dict(zip(addresses, json.loads(out), strict=True))


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    with open(LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _free_second_octet() -> int:
    """An A for 10.A.0.0/16 that no address or route on this machine uses yet."""
    seen = ip("-4", "-o", "addr", "show").stdout + ip("-4", "route", "show", "table", "all").stdout
    used = {int(a) for a in re.findall(r"\b10\.(\d{1,3})\.", seen)}
    free = [a for a in range(100, 255) if a not in used]
    if not free:
        raise RuntimeError("no free 10.A.0.0/16 subnet for the veth links")
    return random.choice(free)


class SeparateHosts:
    """COUNT hosts (network namespaces with a veth link each) and the bridges that let them reach this
    machine's loopback services. `close()` removes all of it, also after a failure half-way."""

    def __init__(self, count: int) -> None:
        self.hosts: list[Host] = []
        self._bridges: dict[tuple[str, str, int], FaultProxy] = {}
        token = secrets.token_hex(3)  # interface names have at most 15 characters: no pid in those
        try:
            with _machine_lock():
                a = _free_second_octet()
                for i in range(count):
                    host = Host(netns=f"fq-{os.getpid()}-{token}-{i}", veth=f"fq{token}h{i}", peer=f"fq{token}n{i}",
                                gateway=f"10.{a}.{i}.1", address=f"10.{a}.{i}.2")
                    self.hosts.append(host)  # before it exists: close() removes a half-made one too
                    self._create(host)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _create(host: Host) -> None:
        ip("netns", "add", host.netns)
        ip("link", "add", host.veth, "type", "veth", "peer", "name", host.peer)
        ip("link", "set", host.peer, "netns", host.netns)
        ip("addr", "add", f"{host.gateway}/30", "dev", host.veth)
        ip("link", "set", host.veth, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/30", "dev", host.peer)
        ip("-n", host.netns, "link", "set", host.peer, "up")
        ip("-n", host.netns, "link", "set", "lo", "up")

    def __enter__(self) -> SeparateHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, host: Host, url: str) -> str:
        """URL as HOST reaches it: a service on this machine's loopback is bridged from HOST's gateway (on the
        same port when it is free there) and the URL names the gateway; other URLs (SQLite files) are kept."""
        parts = urlsplit(url)
        target = parts.hostname
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        if target not in LOOPBACK or port is None:
            return url
        key = (host.gateway, target, port)
        if key not in self._bridges:
            try:
                self._bridges[key] = FaultProxy(target, port, listen_host=host.gateway, listen_port=port)
            except OSError:  # the port is taken on every address (a wildcard listener): any port will do
                self._bridges[key] = FaultProxy(target, port, listen_host=host.gateway)
        userinfo, at, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}{at}{host.gateway}:{self._bridges[key].port}"
        # rebuilt by hand, like framequeue's own URL parsing: only the netloc changes
        return f"{parts.scheme}://{netloc}{url[len(parts.scheme) + 3 + len(parts.netloc):]}"

    def bridges(self, host: Host) -> list[tuple[tuple[str, int], tuple[str, int]]]:
        """(bridged address, service address) for each service bridged to HOST."""
        return [((gw, proxy.port), proxy.target) for (gw, _, _), proxy in self._bridges.items() if gw == host.gateway]

    def close(self) -> None:
        for proxy in self._bridges.values():
            proxy.close()
        self._bridges.clear()
        for host in self.hosts:
            # deleting one end of a veth pair deletes both, even while a process still lives in the namespace
            ip("link", "del", host.veth, check=False)
            ip("netns", "del", host.netns, check=False)
        self.hosts.clear()
