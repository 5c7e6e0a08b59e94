"""The fault suites run once per deployment (tests/contract/backends.py DEPLOYMENTS): the API alone,
with workers started by each test so it can kill, pause or stop them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.deployment import Deployment
from tests.conftest import require_shared
from tests.contract.backends import DEPLOYMENTS, IMPLEMENTED, cleanup

LEASE_S = 4


@pytest.fixture(params=sorted(n for n in DEPLOYMENTS if n in IMPLEMENTED))
def split(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    store_url, queue_url = DEPLOYMENTS[request.param]
    urls = (store_url(tmp_path), queue_url(tmp_path))
    dep = Deployment(
        tmp_path, lease_s=LEASE_S, heartbeat_s=1, reap_interval_s=1, drain_s=1, republish_after_s=2,
        database_url=urls[0], broker_url=urls[1],
    )
    dep.register_yolox(require_shared("models", "yolox_nano"))
    dep.start("api", "api")
    dep.wait_ready()
    yield dep
    dep.stop()
    for url in urls:
        cleanup(url)
