"""`Prefer: wait=N` (RFC 7240) of POST /v1/jobs: what a submit waits, clamped, and what is refused."""

from __future__ import annotations

import pytest

from framequeue.api.prefer import MAX_WAIT_S, wait_s
from framequeue.errors import InvalidParams


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None),
    ("", None),
    ("respond-async", None),
    ("return=minimal", None),
    ("wait=5", 5),
    ("WAIT=5", 5),
    (" respond-async , wait=10", 10),
    ('wait="7"', 7),
    ("wait=3; foo=bar", 3),
    ("wait=0", 0),
    ("wait=2, wait=9", 2),
    (f"wait={MAX_WAIT_S}", MAX_WAIT_S),
])
def test_the_wait_a_prefer_header_asks_for(header: str | None, seconds: int | None) -> None:
    assert wait_s(header) == seconds


def test_a_wait_over_the_ceiling_is_clamped_to_it() -> None:
    assert MAX_WAIT_S == 60
    assert wait_s("wait=61") == 60
    assert wait_s("respond-async, wait=3600") == 60


@pytest.mark.parametrize("header", ["wait=abc", "wait=-1", "wait=1.5", "wait", "wait=", "wait=\u0665"])
def test_a_malformed_wait_is_refused_with_the_header_named(header: str) -> None:
    with pytest.raises(InvalidParams, match="Prefer: wait must be a whole number of seconds") as info:
        wait_s(header)
    assert info.value.code == "invalid_params"
