"""framequeue.scaling.splitcurve and `framequeue simulate --split-measured`: a measured split run scaled to a
longer video, the wall time per worker count checked against hand schedules, and bad measurements refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from framequeue.cli import main as cli_main
from framequeue.scaling.splitcurve import Measurement, curve, split_job

#: a 3-minute video in 60 s segments: split 1 s, stitch 2 s, hand-offs 0.2 and 0.4 s; unsplit 150 s
M = Measurement(video_s=180.0, segment_s=60.0, split_s=1.0, stitch_s=2.0, segments_s=(40.0, 50.0, 60.0),
                handoffs_s=(0.2, 0.4), unsplit_s=150.0)


def test_a_measurement_round_trips_and_is_read_inside_a_bench_result() -> None:
    assert Measurement.from_json(M.to_json()) == M
    assert Measurement.from_json({"measured": M.to_json(), "unsplit": {}, "records": {}}) == M


@pytest.mark.parametrize(("change", "message"), [
    ({"segments_s": []}, "segments_s"),
    ({"segments_s": [40.0, 0.0]}, "segments_s"),
    ({"video_s": 0}, "video_s"),
    ({"unsplit_s": -1}, "unsplit_s"),
    ({"handoffs_s": [0.1]}, "not a split measurement"),
    ({"split_s": "fast"}, "not a split measurement"),
])
def test_a_bad_measurement_is_refused_naming_what(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Measurement.from_json({**M.to_json(), **change})
    with pytest.raises(ValueError, match="not a split measurement"):
        Measurement.from_json({"split": {}})


def test_the_job_is_scaled_to_the_target_length() -> None:
    job = split_job(M, 6.0)  # 2x the measured length
    assert job.segments_s == (40.0, 50.0, 60.0, 40.0, 50.0, 60.0)  # measured segments repeated in order
    assert (job.split_s, job.stitch_s) == (pytest.approx(2.0), pytest.approx(4.0))
    assert job.handoff_s == pytest.approx(0.3)
    assert len(split_job(M, 2.5).segments_s) == 3  # a last, shorter segment still counts
    assert len(split_job(M, 1.0).segments_s) == 1


def test_the_curve_follows_hand_schedules_and_floors_at_one_worker_per_segment() -> None:
    c = curve(M, 3.0, sla_s=70.0, workers=(1, 2, 8))
    walls = {p["workers"]: p["wall_s"] for p in c["points"]}
    serial = 1.0 + 0.3 + 0.3 + 2.0
    assert walls[1] == pytest.approx(serial + 150.0)
    assert walls[2] == pytest.approx(serial + 100.0)  # in order on the first free: 40 then 60, and 50
    assert walls[3] == pytest.approx(serial + 60.0)  # one per segment: added to the asked counts
    assert walls[8] == walls[3] == pytest.approx(c["floor_s"])
    assert c["stops_scaling_at_workers"] == 3 and c["serial_s"] == pytest.approx(serial)
    assert c["fewest_workers_meeting_sla"] == 3
    by = {p["workers"]: p for p in c["points"]}
    assert by[1]["speedup"] == pytest.approx(150.0 / walls[1])
    assert [by[n]["meets_sla"] for n in (1, 2, 3)] == [False, False, True]
    # every segment at the unsplit run's rate (150 s / 180 s of video): 50 s each
    assert by[2]["wall_s_at_unsplit_rate"] == pytest.approx(serial + 100.0)
    assert curve(M, 3.0, sla_s=10.0)["fewest_workers_meeting_sla"] is None


def test_simulate_prints_the_split_curve_from_a_saved_measurement(tmp_path: Path) -> None:
    saved = tmp_path / "split.json"
    saved.write_text(json.dumps({"measured": M.to_json()}))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_main, ["simulate", "--split-measured", str(saved), "--split-minutes", "30",
                                           "--sla-s", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "predicted for a 30-minute video (30 segments" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(r.split("|")[1]) for r in rows] == [1, 2, 8, 30, 32, 128]
    assert (out / "split.md").read_text() in result.output


def test_simulate_refuses_a_file_that_is_not_a_measurement(tmp_path: Path) -> None:
    for text in ("{not json", json.dumps({"unsplit": {"wall_s": 1}})):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        result = CliRunner().invoke(cli_main, ["simulate", "--split-measured", str(bad)])
        assert result.exit_code == 2
        assert "--split-measured" in result.output
