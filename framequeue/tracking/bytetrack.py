"""ByteTrack (Zhang et al., ECCV 2022): a multi-object tracker that associates every detection box.

One update, with every kept track first predicted to the frame's time:

1. high detections (score >= high_score) vs confirmed tracks, tracked and lost, on IoU (times the detection
   score with fuse_score);
2. low detections (low_score <= score < high_score) vs the tracks of step 1 left unmatched that were tracked,
   not lost, at the previous update, on plain IoU: an object whose score drops under occlusion keeps its track,
   and a low box never starts one;
3. unconfirmed tracks vs the high detections left over; an unconfirmed track left unmatched is removed;
4. the tracked tracks left unmatched become lost; a lost track is removed once more than lost_keep_s has passed
   since its last match, and one matched again keeps its id;
5. the high detections left over with score >= new_track_score start unconfirmed tracks.

Each association is a Hungarian assignment (`_associate`). Two departures from the paper's reference: time is in
seconds (frames may be sampled at any rate, see `kalman`), and every track, those of the first frame included,
takes its id only once matched min_hits times, so the ids shown are 1, 2, 3 ... with no gaps left by tentative
tracks that died. Deterministic: tracks are kept in creation order, and nothing depends on set or dict order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from framequeue.tracking import kalman

if TYPE_CHECKING:
    from framequeue.models.predictions import Detections

__all__ = ["ByteTracker", "Track", "TrackerConfig", "iou_matrix"]

#: added to the margin of every admissible pair so that one exactly at the gate still beats leaving both unmatched
_TIE_MARGIN: Final = 1e-9


@dataclass(frozen=True)
class TrackerConfig:
    #: detections at or above this score take part in the first association and may start tracks
    high_score: float = 0.5
    #: detections in [low_score, high_score) take part in the second association only; lower ones are dropped
    low_score: float = 0.1
    #: a high detection left unmatched starts a track only at or above this score
    new_track_score: float = 0.6
    #: first association (high detections vs tracked and lost tracks): IoU (x score with fuse_score) >= this
    match_iou_first: float = 0.2
    #: second association (low detections vs the remaining tracked tracks): IoU >= this
    match_iou_second: float = 0.5
    #: remaining high detections vs unconfirmed tracks: IoU (x score with fuse_score) >= this
    match_iou_unconfirmed: float = 0.3
    #: seconds since its last match after which a lost track is removed
    lost_keep_s: float = 1.0
    #: matches (its first detection included) that confirm a track: it then takes its id and is reported
    min_hits: int = 2
    #: rank and gate high detections by IoU x score, as ByteTrack does, rather than by IoU alone
    fuse_score: bool = True

    def __post_init__(self) -> None:
        bounds = {
            "low_score": (0.0, 1.0),
            "high_score": (self.low_score, 1.0),
            "new_track_score": (self.high_score, 1.0),
        }
        for name, (lo, hi) in bounds.items():
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"TrackerConfig.{name} must be within [{lo}, {hi}], got {getattr(self, name)!r}")
        for name in ("match_iou_first", "match_iou_second", "match_iou_unconfirmed"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"TrackerConfig.{name} must be within (0, 1], got {getattr(self, name)!r}")
        if not (math.isfinite(self.lost_keep_s) and self.lost_keep_s >= 0):
            raise ValueError(f"TrackerConfig.lost_keep_s must be finite and >= 0, got {self.lost_keep_s!r}")
        if isinstance(self.min_hits, bool) or not isinstance(self.min_hits, int) or self.min_hits < 1:
            raise ValueError(f"TrackerConfig.min_hits must be an int >= 1, got {self.min_hits!r}")
        if not isinstance(self.fuse_score, bool):
            raise ValueError(f"TrackerConfig.fuse_score must be a bool, got {self.fuse_score!r}")


# eq=False: numpy fields make a field-wise == ambiguous; compare the fields instead
@dataclass(frozen=True, eq=False)
class Track:
    """One confirmed track at one time."""

    #: 1, 2, 3 ... in order of confirmation, per tracker
    track_id: int
    #: float32 (4,), (x1, y1, x2, y2) pixels, the Kalman filter's box
    box_xyxy: npt.NDArray[np.float32]
    #: float32 (4,), the detector's box matched at this update; None when predicted
    det_box_xyxy: npt.NDArray[np.float32] | None
    #: score of the last matched detection
    score: float
    #: the class with the largest summed score over the track's matches (ties: the lowest id)
    class_id: int
    #: matches so far, the first detection included
    hits: int
    #: seconds since the last match (0 for a track matched at this update)
    time_since_update_s: float
    #: (vx, vy) of the box centre, px/s, from the filter
    velocity_xy_px_s: tuple[float, float]


@dataclass(slots=True)
class _Slot:
    """A kept track's bookkeeping; its filter state is the row of the same index in the tracker's arrays."""

    #: 0 while unconfirmed
    track_id: int
    hits: int
    #: confirmed and unmatched at the last update
    lost: bool
    last_match_t_s: float
    score: float
    #: summed detection score per class id
    class_score: dict[int, float]
    det_box_xyxy: npt.NDArray[np.float32] | None

    def add_match(self, t_s: float, box: npt.NDArray[np.float32], score: float, class_id: int) -> None:
        self.hits += 1
        self.lost = False
        self.last_match_t_s = t_s
        self.score = score
        self.class_score[class_id] = self.class_score.get(class_id, 0.0) + score
        self.det_box_xyxy = box

    def voted_class(self) -> int:
        return max(self.class_score.items(), key=lambda kv: (kv[1], -kv[0]))[0]


class ByteTracker:
    """ByteTrack over one video: feed the inferred frames in time order, one tracker per job."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._t_s: float | None = None
        #: N x 8 and N x 8 x 8: the filter state of each slot, at self._t_s
        self._mean = np.zeros((0, 8))
        self._cov = np.zeros((0, 8, 8))
        self._slots: list[_Slot] = []
        self._next_id = 1
        #: slot indexes of the tracks the last update reported, by track_id
        self._reported: list[int] = []

    def update(self, t_s: float, xyxy: npt.ArrayLike, score: npt.ArrayLike, class_id: npt.ArrayLike) -> list[Track]:
        """Advance to time t_s (must not go backwards; ValueError) with this frame's detections (Nx4 float, N, N int);
        return the confirmed tracks matched at this update, ordered by track_id."""
        boxes, scores, classes = _clean(xyxy, score, class_id, self.config.low_score)
        self._advance(t_s)
        cfg = self.config
        pred = kalman.xyah_to_xyxy(self._mean[:, :4])
        fused = scores if cfg.fuse_score else None
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero(scores < cfg.high_score)
        pool = [i for i, s in enumerate(self._slots) if s.track_id]
        tentative = [i for i, s in enumerate(self._slots) if not s.track_id]

        pairs, pool_left, high_left = _associate(pred[pool], boxes[high], _take(fused, high), cfg.match_iou_first)
        matches = [(pool[r], high[c]) for r, c in pairs]
        tracked_left = [pool[r] for r in pool_left if not self._slots[pool[r]].lost]
        pairs, _, _ = _associate(pred[tracked_left], boxes[low], None, cfg.match_iou_second)
        matches += [(tracked_left[r], low[c]) for r, c in pairs]
        high = high[high_left]
        pairs, _, high_left = _associate(pred[tentative], boxes[high], _take(fused, high), cfg.match_iou_unconfirmed)
        matches += [(tentative[r], high[c]) for r, c in pairs]
        starts = high[high_left]
        starts = starts[scores[starts] >= cfg.new_track_score]

        matched_det = np.full(len(self._slots), -1)
        if matches:
            rows, dets = (np.array(x) for x in zip(*matches, strict=True))
            matched_det[rows] = dets
            measured = kalman.xyxy_to_xyah(boxes[dets])
            self._mean[rows], self._cov[rows] = kalman.update(self._mean[rows], self._cov[rows], measured)
        keep = np.ones(len(self._slots), dtype=bool)
        for i, slot in enumerate(self._slots):  # creation order, so ids go in order of creation within an update
            d = int(matched_det[i])
            if d >= 0:
                slot.add_match(t_s, boxes[d].astype(np.float32), float(scores[d]), int(classes[d]))
                if not slot.track_id and slot.hits >= cfg.min_hits:
                    slot.track_id = self._take_id()
            elif slot.track_id:
                slot.lost, slot.det_box_xyxy = True, None
            else:
                keep[i] = False
        self._keep(keep)
        self._start(t_s, boxes[starts], scores[starts], classes[starts])

        # every confirmed track left is either matched at this update or lost
        self._reported = sorted(
            (i for i, s in enumerate(self._slots) if s.track_id and not s.lost), key=lambda i: self._slots[i].track_id
        )
        return self._tracks(self._mean[self._reported], [0.0] * len(self._reported), matched=True)

    def update_detections(self, t_s: float, detections: Detections) -> list[Track]:
        """`update` with one frame's `Detections`."""
        return self.update(t_s, detections.xyxy, detections.score, detections.class_id)

    def predict(self, t_s: float) -> list[Track]:
        """Boxes of the tracks reported at the last update, predicted to t_s >= the last update time without changing
        any state (for video frames between two inferred frames). Ordered by track_id."""
        if self._t_s is None:
            return []
        dt_s = self._check_time(t_s, self._t_s)
        means = self._mean[self._reported]  # a copy (fancy indexing): the state stays as it is
        means[:, :4] += dt_s * means[:, 4:]
        since_s = [t_s - self._slots[i].last_match_t_s for i in self._reported]
        return self._tracks(means, since_s, matched=False)

    @staticmethod
    def _check_time(t_s: float, last_t_s: float | None) -> float:
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be finite, got {t_s!r}")
        if last_t_s is None:
            return 0.0
        if t_s < last_t_s:
            raise ValueError(f"t_s went backwards: {t_s} < {last_t_s}")
        return t_s - last_t_s

    def _advance(self, t_s: float) -> None:
        """Drops lost tracks too old to match at t_s, and predicts the others to t_s."""
        dt_s = self._check_time(t_s, self._t_s)
        self._t_s = t_s
        # a track matched at the previous update always gets this one, however sparse the sampling
        keep_s = self.config.lost_keep_s
        self._keep(np.array([not s.lost or t_s - s.last_match_t_s <= keep_s for s in self._slots], dtype=bool))
        lost = np.array([s.lost for s in self._slots], dtype=bool)
        # nothing confirms a lost box's height: extrapolating it would grow or shrink the box without bound
        self._mean[lost, 7] = 0.0
        self._mean, self._cov = kalman.predict(self._mean, self._cov, dt_s)

    def _keep(self, keep: npt.NDArray[np.bool_]) -> None:
        if keep.all():
            return
        self._mean, self._cov = self._mean[keep], self._cov[keep]
        self._slots = [s for s, k in zip(self._slots, keep, strict=True) if k]

    def _start(
        self,
        t_s: float,
        boxes: npt.NDArray[np.float64],
        scores: npt.NDArray[np.float64],
        classes: npt.NDArray[np.int64],
    ) -> None:
        if not len(boxes):
            return
        mean, cov = kalman.initiate(kalman.xyxy_to_xyah(boxes))
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        for box, score, class_id in zip(boxes, scores, classes, strict=True):
            slot = _Slot(0, 0, False, t_s, 0.0, {}, None)
            slot.add_match(t_s, box.astype(np.float32), float(score), int(class_id))
            if slot.hits >= self.config.min_hits:
                slot.track_id = self._take_id()
            self._slots.append(slot)

    def _take_id(self) -> int:
        track_id, self._next_id = self._next_id, self._next_id + 1
        return track_id

    def _tracks(self, means: npt.NDArray[np.float64], since_s: list[float], matched: bool) -> list[Track]:
        """The reported tracks, given their filter means (in self._reported's order)."""
        boxes = kalman.xyah_to_xyxy(means[:, :4]).astype(np.float32)
        velocities = means[:, 4:6].tolist()
        tracks = []
        for j, i in enumerate(self._reported):
            slot = self._slots[i]
            vx, vy = velocities[j]
            tracks.append(
                Track(
                    track_id=slot.track_id,
                    box_xyxy=boxes[j],
                    det_box_xyxy=slot.det_box_xyxy if matched else None,
                    score=slot.score,
                    class_id=slot.voted_class(),
                    hits=slot.hits,
                    time_since_update_s=since_s[j],
                    velocity_xy_px_s=(vx, vy),
                )
            )
        return tracks


