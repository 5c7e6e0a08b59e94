"""Output files written as a run goes: JSON streamed record by record, never whole in memory, and the
per-frame numbers a timeline plot is drawn from (12 bytes a frame or so: a 3-hour 30 fps video is ~4 MB)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt


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


class Series:
    """Per-frame values appended as frames pass; NaN where a value is unknown."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._data: npt.NDArray[np.float32] = np.full((1024, 1 + len(self.names)), np.nan, np.float32)
        self._n = 0

    def append(self, t_s: float, values: Sequence[float | None]) -> None:
        if self._n == len(self._data):
            grown = np.full((2 * len(self._data), self._data.shape[1]), np.nan, np.float32)
            grown[: self._n] = self._data
            self._data = grown
        row = self._data[self._n]
        row[0] = t_s
        for k, value in enumerate(values, start=1):
            row[k] = np.nan if value is None else value
        self._n += 1

    def __len__(self) -> int:
        return self._n

    @property
    def t_s(self) -> npt.NDArray[np.float32]:
        return self._data[: self._n, 0]

    def column(self, name: str) -> npt.NDArray[np.float32]:
        return self._data[: self._n, 1 + self.names.index(name)]
