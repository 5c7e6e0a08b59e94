"""Monocular geometry of a forward-looking camera: the focal length a job implies, distance from a
vehicle's width in pixels, lateral offset, and the ground-plane distance used as a cross-check.

The camera itself (focal length from the job's params) is `pipelines.camera`'s. Pure functions, units in names.
"""

from __future__ import annotations

from framequeue.pipelines.camera import Camera, camera_for

__all__ = ["Camera", "camera_for", "distance_from_width_m", "ground_distance_m", "lateral_offset_m"]

def distance_from_width_m(focal_px: float, real_width_m: float, width_px: float) -> float:
    """Distance along the optical axis of an object `real_width_m` wide that spans `width_px` pixels."""
    if width_px <= 0:
        raise ValueError(f"width_px must be positive, got {width_px}")
    return focal_px * real_width_m / width_px


def lateral_offset_m(x_px: float, camera: Camera, distance_m: float) -> float:
    """X: metres right of the camera's line of sight of a point at image column x and distance Z."""
    return (x_px - camera.cx_px) * distance_m / camera.focal_px


def ground_distance_m(camera: Camera, y_bottom_px: float, horizon_y_px: float) -> float | None:
    """Distance to where a vehicle touches a flat road (its box's bottom edge), from the camera height and
    the horizon row; None without a height or when the contact is not below the horizon."""
    if camera.height_m is None or y_bottom_px <= horizon_y_px + 1.0:
        return None
    return camera.focal_px * camera.height_m / (y_bottom_px - horizon_y_px)
