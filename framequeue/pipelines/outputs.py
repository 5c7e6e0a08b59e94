"""Output files written as a run goes: JSON streamed record by record, never whole in memory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any


class JsonStream:
    """`{...head, "<list_key>": [record, record, ...], ...tail}` written as records arrive.

    Only the current record is held; `finish` closes the list and appends the tail's keys (summaries,
    events), `abort` closes the file incomplete (the caller discards it).
    """

    def __init__(self, path: Path, head: Mapping[str, Any], list_key: str = "frames") -> None:
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._first = True
        opening = json.dumps(dict(head))[:-1]
        self._file.write(opening + (", " if head else "") + json.dumps(list_key) + ": [")

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(("\n" if self._first else ",\n") + json.dumps(record, allow_nan=False))
        self._first = False

    def finish(self, tail: Mapping[str, Any]) -> None:
        closing = json.dumps(dict(tail), allow_nan=False)[1:]
        self._file.write("\n]" + (", " + closing if tail else "}") + "\n")
        self._file.close()

    def abort(self) -> None:
        self._file.close()
