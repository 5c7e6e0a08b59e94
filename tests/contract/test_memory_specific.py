"""What the in-memory job store promises beyond the shared contracts: stores opened on one name in a
process share their tables (an API and its in-process workers), other names see none of them."""

from __future__ import annotations

import uuid

import pytest

from framequeue.errors import InvalidParams, JobNotFound
from framequeue.jobstore import open_jobstore
from tests.contract.conftest import T0, new_job, render


def test_stores_opened_on_one_name_share_their_tables() -> None:
    name = f"fq_{uuid.uuid4().hex[:12]}"
    api, worker = open_jobstore(f"memory://{name}", render), open_jobstore(f"memory://{name}", render)
    api.create(new_job())
    claimed = worker.claim("job-1", "w1", 60.0, T0)
    assert claimed is not None and api.get("job-1").lease_owner == "w1"
    with pytest.raises(JobNotFound):
        open_jobstore(f"memory://{name}x", render).get("job-1")


def test_a_memory_url_names_its_store() -> None:
    with pytest.raises(InvalidParams):
        open_jobstore("memory://", render)
