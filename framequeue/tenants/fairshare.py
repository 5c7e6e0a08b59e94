"""Weighted fair share among tenants, pure: whose job a worker takes next among the waiting jobs of one lane.

Start-time fair queueing (Goyal et al.): each tenant of a lane has a virtual tag, the lane a virtual clock
(the tag of the last job served). A waiting tenant's tag counts from no earlier than the clock, so a tenant
back from idle starts level with the others and earns no burst credit for the time it waited for nothing.
The tenant with the smallest tag is served and its tag advances by 1/weight: over a backlog, tenants are
served in proportion to their weights, and one tenant's backlog delays another's next job by about one job.

Ties go to the tenant whose job the worker already holds (no swap needed), then by name. A lane with one
waiting tenant changes nothing (the job in hand runs, no tag moves): the single-tenant claim costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from framequeue.errors import InvalidParams

#: a tenant that FQ_TENANT_WEIGHTS does not name
DEFAULT_WEIGHT = 1.0
#: the key under which a lane's virtual clock is stored next to its tenants' tags (no tenant is named "")
CLOCK_KEY = ""


@dataclass(frozen=True)
class Turn:
    #: the tenant served now
    tenant: str
    #: the tag its job starts at: the lane's clock moves to it
    start: float
    #: the tenant's next tag: start + 1 / weight
    finish: float
    #: whether the store writes the clock and the tag (False: one tenant waiting, nothing to share)
    charge: bool


@lru_cache(maxsize=8)
def parse_weights(text: str) -> Mapping[str, float]:
    """`"tenantA=3,tenantB=1"` (FQ_TENANT_WEIGHTS) as a mapping; InvalidParams for anything else than
    name=positive number pairs. Tenants not named weigh DEFAULT_WEIGHT."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not name.strip() or not math.isfinite(value) or value <= 0:
            raise InvalidParams(f"FQ_TENANT_WEIGHTS: {item!r} is not tenant=weight with a positive weight")
        weights[name.strip()] = value
    return weights


def weight_of(weights: Mapping[str, float], tenant: str) -> float:
    return weights.get(tenant, DEFAULT_WEIGHT)


def turn_of(
    tenant: str, tags: Mapping[str, float | None], clock: float, weights: Mapping[str, float], *, charge: bool
) -> Turn:
    """`tenant`'s turn now: its stored tag (None: never served in this lane) no earlier than the clock."""
    tag = tags.get(tenant)
    start = clock if tag is None else max(tag, clock)
    return Turn(tenant, start, start + 1.0 / weight_of(weights, tenant), charge)


def next_turn(
    tags: Mapping[str, float | None], clock: float, weights: Mapping[str, float], in_hand: str
) -> Turn:
    """The turn among the waiting tenants: `tags` maps each (the tenant whose job is `in_hand` among them)
    to its stored tag, None for one never served in this lane; `clock` is the lane's virtual clock."""
    if not tags:
        raise ValueError("next_turn needs at least one waiting tenant")
    if len(tags) == 1:
        (tenant,) = tags
        return turn_of(tenant, tags, clock, weights, charge=False)
    turns = [turn_of(t, tags, clock, weights, charge=True) for t in tags]
    return min(turns, key=lambda turn: (turn.start, turn.tenant != in_hand, turn.tenant))


__all__ = ["CLOCK_KEY", "DEFAULT_WEIGHT", "Turn", "next_turn", "parse_weights", "turn_of", "weight_of"]
