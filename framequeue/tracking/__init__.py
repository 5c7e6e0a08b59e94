"""Multi-object tracking of detections across video frames: ByteTrack on a time-aware Kalman filter."""

from framequeue.tracking.bytetrack import ByteTracker, Track, TrackerConfig, iou_matrix

__all__ = ["ByteTracker", "Track", "TrackerConfig", "iou_matrix"]
