"""The model endpoint registry's records and the routing decisions made on them. Pure: no I/O.

A registry row says that version V of model M can be run at URL (an Open Inference Protocol v2 server,
`http(s)://host:port` or `grpc://host:port`, or `local`: in the worker's own process), with a weight.
Routing happens twice per job:

- at submit, `VersionBalancer.pick` assigns the job a version by the versions' weights (the sum of their
  active endpoints' weights), by smooth weighted round robin, so any run of jobs splits as the weights
  say (40 jobs at 50/50: 20/20), not only on average; the version is recorded in the job, so every frame
  and every attempt runs it (sticky: A/B results compare). `pick_version` is the stateless draw from a
  hash of the job id, for callers that keep no state.
- at each claim, `pick_endpoint` chooses an endpoint of that version, by weight, from a hash of the job
  id (rendezvous hashing: the order is stable, so adding an endpoint moves only its share of jobs), and
  fails over down that order past endpoints whose health check fails; never to another version.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from framequeue.errors import InvalidParams, NoEndpoint

#: the URL of an endpoint that runs the model in the worker's own process (ONNX Runtime)
LOCAL: Final = "local"
REMOTE_SCHEMES: Final = frozenset({"http", "https", "grpc"})
STATES: Final = ("active", "draining")
State = Literal["active", "draining"]
#: the model repository's names (framequeue.models.repository.NAME_PATTERN)
_MODEL_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_WEIGHT: Final = 1e6


@dataclass(frozen=True)
class ModelEndpoint:
    id: str
    model: str
    version: int
    #: `local`, or the base URL of an OIP v2 server: http(s)://host:port[/prefix] or grpc://host:port
    url: str
    #: share of the traffic, relative to the other endpoints of the model; 0 takes none
    weight: float = 1.0
    #: a draining endpoint takes no new jobs (it still serves jobs already given its version)
    state: State = "active"
    created_at_s: float = 0.0

    @property
    def local(self) -> bool:
        return self.url == LOCAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.model, "version": self.version, "url": self.url,
            "weight": self.weight, "state": self.state, "created_at_s": self.created_at_s,
        }


def new_endpoint_id() -> str:
    return f"mep_{uuid.uuid4().hex[:16]}"


def check_endpoint_url(url: str) -> str:
    if url == LOCAL:
        return url
    parts = urlsplit(url)
    if parts.scheme not in REMOTE_SCHEMES or not parts.hostname:
        raise InvalidParams(f"url: {url!r} must be `local` or http(s)://host:port or grpc://host:port")
    if parts.scheme == "grpc" and parts.path not in ("", "/"):
        raise InvalidParams(f"url: a grpc:// URL takes no path, got {url!r}")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise InvalidParams(f"url: {url!r} has an invalid port") from None
    return url.rstrip("/")


def check_weight(weight: float) -> float:
    ok = isinstance(weight, int | float) and not isinstance(weight, bool) and math.isfinite(weight)
    if not ok or not 0 <= weight <= MAX_WEIGHT:
        raise InvalidParams(f"weight: a number from 0 to {MAX_WEIGHT:g}, got {weight!r}")
    return float(weight)


def check_state(state: str) -> State:
    if state not in STATES:
        raise InvalidParams(f"state: one of {', '.join(STATES)}, got {state!r}")
    return state  # type: ignore[return-value]


def check_model_endpoint(ep: ModelEndpoint) -> ModelEndpoint:
    """Refuse a malformed row with the field named; returns it with its URL normalised."""
    if not _MODEL_NAME.fullmatch(ep.model):
        raise InvalidParams(f"model: {ep.model!r} is not a model name ({_MODEL_NAME.pattern})")
    if not isinstance(ep.version, int) or isinstance(ep.version, bool) or ep.version < 1:
        raise InvalidParams(f"version: an integer >= 1, got {ep.version!r}")
    check_weight(ep.weight)
    check_state(ep.state)
    return ModelEndpoint(ep.id, ep.model, ep.version, check_endpoint_url(ep.url), float(ep.weight), ep.state,
                         ep.created_at_s)


def unit_hash(*parts: str) -> float:
    """A number in (0, 1) fixed by `parts`, uniform over them: the same job id always draws the same."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


