"""What every concern of a SQL job store shares: the engine it runs on and the payload renderer."""

from __future__ import annotations

from framequeue.jobstore.sql.dialect import Engine
from framequeue.notify.events import PayloadRenderer


class SqlBase:
    def __init__(self, engine: Engine, render: PayloadRenderer) -> None:
        self._engine = engine
        self._render = render
