"""RFC 9110 byte ranges: what a download sends for each Range header."""

from __future__ import annotations

import pytest

from framequeue.api.ranges import byte_range
from framequeue.errors import RangeNotSatisfiable

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-0", (0, 1)),
        ("bytes=0-499", (0, 500)),
        ("bytes=500-", (500, 1000)),
        ("bytes=-100", (900, 1000)),
        ("bytes=-5000", (0, 1000)),  # a suffix longer than the object is the whole object
        ("bytes=990-5000", (990, 1000)),  # a last position past the end is cut to it
        ("bytes=999-999", (999, 1000)),
        ("BYTES = 10 - 19", (10, 20)),
        (None, None),
        ("items=0-5", None),  # an unknown unit is ignored
        ("bytes=0-1,5-9", None),  # several ranges: the whole object
    ],
)
def test_served_span(header: str | None, span: tuple[int, int] | None) -> None:
    assert byte_range(header, SIZE) == span


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=2000-3000", "bytes=-0", "bytes=9-5", "bytes=x-y",
                                    "bytes=-", "bytes=", "bytes=1-2-3"])
def test_unsatisfiable_or_malformed(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, SIZE)


def test_an_empty_object_satisfies_no_range() -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range("bytes=-1", 0)
    with pytest.raises(RangeNotSatisfiable):
        byte_range("bytes=0-", 0)


def test_if_range_serves_the_range_only_for_the_current_etag() -> None:
    assert byte_range("bytes=0-9", SIZE, if_range='"abc"', etag='"abc"') == (0, 10)
    assert byte_range("bytes=0-9", SIZE, if_range='"old"', etag='"abc"') is None
    assert byte_range("bytes=0-9", SIZE, if_range="Wed, 21 Oct 2015 07:28:00 GMT", etag='"abc"') is None
