"""The probe's frame count and duration are the decoder's real timeline: every picture a player shows."""

from __future__ import annotations

from fractions import Fraction

from remaster.disc.probe import probe_title
from support.sources import CLIPS, decoded_frames, make_clip


def test_packed_b_frame_avi_counts_the_picture_decoded_without_a_time(tmp_path):
    """Xvid's packed B-frames leave the last picture without a timestamp; it is shown all the same, and
    the master holds it: the probe counted 45 where the master had 46 (verify then said +1 frame)."""
    clip = make_clip(tmp_path, next(c for c in CLIPS if c.name == "r2997_avi"))
    probe, timestamps = probe_title(clip)
    shown = decoded_frames(clip)
    assert probe["frame_count"] == len(timestamps) == len(shown)
    assert abs(probe["video"]["duration"] - float(len(shown) / Fraction(30000, 1001))) < 1e-3