def version_weights(endpoints: Iterable[ModelEndpoint]) -> dict[int, float]:
    """Version -> the weight of its active endpoints; versions whose total is 0 are left out."""
    totals: dict[int, float] = {}
    for ep in endpoints:
        if ep.state == "active" and ep.weight > 0:
            totals[ep.version] = totals.get(ep.version, 0.0) + ep.weight
    return dict(sorted(totals.items()))


def pick_version(endpoints: Iterable[ModelEndpoint], job_id: str) -> int:
    """The version a job runs, drawn by weight from a hash of its id (sticky). NoEndpoint when no version
    has an active endpoint with weight > 0."""
    rows = list(endpoints)
    totals = version_weights(rows)
    if not totals:
        models = ", ".join(sorted({ep.model for ep in rows})) or "the model"
        raise NoEndpoint(f"{models}: no active endpoint with weight > 0 (register one, or reweigh one)")
    target = unit_hash("version", job_id) * sum(totals.values())
    acc = 0.0
    for version, weight in totals.items():
        acc += weight
        if target < acc:
            return version
    return next(reversed(totals))  # float rounding at the very top of the range


class VersionBalancer:
    """Smooth weighted round robin over a model's versions (nginx's algorithm): each pick adds every
    version's weight to its credit, takes the version with the most credit, and charges it the total.
    Deterministic, and within one job of the exact weighted split at every point of a run. One per
    process (each API process balances its own submits); thread-safe."""

    def __init__(self) -> None:
        self._credit: dict[str, dict[int, float]] = {}
        self._lock = threading.Lock()

    def pick(self, endpoints: Iterable[ModelEndpoint]) -> int:
        rows = list(endpoints)
        totals = version_weights(rows)
        if not totals:
            models = ", ".join(sorted({ep.model for ep in rows})) or "the model"
            raise NoEndpoint(f"{models}: no active endpoint with weight > 0 (register one, or reweigh one)")
        model = rows[0].model
        with self._lock:
            credit = self._credit.setdefault(model, {})
            for gone in set(credit) - set(totals):  # a version drained or removed: forget its credit
                del credit[gone]
            for version, weight in totals.items():
                credit[version] = credit.get(version, 0.0) + weight
            chosen = max(sorted(credit), key=lambda v: credit[v])
            credit[chosen] -= sum(totals.values())
            return chosen


def endpoint_order(endpoints: Iterable[ModelEndpoint], version: int, job_id: str) -> list[ModelEndpoint]:
    """The endpoints of `version` a job may use, best first: weighted rendezvous hashing on the job id, so
    each endpoint gets its weight's share of jobs and a job's order never changes. Active endpoints with
    weight > 0 only; when the version has none, its draining ones (a job given the version before it was
    drained still runs)."""
    mine = [ep for ep in endpoints if ep.version == version and ep.weight > 0]
    active = [ep for ep in mine if ep.state == "active"]
    pool = active or mine

    def score(ep: ModelEndpoint) -> float:
        return -ep.weight / math.log(unit_hash("endpoint", job_id, ep.id))

    return sorted(pool, key=score, reverse=True)


def pick_endpoint(
    endpoints: Iterable[ModelEndpoint], version: int, job_id: str, healthy: Callable[[ModelEndpoint], bool]
) -> ModelEndpoint:
    """The first healthy endpoint of `version` in the job's order (failover stays within the version).
    NoEndpoint names what was tried when none is healthy, or when the version has no usable endpoint."""
    order = endpoint_order(endpoints, version, job_id)
    for ep in order:
        if healthy(ep):
            return ep
    if not order:
        raise NoEndpoint(f"version {version}: no endpoint with weight > 0 is registered")
    tried = ", ".join(ep.url for ep in order)
    raise NoEndpoint(f"{order[0].model} version {version}: no endpoint is healthy (tried {tried})")
