"""HTTP Range requests (RFC 9110 §14) for downloads: which bytes of an object of `size` bytes to send.

One byte range is served as a 206: `bytes=a-b`, `bytes=a-` and the suffix `bytes=-n` (a last position past the
end is cut to it). A set of several ranges is ignored and the whole object is sent (200), which the RFC allows
and every player copes with; so is a range unit other than `bytes`, and a Range whose `If-Range` validator is
not the object's current ETag (a date never matches: outputs carry no Last-Modified). A single range that is
malformed, backwards or starts at or past the end is refused: 416 with `Content-Range: bytes */size`.
"""

from __future__ import annotations

import re
from typing import Final

from framequeue.errors import RangeNotSatisfiable

_SPEC: Final = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def byte_range(
    header: str | None, size: int, *, if_range: str | None = None, etag: str = ""
) -> tuple[int, int] | None:
    """[start, end) to send, or None to send the whole object; RangeNotSatisfiable for a range to refuse."""
    if header is None or (if_range is not None and if_range.strip() != etag):
        return None
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    specs = ranges.split(",")
    if len(specs) > 1:
        return None
    match = _SPEC.match(specs[0])
    if match is None or not any(match.groups()):
        raise RangeNotSatisfiable(f"Range {header!r} is not bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX")
    first, last = match.groups()
    if not first:  # a suffix: the last `last` bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(f"Range {header!r} selects no byte of a {size}-byte object")
        return max(0, size - length), size
    start = int(first)
    if last and int(last) < start:
        raise RangeNotSatisfiable(f"Range {header!r} ends before it starts")
    if start >= size:
        raise RangeNotSatisfiable(f"Range {header!r} starts at or past the end of a {size}-byte object")
    return start, size if not last else min(int(last) + 1, size)
