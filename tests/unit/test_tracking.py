"""ByteTrack and its time-aware Kalman filter on synthetic scenes; time is a number passed in, nothing sleeps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from framequeue.models.predictions import Detections
from framequeue.tracking import ByteTracker, Track, TrackerConfig, iou_matrix, kalman
from framequeue.tracking.kalman import REFERENCE_PERIOD_S

FPS_25 = 1 / 25

Box = npt.NDArray[np.float64]


def box(cx: float, cy: float, w: float = 50.0, h: float = 100.0) -> Box:
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def frame(
    tracker: ByteTracker,
    t_s: float,
    boxes: Sequence[Box],
    scores: Sequence[float] | None = None,
    classes: Sequence[int] | None = None,
) -> list[Track]:
    n = len(boxes)
    xyxy = np.array(boxes, dtype=np.float32).reshape(n, 4)
    score = np.array(scores if scores is not None else [0.9] * n, dtype=np.float32)
    class_id = np.array(classes if classes is not None else [0] * n, dtype=np.int64)
    return tracker.update(t_s, xyxy, score, class_id)


def ids(tracks: list[Track]) -> list[int]:
    return [t.track_id for t in tracks]


def centre(b: npt.ArrayLike) -> Box:
    a = np.asarray(b, dtype=np.float64)
    return np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])


# --- Kalman filter ---------------------------------------------------------------------------------------------


def test_kalman_one_long_predict_equals_two_short_ones_in_mean() -> None:
    mean, cov = kalman.initiate(kalman.xyxy_to_xyah([box(100, 200)]))
    mean[0, 4:] = [80.0, -20.0, 0.01, 3.0]
    once, _ = kalman.predict(mean, cov, 2 * REFERENCE_PERIOD_S)
    twice, _ = kalman.predict(*kalman.predict(mean, cov, REFERENCE_PERIOD_S), REFERENCE_PERIOD_S)
    np.testing.assert_allclose(once, twice, rtol=0, atol=1e-9)
    np.testing.assert_allclose(once[0, :2], [100 + 80 / 15, 200 - 20 / 15])


def test_kalman_process_noise_is_bytetracks_per_frame_model_at_the_reference_period() -> None:
    h = 120.0
    mean = np.array([[50.0, 60.0, 0.5, h, 0, 0, 0, 0]])
    zero = np.zeros((1, 8, 8))
    # ByteTrack per frame: position std h/20, velocity std h/160 px per frame (x30 per second), aspect 1e-2 / 1e-5
    per_frame = np.array([h / 20, h / 20, 1e-2, h / 20, h / 160 * 30, h / 160 * 30, 1e-5 * 30, h / 160 * 30]) ** 2
    _, q1 = kalman.predict(mean, zero, REFERENCE_PERIOD_S)
    np.testing.assert_allclose(q1[0], np.diag(per_frame))
    _, q6 = kalman.predict(mean, zero, 0.2)  # a 5 fps gap: six reference frames of noise
    np.testing.assert_allclose(q6[0], np.diag(6 * per_frame))
    m0, c0 = kalman.predict(mean, q1, 0.0)
    np.testing.assert_array_equal(m0, mean)
    np.testing.assert_array_equal(c0, q1)
    with pytest.raises(ValueError, match="dt_s"):
        kalman.predict(mean, zero, -0.01)


def test_kalman_is_vectorised_over_tracks_with_one_dt_each() -> None:
    rng = np.random.default_rng(3)
    boxes = np.array([box(*rng.uniform(50, 500, 2), *rng.uniform(20, 200, 2)) for _ in range(5)])
    mean, cov = kalman.initiate(kalman.xyxy_to_xyah(boxes))
    mean[:, 4:] = rng.normal(0, 30, (5, 4))
    dts = rng.uniform(0, 0.3, 5)
    batch_mean, batch_cov = kalman.predict(mean, cov, dts)
    z = kalman.xyxy_to_xyah(boxes + rng.normal(0, 2, boxes.shape))
    upd_mean, upd_cov = kalman.update(batch_mean, batch_cov, z)
    for i in range(5):
        m, c = kalman.predict(mean[i : i + 1], cov[i : i + 1], float(dts[i]))
        np.testing.assert_allclose(m[0], batch_mean[i])
        np.testing.assert_allclose(c[0], batch_cov[i])
        m, c = kalman.update(m, c, z[i : i + 1])
        np.testing.assert_allclose(m[0], upd_mean[i])
        np.testing.assert_allclose(c[0], upd_cov[i])


def test_kalman_covariance_stays_symmetric_positive_definite() -> None:
    rng = np.random.default_rng(7)
    truth = np.array([300.0, 200.0, 0.5, 100.0])
    mean, cov = kalman.initiate(truth[None])
    for _ in range(500):
        mean, cov = kalman.predict(mean, cov, float(rng.choice([0.0, 1 / 30, 1 / 25, 0.2, 0.5])))
        if rng.random() < 0.8:
            mean, cov = kalman.update(mean, cov, (truth + rng.normal(0, [2, 2, 0.01, 2]))[None])
        np.testing.assert_allclose(cov[0], cov[0].T, rtol=0, atol=1e-9 * np.abs(cov[0]).max())
        assert np.linalg.eigvalsh(cov[0]).min() > 0
    before = cov[0].diagonal()[:4].copy()
    mean, cov = kalman.update(mean, cov, (truth + 5)[None])
    assert np.all(cov[0].diagonal()[:4] < before)  # a measurement never adds uncertainty
    assert np.all(np.abs(mean[0, :4] - truth) < 5)


def test_box_conversions_round_trip() -> None:
    b = np.array([[10.0, 20.0, 60.0, 120.0]])
    np.testing.assert_allclose(kalman.xyxy_to_xyah(b), [[35.0, 70.0, 0.5, 100.0]])
    np.testing.assert_allclose(kalman.xyah_to_xyxy(kalman.xyxy_to_xyah(b)), b)


def test_iou_matrix() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10]], dtype=np.float64)  # the second has no area
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=np.float64)
    np.testing.assert_allclose(iou_matrix(a, b), np.array([[1.0, 1 / 3, 0.0], [0.0, 0.0, 0.0]]))
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


# --- tracker ---------------------------------------------------------------------------------------------------


def test_single_object_at_25_fps_one_id_confirmed_at_the_second_frame() -> None:
    tracker = ByteTracker()
    v = np.array([80.0, -20.0])
    for k in range(30):
        t = k * FPS_25
        truth = box(*(np.array([100.0, 300.0]) + v * t))
        out = frame(tracker, t, [truth])
        if k == 0:
            assert out == []  # tentative until min_hits = 2
            continue
        assert ids(out) == [1]
        track = out[0]
        assert track.hits == k + 1 and track.time_since_update_s == 0.0
        np.testing.assert_allclose(track.box_xyxy, truth, atol=2.0)
        np.testing.assert_array_equal(track.det_box_xyxy, truth.astype(np.float32))
        assert track.box_xyxy.dtype == np.float32 and track.box_xyxy.shape == (4,)
    np.testing.assert_allclose(track.velocity_xy_px_s, v, rtol=0.1)


@pytest.mark.parametrize(("min_hits", "first_reported"), [(1, 0), (2, 1), (3, 2)])
def test_min_hits_confirms_uniformly(min_hits: int, first_reported: int) -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=min_hits))
    reported = [ids(frame(tracker, k * FPS_25, [box(100 + 2 * k, 100)])) for k in range(5)]
    assert reported == [[]] * first_reported + [[1]] * (5 - first_reported)


def test_two_objects_crossing_keep_their_ids() -> None:
    tracker = ByteTracker()
    # 24 px per frame each way at 25 fps, so at the crossing one object's last box overlaps the other's new box
    # more than its own: only the motion model tells them apart
    speed = 600.0
    max_iou = 0.0
    owner: dict[int, str] = {}
    for k in range(40):
        t = k * FPS_25
        a = box(100 + speed * t, 100, 60, 80)
        b = box(628 - speed * t, 134, 60, 80)  # 34 px lower: IoU up to 0.40 when they overlap fully in x
        max_iou = max(max_iou, float(iou_matrix(a[None], b[None])[0, 0]))
        out = frame(tracker, t, [a, b] if k % 2 else [b, a])  # nothing may ride on the detections' order
        if k == 0:
            continue
        assert len(out) == 2
        for track in out:
            assert track.det_box_xyxy is not None
            which = "a" if np.array_equal(track.det_box_xyxy, a.astype(np.float32)) else "b"
            assert owner.setdefault(track.track_id, which) == which, f"ids swapped at frame {k}"
    assert 0.38 < max_iou < 0.42
    assert sorted(owner.values()) == ["a", "b"]


def test_a_few_missed_frames_keep_the_id() -> None:
    tracker = ByteTracker()
    v = np.array([80.0, 10.0])
    seen: list[list[int]] = []
    for k in range(30):
        t = k * FPS_25
        dets = [] if 10 <= k < 15 else [box(*(np.array([200.0, 200.0]) + v * t))]  # 5 frames, 0.2 s, missed
        seen.append(ids(frame(tracker, t, dets)))
    assert seen == [[]] + [[1]] * 9 + [[]] * 5 + [[1]] * 15


@pytest.mark.parametrize(("missed_frames", "id_after"), [(20, [1]), (30, [])])
def test_a_track_lost_longer_than_lost_keep_s_is_gone(missed_frames: int, id_after: list[int]) -> None:
    # standing still, so the old track would match at once if it were still kept
    tracker = ByteTracker(TrackerConfig(lost_keep_s=1.0))
    for k in range(5):
        frame(tracker, k * FPS_25, [box(300, 300)])
    back = 5 + missed_frames  # 0.8 s after the last match: kept; 1.2 s: removed
    for k in range(5, back):
        assert frame(tracker, k * FPS_25, []) == []
    assert ids(frame(tracker, back * FPS_25, [box(300, 300)])) == id_after
    assert ids(frame(tracker, (back + 1) * FPS_25, [box(300, 300)])) == (id_after or [2])


def test_sparse_updates_do_not_age_a_tracked_track() -> None:
    # a track matched at the previous update is never dropped for the gap alone: at 0.5 fps, lost_keep_s = 1 s
    tracker = ByteTracker(TrackerConfig(lost_keep_s=1.0))
    assert [ids(frame(tracker, 2.0 * k, [box(300, 300)])) for k in range(4)] == [[], [1], [1], [1]]


def test_low_score_detections_continue_a_track_but_never_start_one() -> None:
    tracker = ByteTracker()
    for k in range(3):
        frame(tracker, k * FPS_25, [box(100 + 4 * k, 100)], [0.9])
    for k in range(3, 10):
        out = frame(tracker, k * FPS_25, [box(100 + 4 * k, 100)], [0.3])
        assert ids(out) == [1] and out[0].score == pytest.approx(0.3)
        np.testing.assert_array_equal(out[0].det_box_xyxy, box(100 + 4 * k, 100).astype(np.float32))

    fresh = ByteTracker()
    for k in range(10):
        assert frame(fresh, k * FPS_25, [box(100 + 4 * k, 100)], [0.3]) == []
    # high but under new_track_score: continues the same way, starts nothing
    for k in range(10, 20):
        assert frame(fresh, k * FPS_25, [box(100 + 4 * k, 100)], [0.55]) == []


def test_a_low_score_detection_does_not_revive_a_lost_track() -> None:
    tracker = ByteTracker()
    for k in range(3):
        frame(tracker, k * FPS_25, [box(100, 100)])
    frame(tracker, 3 * FPS_25, [])  # lost
    assert frame(tracker, 4 * FPS_25, [box(100, 100)], [0.3]) == []
    assert ids(frame(tracker, 5 * FPS_25, [box(100, 100)], [0.9])) == [1]  # a high one does


def random_scene(seed: int) -> list[tuple[float, list[Box], list[float], list[int]]]:
    """Objects on straight lines with drop-outs, jitter, low-score clutter and one-frame false positives."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([50, 50], [1800, 1000], (8, 2))
    velocity = rng.uniform(-120, 120, (8, 2))
    size = rng.uniform([30, 60], [80, 160], (8, 2))
    scene = []
    t = 0.0
    for _ in range(150):
        t += float(rng.choice([1 / 30, 1 / 25, 0.1]))
        boxes, scores, classes = [], [], []
        for i in range(8):
            if rng.random() < 0.1:
                continue
            c = start[i] + velocity[i] * t + rng.normal(0, 1, 2)
            boxes.append(box(*c, *size[i]))
            scores.append(float(rng.uniform(0.2, 1.0)))
            classes.append(int(rng.integers(0, 3)))
        for _ in range(int(rng.integers(0, 3))):
            boxes.append(box(*rng.uniform([0, 0], [1920, 1080]), *rng.uniform(20, 80, 2)))
            scores.append(float(rng.uniform(0.1, 0.8)))
            classes.append(int(rng.integers(0, 3)))
        scene.append((t, boxes, scores, classes))
    return scene


