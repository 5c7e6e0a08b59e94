"""A segment's lead-in stays short when keyframes are far apart (issue 17, bad input): the split never cuts
mid-GOP, and a segment whose lead-in keyframe lies a giant GOP back starts at its own keyframe instead of
decoding and inferring most of the segment before it again."""

from __future__ import annotations

from fractions import Fraction

from framequeue.media.keyframes import Packet, VideoIndex, index_packets, plan
from framequeue.worker.split import bounded_lead_in


def video(seconds: int, fps: int, gop_frames: int) -> VideoIndex:
    """The index of a constant-rate video (time base 1/fps) with a keyframe every gop_frames frames."""
    packets = [Packet(i, i, i % gop_frames == 0) for i in range(seconds * fps)]
    return index_packets(packets, Fraction(1, fps), Fraction(fps))


def test_keyframes_far_apart_cut_only_where_keyframes_are_and_drop_a_giant_lead_in() -> None:
    plans = [bounded_lead_in(p, 1.0) for p in plan(video(200, 2, 300), 60.0, 1.0)]
    assert [(p.start_s, p.end_s, p.first_frame, p.frames) for p in plans] == [(0.0, 150.0, 0, 300),
                                                                            (150.0, 200.0, 300, 100)]
    # its lead-in keyframe is 0 s (150 s back): it starts cold at its own keyframe
    assert (plans[1].lead_in_start_s, plans[1].lead_in_frames) == (150.0, 0)


def test_one_keyframe_gives_one_segment() -> None:
    plans = plan(video(200, 2, 1000), 60.0, 1.0)
    assert [(p.start_s, p.end_s, p.frames) for p in plans] == [(0.0, 200.0, 400)]


def test_an_ordinary_gop_keeps_its_lead_in() -> None:
    plans = plan(video(180, 10, 20), 60.0, 1.0)
    assert [bounded_lead_in(p, 1.0) for p in plans] == plans
    assert [(p.lead_in_start_s, p.lead_in_frames) for p in plans[1:]] == [(58.0, 20), (118.0, 20)]


def test_a_lead_in_within_a_quarter_of_its_segment_is_kept() -> None:
    # a 10 s GOP, segments of 60 s: the lead-in keyframe 10 s back is within 1 + 15 s
    plans = plan(video(180, 2, 20), 60.0, 1.0)
    assert [bounded_lead_in(p, 1.0) for p in plans] == plans
    assert plans[1].start_s - plans[1].lead_in_start_s == 10.0
