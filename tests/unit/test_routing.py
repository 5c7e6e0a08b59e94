"""A/B routing on the model endpoint registry: sticky versions by weight, failover within a version."""

from __future__ import annotations

from collections import Counter

import pytest

from framequeue.endpoints.routing import (
    ModelEndpoint,
    check_model_endpoint,
    endpoint_order,
    pick_endpoint,
    pick_version,
)
from framequeue.errors import InvalidParams, NoEndpoint


def ep(id: str, version: int, url: str = "local", weight: float = 1.0, state: str = "active") -> ModelEndpoint:
    return ModelEndpoint(id, "vehicles", version, url, weight, state)  # type: ignore[arg-type]


def always(_: ModelEndpoint) -> bool:
    return True


JOBS = [f"job-{i:04d}" for i in range(1000)]


def test_the_version_is_sticky_by_job_id() -> None:
    rows = [ep("a", 1), ep("b", 2)]
    first = [pick_version(rows, j) for j in JOBS]
    assert first == [pick_version(list(reversed(rows)), j) for j in JOBS]  # row order does not matter
    assert len(set(first)) == 2


def test_a_50_50_split_of_1000_jobs_lands_within_45_to_55_percent() -> None:
    counts = Counter(pick_version([ep("a", 1, weight=50), ep("b", 2, weight=50)], j) for j in JOBS)
    assert 450 <= counts[1] <= 550 and counts[1] + counts[2] == 1000


def test_weights_are_summed_per_version() -> None:
    rows = [ep("a", 1, "http://h1:8000"), ep("b", 1, "http://h2:8000"), ep("c", 1, "http://h3:8000"), ep("d", 2)]
    counts = Counter(pick_version(rows, j) for j in JOBS)
    assert 700 <= counts[1] <= 800


def test_zero_weight_and_draining_versions_get_no_jobs() -> None:
    rows = [ep("a", 1), ep("b", 2, weight=0), ep("c", 3, state="draining")]
    assert {pick_version(rows, j) for j in JOBS} == {1}
    with pytest.raises(NoEndpoint, match="no active endpoint"):
        pick_version([ep("b", 2, weight=0), ep("c", 3, state="draining")], "job")
    with pytest.raises(NoEndpoint):
        pick_version([], "job")


def test_endpoints_share_a_version_by_weight_and_skip_draining_ones() -> None:
    rows = [ep("a", 1, "http://h1:8000", weight=3), ep("b", 1, "http://h2:8000", weight=1),
            ep("c", 1, "http://h3:8000", state="draining"), ep("z", 1, "http://h4:8000", weight=0)]
    counts = Counter(pick_endpoint(rows, 1, j, always).id for j in JOBS)
    assert set(counts) == {"a", "b"} and 700 <= counts["a"] <= 800
    # draining endpoints serve a version only when it has no active one (jobs already given that version)
    assert pick_endpoint([ep("c", 1, state="draining")], 1, "job", always).id == "c"


def test_failover_stays_within_the_version() -> None:
    rows = [ep("a", 1, "http://h1:8000"), ep("b", 1, "http://h2:8000"), ep("other", 2)]
    for j in JOBS[:50]:
        order = endpoint_order(rows, 1, j)
        assert [e.version for e in order] == [1, 1]
        dead = order[0].url
        chosen = pick_endpoint(rows, 1, j, lambda e, dead=dead: e.url != dead)  # type: ignore[misc]
        assert chosen == order[1]  # the next in the job's own order, never version 2
        assert pick_endpoint(rows, 1, j, always) == order[0]  # and stable while all are healthy


def test_no_healthy_endpoint_of_the_version_is_a_clear_error() -> None:
    rows = [ep("a", 1, "http://h1:8000"), ep("b", 1, "grpc://h2:8001"), ep("other", 2)]
    with pytest.raises(NoEndpoint, match=r"vehicles version 1: no endpoint is healthy \(tried .*h[12].*h[12]"):
        pick_endpoint(rows, 1, "job", lambda e: False)
    with pytest.raises(NoEndpoint, match="version 3: no endpoint"):
        pick_endpoint(rows, 3, "job", always)


@pytest.mark.parametrize("url", ["ftp://h:1", "http://", "grpc://h:1/x", "http://h:port", "locals"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidParams, match="url"):
        check_model_endpoint(ep("a", 1, url))


@pytest.mark.parametrize(("field", "row"), [("weight", ep("a", 1, weight=-1)), ("version", ep("a", 0)),
                                            ("state", ep("a", 1, state="off"))])
def test_bad_rows_are_refused(field: str, row: ModelEndpoint) -> None:
    with pytest.raises(InvalidParams, match=field):
        check_model_endpoint(row)


def test_urls_are_normalised() -> None:
    assert check_model_endpoint(ep("a", 1, "http://h:8000/")).url == "http://h:8000"


def test_the_balancer_splits_any_run_as_the_weights_say() -> None:
    from framequeue.endpoints.routing import VersionBalancer

    def rows(w1: float, w2: float) -> list[ModelEndpoint]:
        return [ModelEndpoint("a", "vehicles", 1, "local", w1), ModelEndpoint("b", "vehicles", 2, "local", w2)]

    balancer = VersionBalancer()
    picks = [balancer.pick(rows(50, 50)) for _ in range(40)]
    assert picks.count(1) == 20 and picks.count(2) == 20
    assert all(abs(picks[:n].count(1) - n / 2) <= 1 for n in range(1, 41))  # balanced at every point
    picks = [balancer.pick(rows(70, 30)) for _ in range(10)]
    assert picks.count(1) == 7
    # a version with weight 0 (or drained) gets nothing, and its credit is forgotten
    assert {balancer.pick(rows(1, 0)) for _ in range(5)} == {1}
    assert balancer.pick([ModelEndpoint("c", "other", 3, "local", 1)]) == 3  # models are balanced apart