def iou_matrix(a_xyxy: npt.ArrayLike, b_xyxy: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """N x M IoU of boxes (x1, y1, x2, y2); 0 where a box has no area."""
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    iou: npt.NDArray[np.float64] = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def _associate(
    track_xyxy: npt.NDArray[np.float64],
    det_xyxy: npt.NDArray[np.float64],
    det_score: npt.NDArray[np.float64] | None,
    gate: float,
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """(matched (track, detection) pairs, unmatched tracks, unmatched detections), each ascending.

    A pair is admissible when its similarity, IoU or IoU x score, is >= gate; the assignment maximises the summed
    margin (similarity - gate) over admissible pairs. That is ByteTrack's objective: cost 1 - similarity, with
    leaving a track and a detection unmatched costing 1 - gate (lapjv's cost_limit).
    """
    n, m = len(track_xyxy), len(det_xyxy)
    if not n or not m:
        return [], list(range(n)), list(range(m))
    sim = iou_matrix(track_xyxy, det_xyxy)
    if det_score is not None:
        sim *= det_score[None, :]
    ok = sim >= gate
    # inadmissible pairs cost 0, the same as leaving both unmatched, so the solver gains nothing by them
    rows, cols = linear_sum_assignment(np.where(ok, gate - sim - _TIE_MARGIN, 0.0))
    hit = ok[rows, cols]
    pairs = [(int(r), int(c)) for r, c in zip(rows[hit], cols[hit], strict=True)]
    track_done = np.zeros(n, dtype=bool)
    det_done = np.zeros(m, dtype=bool)
    track_done[rows[hit]] = True
    det_done[cols[hit]] = True
    return pairs, np.flatnonzero(~track_done).tolist(), np.flatnonzero(~det_done).tolist()


def _take(values: npt.NDArray[np.float64] | None, index: npt.NDArray[np.intp]) -> npt.NDArray[np.float64] | None:
    return None if values is None else values[index]


def _clean(
    xyxy: npt.ArrayLike, score: npt.ArrayLike, class_id: npt.ArrayLike, low_score: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The usable detections: finite, with positive width and height, scored >= low_score. ValueError on shapes."""
    boxes = np.asarray(xyxy, dtype=np.float64)
    scores = np.asarray(score, dtype=np.float64)
    classes = np.asarray(class_id)
    if boxes.size == 0 and scores.size == 0 and classes.size == 0:
        boxes = boxes.reshape(0, 4)
        scores, classes = scores.reshape(0), classes.reshape(0)
    n = len(boxes)
    if boxes.shape != (n, 4) or scores.shape != (n,) or classes.shape != (n,):
        raise ValueError(f"detections must be N x 4, N, N: got {boxes.shape}, {scores.shape}, {classes.shape}")
    ok = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    ok[ok] = (boxes[ok, 2] > boxes[ok, 0]) & (boxes[ok, 3] > boxes[ok, 1]) & (scores[ok] >= low_score)
    return boxes[ok], scores[ok], classes[ok].astype(np.int64)
