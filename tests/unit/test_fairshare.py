"""The fair share's tenant choice (framequeue.tenants.fairshare), table-driven at its boundaries."""

from __future__ import annotations

from collections import Counter

import pytest

from framequeue.errors import InvalidParams
from framequeue.tenants.fairshare import Turn, next_turn, parse_weights

NO_WEIGHTS: dict[str, float] = {}


@pytest.mark.parametrize(
    ("tags", "clock", "weights", "in_hand", "expected"),
    [
        # one waiting tenant: its job runs and nothing is charged (the single-tenant fast path)
        ({"a": 7.0}, 3.0, NO_WEIGHTS, "a", Turn("a", 7.0, 8.0, charge=False)),
        ({"a": None}, 3.0, NO_WEIGHTS, "a", Turn("a", 3.0, 4.0, charge=False)),
        # the smallest tag is served, whoever holds the message
        ({"a": 2.0, "b": 1.0}, 0.0, NO_WEIGHTS, "a", Turn("b", 1.0, 2.0, charge=True)),
        # a tie goes to the tenant in hand (no swap), then by name
        ({"a": 1.0, "b": 1.0}, 0.0, NO_WEIGHTS, "b", Turn("b", 1.0, 2.0, charge=True)),
        ({"a": 1.0, "b": 1.0, "c": 1.0}, 0.0, NO_WEIGHTS, "z", Turn("a", 1.0, 2.0, charge=True)),
        # a tenant never served, or back from idle with an old tag, starts at the clock: no burst credit
        ({"a": 5.0, "new": None}, 5.0, NO_WEIGHTS, "a", Turn("a", 5.0, 6.0, charge=True)),
        ({"a": 5.5, "idle": 0.25}, 5.0, NO_WEIGHTS, "a", Turn("idle", 5.0, 6.0, charge=True)),
        ({"a": 6.0, "idle": 0.25}, 5.0, NO_WEIGHTS, "a", Turn("idle", 5.0, 6.0, charge=True)),
        # weights: the step is 1 / weight
        ({"a": 1.0, "b": 2.0}, 1.0, {"a": 4.0}, "b", Turn("a", 1.0, 1.25, charge=True)),
        ({"a": 1.0, "b": 1.0}, 1.0, {"b": 0.5}, "b", Turn("b", 1.0, 3.0, charge=True)),
    ],
)
def test_next_turn(
    tags: dict[str, float | None], clock: float, weights: dict[str, float], in_hand: str, expected: Turn
) -> None:
    assert next_turn(tags, clock, weights, in_hand) == expected


def simulate(weights: dict[str, float], waiting: dict[str, int], turns: int) -> list[str]:
    """Serve `turns` jobs from backlogs of `waiting` jobs per tenant, charging as a store does."""
    tags: dict[str, float | None] = {t: None for t in waiting}
    clock, served = 0.0, []
    left = dict(waiting)
    for _ in range(turns):
        live = {t: tags[t] for t in left if left[t] > 0}
        turn = next_turn(live, clock, weights, in_hand=max(live))
        served.append(turn.tenant)
        left[turn.tenant] -= 1
        if turn.charge:
            clock, tags[turn.tenant] = max(clock, turn.start), turn.finish
    return served


def test_equal_weights_alternate_so_a_small_backlog_is_not_stuck_behind_a_large_one() -> None:
    served = simulate(NO_WEIGHTS, {"a": 1000, "b": 10}, 40)
    assert served.count("b") == 10
    assert served.index("b") <= 1
    assert served[:20].count("a") == 10  # one each, turn by turn
    assert served[20:] == ["a"] * 20  # b's backlog gone: a alone


@pytest.mark.parametrize(("weight_a", "share_a"), [(3.0, 0.75), (1.0, 0.5), (0.5, 1 / 3)])
def test_shares_follow_the_weights(weight_a: float, share_a: float) -> None:
    served = simulate({"a": weight_a}, {"a": 1000, "b": 1000}, 120)
    assert abs(Counter(served)["a"] / 120 - share_a) <= 1 / 60


def test_a_tenant_back_from_idle_gets_its_share_not_a_burst() -> None:
    weights = NO_WEIGHTS
    tags: dict[str, float | None] = {"a": None, "b": None}
    clock = 0.0
    for _ in range(100):  # a and b share the lane for a while; c waits for nothing
        turn = next_turn(tags, clock, weights, "a")
        clock, tags[turn.tenant] = max(clock, turn.start), turn.finish
    tags["c"] = 0.0  # c was served long ago, and comes back
    served = []
    for _ in range(30):
        turn = next_turn(tags, clock, weights, "a")
        served.append(turn.tenant)
        clock, tags[turn.tenant] = max(clock, turn.start), turn.finish
    assert max(Counter(served).values()) - min(Counter(served).values()) <= 1


@pytest.mark.parametrize(
    ("text", "weights"),
    [("", {}), ("a=3,b=1", {"a": 3.0, "b": 1.0}), (" a = 2.5 , ", {"a": 2.5}), ("x-1=0.1", {"x-1": 0.1})],
)
def test_parse_weights(text: str, weights: dict[str, float]) -> None:
    assert dict(parse_weights(text)) == weights


@pytest.mark.parametrize("text", ["a", "a=", "=3", "a=0", "a=-1", "a=nan", "a=inf", "a=x"])
def test_parse_weights_refuses_anything_but_positive_weights(text: str) -> None:
    with pytest.raises(InvalidParams, match="FQ_TENANT_WEIGHTS"):
        parse_weights(text)


def test_next_turn_needs_a_waiting_tenant() -> None:
    with pytest.raises(ValueError):
        next_turn({}, 0.0, NO_WEIGHTS, "a")


def test_a_malformed_weight_stops_the_worker_at_start_with_the_error(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from framequeue.cli import main

    monkeypatch.setenv("FQ_TENANT_WEIGHTS", "acme=3,globex=zero")
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "worker"])
    assert result.exit_code == 1
    assert "invalid_params" in result.output and "'globex=zero'" in result.output
