import json
import threading
import time
from pathlib import Path

import pytest

from framequeue.errors import InvalidParams, JobCancelled
from framequeue.models.repository import ModelRepository
from framequeue.pipelines.base import Progress, RunContext
from framequeue.pipelines.registry import get_pipeline


def ctx(tmp_path: Path, params: dict[str, float], stop: threading.Event, seen: list[Progress]) -> RunContext:
    src = tmp_path / "in.bin"
    src.write_bytes(b"12345")
    return RunContext(input_path=src, output_dir=tmp_path / "out", params=params,
                      models=ModelRepository(tmp_path / "models"), threads=1, on_progress=seen.append, stop=stop)


def test_noop_validates_and_writes_its_result(tmp_path: Path) -> None:
    pipeline = get_pipeline("noop")
    repo = ModelRepository(tmp_path / "models")
    assert pipeline.validate({}, repo) == {"sleep_s": 0.0, "crash": False}
    for bad in ({"sleep_s": -1}, {"sleep_s": "x"}, {"speed": 1}, {"crash": "yes"}):
        with pytest.raises(InvalidParams):
            pipeline.validate(bad, repo)
    seen: list[Progress] = []
    result = pipeline.run(ctx(tmp_path, {"sleep_s": 0.0}, threading.Event(), seen))
    assert result.outputs == {"result": "result.json"}
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == {"input_size_bytes": 5}
    assert seen == [Progress(1, 1)]


def test_noop_stops_when_asked(tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        get_pipeline("noop").run(ctx(tmp_path, {"sleep_s": 30.0}, stop, []))
    assert time.monotonic() - started < 2
