"""The error tree's docstring draws every error with its HTTP status and stable code."""

from __future__ import annotations

import re

import framequeue.errors as errors

#: a row of the drawing: "    │   ├── UnknownPipeline            422  unknown_pipeline"
ROW = re.compile(r"^\s*[│├└─ ]+(\w+)\b.*?\s(\d{3})\s+(\w+)\s*$")


def _all(cls: type[errors.FrameQueueError]) -> list[type[errors.FrameQueueError]]:
    """cls and its subclasses in framequeue.errors (other modules may derive their own)."""
    subs = [c for sub in cls.__subclasses__() for c in _all(sub)]
    return [c for c in (cls, *subs) if c.__module__ == errors.__name__]


def test_every_error_is_drawn_with_its_status_and_code() -> None:
    rows = [m.groups() for line in (errors.__doc__ or "").splitlines() if (m := ROW.match(line))]
    drawn = {name: (int(status), code) for name, status, code in rows}
    for cls in _all(errors.FrameQueueError)[1:]:
        assert drawn.get(cls.__name__) == (cls.http_status, cls.code), cls.__name__
    assert len(drawn) == len(_all(errors.FrameQueueError)) - 1