def test_deterministic_with_consecutive_ids() -> None:
    runs = []
    for _ in range(2):
        tracker = ByteTracker()
        runs.append([frame(tracker, t, b, s, c) for t, b, s, c in random_scene(11)])
    seen: set[int] = set()
    for first, second in zip(*runs, strict=True):
        assert ids(first) == ids(second) == sorted(ids(first))
        for x, y in zip(first, second, strict=True):
            np.testing.assert_array_equal(x.box_xyxy, y.box_xyxy)
            assert (x.class_id, x.hits, x.velocity_xy_px_s) == (y.class_id, y.hits, y.velocity_xy_px_s)
        seen.update(ids(first))
    assert seen == set(range(1, max(seen) + 1)) and max(seen) >= 8


def test_sampled_at_5_fps_with_predict_between_updates() -> None:
    tracker = ByteTracker()
    shadow = ByteTracker()  # the same updates without the predicts: predict must not change any state
    v = np.array([80.0, -20.0])

    def truth(t: float) -> Box:
        return box(*(np.array([100.0, 300.0]) + v * t))

    for k in range(16):
        t = k * 0.2
        out, shadow_out = frame(tracker, t, [truth(t)]), frame(shadow, t, [truth(t)])
        assert ids(out) == ids(shadow_out) == ([] if k == 0 else [1])
        for x, y in zip(out, shadow_out, strict=True):
            np.testing.assert_array_equal(x.box_xyxy, y.box_xyxy)
        between = tracker.predict(t + 0.1)
        assert ids(between) == ids(out)
        if k >= 8:  # the velocity has settled
            (p,) = between
            assert p.det_box_xyxy is None and p.time_since_update_s == pytest.approx(0.1)
            np.testing.assert_allclose(centre(p.box_xyxy), centre(out[0].box_xyxy) + v * 0.1, atol=0.5)
            np.testing.assert_allclose(centre(p.box_xyxy), centre(truth(t + 0.1)), atol=1.0)
    assert tracker.predict(t) != [] and tracker.predict(t + 5.0) != []
    with pytest.raises(ValueError, match="backwards"):
        tracker.predict(t - 0.01)
    assert ByteTracker().predict(1.0) == []


