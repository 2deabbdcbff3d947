"""The probe's frame count and duration are the decoder's real timeline: every picture a player shows; the
probe is a record (probe.json) read back as it was written."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import pytest

from remaster.disc.probe import (
    DiscFacts,
    Probe,
    ProbeAudio,
    ProbeChapter,
    ProbeFormat,
    ProbeSubtitle,
    ProbeVideo,
    probe_title,
)
from support.sources import CLIPS, decoded_frames, make_clip


def test_packed_b_frame_avi_counts_the_picture_decoded_without_a_time(tmp_path):
    """Xvid's packed B-frames leave the last picture without a timestamp; it is shown all the same, and
    the master holds it: the probe counted 45 where the master had 46 (verify then said +1 frame)."""
    clip = make_clip(tmp_path, next(c for c in CLIPS if c.name == "r2997_avi"))
    probe, timestamps = probe_title(clip)
    shown = decoded_frames(clip)
    assert probe.frame_count == len(timestamps) == len(shown)
    assert abs(probe.video.duration - float(len(shown) / Fraction(30000, 1001))) < 1e-3


def _probe() -> Probe:
    return Probe(
        title_file="results/film/read_title/title.mkv",
        format=ProbeFormat(name="matroska,webm", start_time=0.2, duration=100.0, size=1234, title=None),
        video=ProbeVideo(index=0, codec="mpeg2video", width=720, height=480, pix_fmt="yuv420p", fps="30000/1001",
                         sar="8:9", dar="4:3", field_order="tt", color_space="smpte170m", closed_captions=True,
                         start_time=0.2, duration=100.1),
        frame_count=3000,
        audio=(ProbeAudio(index=1, codec="ac3", channels=6, sample_rate="48000", bit_rate="448000", language="eng",
                          id="0x80", start_time=0.25, duration=100.0),),
        subtitles=(ProbeSubtitle(index=2, codec="dvd_subtitle", language="fre", id="0x20", start_time=1.0,
                                 subpictures=5, forced=2),
                   ProbeSubtitle(index=3, codec="subrip", start_time=0.2)),
        chapters=(ProbeChapter(start=0.2, end=60.2), ProbeChapter(start=60.2, end=100.2, title="Two")),
        source_parts=("VIDEO_TS/VTS_01_1.VOB",),
    )


@pytest.mark.unit
@pytest.mark.parametrize("disc", [None, DiscFacts(name="My Film", read_from="ifo", title_number=2, vts=1,
                                                  duration=100.1, aspect="4:3", system="ntsc", chapters=(0.0, 60.0),
                                                  audio_languages={"0x80": "en"}, subtitle_languages={"0x20": "fr"})])
def test_the_probe_reads_back_as_it_was_written(tmp_path, disc):
    probe = dataclasses.replace(_probe(), disc=disc)
    path = tmp_path / "probe.json"
    probe.dump(path)
    assert Probe.load(path) == probe
    data = json.loads(path.read_text())
    # probe.json keeps ffprobe's keys; the subpicture counts only where they were counted; no disc: null
    assert list(data) == ["title_file", "format", "video", "frame_count", "audio", "subtitles", "chapters",
                          "source_parts", "disc"]
    assert data["video"]["fps"] == "30000/1001" and data["audio"][0]["sample_rate"] == "48000"
    assert "forced" in data["subtitles"][0] and "forced" not in data["subtitles"][1]
    assert data["disc"] == (None if disc is None else {**disc.as_dict(), "chapters": [0.0, 60.0]})
    assert Probe.load(path).subtitles[0].mixed and not Probe.load(path).subtitles[1].mixed
