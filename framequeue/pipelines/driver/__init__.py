"""The `driver` pipeline: head pose and distraction events from driver-facing dashcam video.

Its pure cores live here: `headpose` (3-D head pose from FaceMesh's 468 landmarks) and `one_euro` (the
jitter filter for the angles).
"""
