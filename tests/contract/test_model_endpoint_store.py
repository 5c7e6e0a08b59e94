"""The model endpoint registry ((model, version) -> endpoints with weights), in every job store."""

from __future__ import annotations

import pytest

from framequeue.endpoints.routing import ModelEndpoint
from framequeue.errors import ModelEndpointExists, ModelEndpointNotFound
from framequeue.jobstore import JobStore
from tests.contract.conftest import T0


def _ep(id: str, model: str = "yolox_nano", version: int = 1, url: str = "local", **kw: object) -> ModelEndpoint:
    return ModelEndpoint(id=id, model=model, version=version, url=url, created_at_s=T0 + len(id), **kw)  # type: ignore[arg-type]


def test_endpoints_are_registered_listed_per_model_and_read(store: JobStore) -> None:
    a = store.register_model_endpoint(_ep("a", version=2, url="grpc://10.0.0.1:8001", weight=3.0))
    b = store.register_model_endpoint(_ep("bb", version=1))
    c = store.register_model_endpoint(_ep("ccc", model="nanodet", url="http://10.0.0.2:8000", state="draining"))
    assert store.list_model_endpoints("yolox_nano") == [b, a]  # by version, then registration
    assert store.list_model_endpoints() == [c, b, a]
    assert store.list_model_endpoints("nothing") == []
    assert store.get_model_endpoint("ccc") == c
    assert store.get_model_endpoint("a").weight == 3.0 and store.get_model_endpoint("ccc").state == "draining"
    with pytest.raises(ModelEndpointNotFound):
        store.get_model_endpoint("zz")


def test_one_url_per_model_version(store: JobStore) -> None:
    store.register_model_endpoint(_ep("a", url="http://10.0.0.1:8000"))
    with pytest.raises(ModelEndpointExists):
        store.register_model_endpoint(_ep("b", url="http://10.0.0.1:8000", weight=5.0))
    store.register_model_endpoint(_ep("c", version=2, url="http://10.0.0.1:8000"))  # another version: fine
    assert [e.id for e in store.list_model_endpoints("yolox_nano")] == ["a", "c"]
    assert store.get_model_endpoint("a").weight == 1.0


def test_reweigh_drain_and_remove(store: JobStore) -> None:
    store.register_model_endpoint(_ep("a"))
    assert store.set_model_endpoint_weight("a", 0.0).weight == 0.0
    assert store.set_model_endpoint_weight("a", 2.5) == _ep("a", weight=2.5)
    assert store.set_model_endpoint_state("a", "draining").state == "draining"
    assert store.get_model_endpoint("a") == _ep("a", weight=2.5, state="draining")
    assert store.set_model_endpoint_state("a", "active").state == "active"
    store.remove_model_endpoint("a")
    assert store.list_model_endpoints() == []
    for call in (lambda: store.set_model_endpoint_weight("a", 1.0),
                 lambda: store.set_model_endpoint_state("a", "draining"),
                 lambda: store.remove_model_endpoint("a")):
        with pytest.raises(ModelEndpointNotFound):
            call()
