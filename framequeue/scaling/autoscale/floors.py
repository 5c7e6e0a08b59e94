"""The autoscale command's hour floors as the command line writes them, and the local time zone their hours
are read in by default."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, tzinfo

from framequeue.scaling.policy import HourFloor

__all__ = ["LocalTime", "parse_floor"]


def parse_floor(text: str) -> HourFloor:
    """`START-END:WORKERS` in hours, local time: `08-17:4` holds 4 workers from 08:00 to 17:00."""
    try:
        hours, _, workers = text.partition(":")
        start, _, end = hours.partition("-")
        return HourFloor(int(start), int(end), int(workers))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not START-END:WORKERS (e.g. 08-17:4): {exc}") from exc


class LocalTime(tzinfo):
    """This machine's local time zone, daylight saving included (as the C library's localtime knows it)."""

    def fromutc(self, dt: datetime) -> datetime:
        lt = time.localtime(dt.replace(tzinfo=UTC).timestamp())
        return datetime(*lt[:6], microsecond=dt.microsecond, tzinfo=self)

    def _local(self, dt: datetime | None) -> time.struct_time:
        if dt is None:
            return time.localtime()
        return time.localtime(time.mktime((*dt.timetuple()[:8], -1)))

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(seconds=self._local(dt).tm_gmtoff)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1) if self._local(dt).tm_isdst > 0 else timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return self._local(dt).tm_zone

    def __repr__(self) -> str:
        return "LocalTime()"