def test_variable_frame_rate_keeps_one_id() -> None:
    rng = np.random.default_rng(5)
    tracker = ByteTracker()
    v = np.array([-60.0, 40.0])
    t = 0.0
    for k in range(60):
        t += float(rng.uniform(0.02, 0.25))
        out = frame(tracker, t, [box(*(np.array([800.0, 300.0]) + v * t))])
        assert ids(out) == ([] if k == 0 else [1])
    np.testing.assert_allclose(out[0].velocity_xy_px_s, v, rtol=0.1)


def test_class_is_voted_by_summed_score() -> None:
    tracker = ByteTracker()
    classes = [2, 2, 2, 7, 7]  # a car seen as a truck for two frames
    for k, c in enumerate(classes):
        out = frame(tracker, k * FPS_25, [box(100, 100)], [0.9 if c == 2 else 0.95], [c])
    assert out[0].class_id == 2
    for k in range(5, 7):
        out = frame(tracker, k * FPS_25, [box(100, 100)], [0.95], [7])
    assert out[0].class_id == 7  # 4 x 0.95 > 3 x 0.9

    tie = ByteTracker()
    frame(tie, 0.0, [box(100, 100)], [0.8], [5])
    assert frame(tie, FPS_25, [box(100, 100)], [0.8], [3])[0].class_id == 3


