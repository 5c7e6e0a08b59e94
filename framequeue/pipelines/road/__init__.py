"""The `road` pipeline: lanes, tracked vehicles, and the following distance, time gap and TTC to the lead
vehicle on road-facing dashcam video, with the `following_too_close` and `forward_collision_warning` events.

Modules, pure first: `params` (defaults, profiles, submit checks), `geometry` (camera, distance from width),
`kinematics` (smoothed distance, TTC fit, ego speed), `lanes` (smoothing, ego lane), `lead` (candidates,
path test, hysteresis), `events` (the interval rules), `overlay` and `timeline` (pictures), and `pipeline`,
which wires them into the staged run.
"""
