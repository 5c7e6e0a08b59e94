"""Broker URL options shared by every backend: `?queue=NAME&max_deliveries=N&low_max_wait_s=S&lanes=L,L`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from framequeue.errors import InvalidParams
from framequeue.jobs import DEFAULT_LOW_MAX_WAIT_S, PRIORITIES, Priority

DEFAULT_QUEUE = "framequeue"
#: a message handed out this many times is dead-lettered; above any job's max_attempts on purpose
DEFAULT_MAX_DELIVERIES = 10
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class BrokerURL:
    #: the URL without framequeue's own query parameters, for the client library
    server_url: str
    queue: str
    max_deliveries: int
    #: seconds a low message waits before it is served as normal (`low_max_wait_s`)
    low_max_wait_s: float
    #: query parameters framequeue does not know, left for the backend
    extra: dict[str, str]
    #: the lanes `receive` takes from (`lanes=high` or `lanes=normal,low`), in serving order; default all.
    #: Publishing is never restricted: a worker group's broker may publish (requeue) in any lane
    lanes: tuple[Priority, ...] = PRIORITIES


def parse_broker_url(url: str) -> BrokerURL:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    queue = query.pop("queue", DEFAULT_QUEUE)
    if not _QUEUE_NAME.match(queue):
        raise InvalidParams(f"queue name {queue!r}: use 1-64 letters, digits, '_' or '-'")
    try:
        max_deliveries = int(query.pop("max_deliveries", DEFAULT_MAX_DELIVERIES))
    except ValueError:
        raise InvalidParams("max_deliveries must be an integer") from None
    if max_deliveries < 1:
        raise InvalidParams("max_deliveries must be at least 1")
    try:
        low_max_wait_s = float(query.pop("low_max_wait_s", DEFAULT_LOW_MAX_WAIT_S))
    except ValueError:
        raise InvalidParams("low_max_wait_s must be a number of seconds") from None
    if not low_max_wait_s >= 0:  # NaN fails too
        raise InvalidParams("low_max_wait_s must be >= 0")
    lanes = parse_lanes(query.pop("lanes", ""))
    # rebuilt by hand: urlunsplit would turn sqlite:////abs into sqlite://abs
    base = url.split("?", 1)[0].split("#", 1)[0]
    server = base + (f"?{urlencode(query)}" if query else "")
    return BrokerURL(server_url=server, queue=queue, max_deliveries=max_deliveries,
                     low_max_wait_s=low_max_wait_s, extra=query, lanes=lanes)


def parse_lanes(text: str) -> tuple[Priority, ...]:
    """`high`, `normal,low`, ... as lanes in serving order; "" (or "all") is every lane. InvalidParams for an
    unknown lane."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    if not names or names == {"all"}:
        return PRIORITIES
    unknown = names - {lane.value for lane in PRIORITIES}
    if unknown:
        raise InvalidParams(f"unknown lane(s) {', '.join(sorted(unknown))}: use high, normal and low, comma-separated")
    return tuple(lane for lane in PRIORITIES if lane.value in names)