def test_degenerate_input() -> None:
    tracker = ByteTracker()
    assert tracker.update(0.0, np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)) == []
    assert tracker.update(0.0, [], [], []) == []  # the same time again: dt = 0
    junk = [
        np.array([np.nan, 0, 10, 10]),
        np.array([0, 0, np.inf, 10]),
        np.array([50, 50, 50, 90]),  # zero width
        np.array([60, 60, 70, 40]),  # negative height
        box(300, 300),
    ]
    for k in range(1, 4):
        out = frame(tracker, k * FPS_25, junk, [0.9, 0.9, 0.9, 0.9, 0.9])
    assert ids(out) == [1]
    assert ids(frame(tracker, 3 * FPS_25, [box(300, 300)], [float("nan")])) == []  # a NaN score is dropped too
    with pytest.raises(ValueError, match="N x 4"):
        tracker.update(1.0, np.zeros((2, 4)), np.zeros(3), np.zeros(2, np.int64))


def test_time_must_not_go_backwards() -> None:
    tracker = ByteTracker()
    frame(tracker, 1.0, [box(100, 100)])
    with pytest.raises(ValueError, match="backwards"):
        frame(tracker, 0.9, [box(100, 100)])
    with pytest.raises(ValueError, match="finite"):
        frame(tracker, float("nan"), [box(100, 100)])
    assert ids(frame(tracker, 1.04, [box(100, 100)])) == [1]  # the failed calls changed nothing


def test_update_detections_takes_the_models_type() -> None:
    tracker = ByteTracker()
    dets = Detections(
        np.array([box(100, 100), box(400, 100)], np.float32),
        np.array([3, 1], np.int64),
        np.array([0.9, 0.8], np.float32),
    )
    tracker.update_detections(0.0, dets)
    out = tracker.update_detections(FPS_25, dets)
    assert ids(out) == [1, 2] and [t.class_id for t in out] == [3, 1]
    assert tracker.update_detections(2 * FPS_25, Detections.empty()) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("low_score", -0.1),
        ("high_score", 0.05),  # under low_score
        ("high_score", float("nan")),
        ("new_track_score", 0.4),  # under high_score
        ("match_iou_first", 0.0),
        ("match_iou_second", 1.5),
        ("match_iou_unconfirmed", -1.0),
        ("lost_keep_s", -1.0),
        ("lost_keep_s", float("inf")),
        ("min_hits", 0),
        ("min_hits", 2.5),
        ("fuse_score", 1),
    ],
)
def test_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TrackerConfig(**{field: value})  # type: ignore[arg-type]
