"""Each port opens its backends by URL scheme through one lookup (framequeue.config.backend_class)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import pytest

from framequeue.brokers import SCHEMES as BROKER_SCHEMES
from framequeue.brokers import open_broker
from framequeue.config import Backend, backend_class
from framequeue.errors import InvalidParams
from framequeue.jobstore import SCHEMES as JOBSTORE_SCHEMES
from framequeue.jobstore import open_jobstore
from framequeue.storage import SCHEMES as STORAGE_SCHEMES
from framequeue.storage import open_storage

TABLES: dict[str, Mapping[str, Backend]] = {
    "brokers": BROKER_SCHEMES,
    "jobstore": JOBSTORE_SCHEMES,
    "storage": STORAGE_SCHEMES,
}


@pytest.mark.parametrize("port", sorted(TABLES))
def test_every_scheme_names_a_class_of_its_own_port(port: str) -> None:
    for scheme, backend in TABLES[port].items():
        assert backend.module.startswith(f"framequeue.{port}."), scheme
        module = importlib.import_module(backend.module)  # the dev extra installs every client
        assert isinstance(getattr(module, backend.cls), type), scheme


def test_an_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(InvalidParams, match=r"no broker for kafka URLs \(supported: sqlite://, .*memory://\)"):
        open_broker("kafka://localhost:9092")
    with pytest.raises(InvalidParams, match="no object store for scheme-less URLs"):
        open_storage("/tmp/objects")
    with pytest.raises(InvalidParams, match="no job store for mysql URLs"):
        open_jobstore("mysql://localhost/db", lambda job: b"{}")


def test_a_missing_client_names_the_extra_to_install() -> None:
    schemes = {"x": Backend("framequeue_no_such_client", "Thing", "redis")}
    with pytest.raises(InvalidParams, match=r"x:// broker needs packages that are missing .*framequeue\[redis\]"):
        backend_class("broker", schemes, "x://host")


def test_memory_backends_open_by_url() -> None:
    broker = open_broker("memory://openers")
    try:
        assert broker.stats().ready == 0
    finally:
        broker.close()
    objects = open_storage("memory://openers")
    objects.put("a", b"1")
    assert objects.get("a") == b"1"
