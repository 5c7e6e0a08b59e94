"""A real S3-protocol server on loopback for the tests: moto's server, in its own process (its objects live
in its memory and temporary files, never in the test process's). Started once, on first use, on a free
port of 127.0.0.1; `stop()` (the session fixture's teardown, or exit) ends it."""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest

#: every test gets its own prefix in this bucket
BUCKET = "fq-test"
#: moto accepts any credentials; object_store insists on having some
ACCESS_KEY, SECRET_KEY, REGION = "fqtest", "fqtest-secret", "us-east-1"

_lock = threading.Lock()
_server: tuple[subprocess.Popen[bytes], str] | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def endpoint() -> str:
    """http://127.0.0.1:PORT of the running server (started here on first call), with BUCKET created."""
    global _server
    with _lock:
        if _server is not None and _server[0].poll() is None:
            return _server[1]
        port = _free_port()
        log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(f"{url}/{BUCKET}", method="PUT"), timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    with open(log.name) as fh:
                        raise RuntimeError(f"moto server did not start on {url}:\n{fh.read()[-2000:]}") from None
                time.sleep(0.1)
        os.unlink(log.name)
        _server = (proc, url)
        return url


def stop() -> None:
    global _server
    with _lock:
        if _server is not None:
            proc = _server[0]
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _server = None


atexit.register(stop)


def require_s3() -> None:
    """Skip locally (fail in CI) when the s3 extra or moto's server is not installed."""
    missing = [name for name in ("obstore", "moto", "flask") if importlib.util.find_spec(name) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing: `make setup` installs them with the dev extra")
        pytest.skip(f"{', '.join(missing)} not installed")


def store_url(prefix: str | None = None) -> str:
    """An s3:// URL for a fresh prefix of the test bucket on the running server."""
    require_s3()
    prefix = prefix or f"fq_{uuid.uuid4().hex[:12]}"
    where = urllib.parse.quote(endpoint(), safe="")
    return f"s3://{ACCESS_KEY}:{SECRET_KEY}@{BUCKET}/{prefix}?endpoint={where}&region={REGION}"
