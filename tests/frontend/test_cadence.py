"""Cadence on discs made as real discs are: soft telecine (mpeg2enc -p), cadence breaks, hybrid
film/video, PAL phase-shifted film and a small progressive clip idet calls interlaced.

Each test asserts what a viewer notices: how many pictures come out, that each source picture is
shown once and in order (matched against the lossless source pictures), and the frame times.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from remaster.disc import probe as probes
from remaster.frames import commands
from remaster.frontend import plan as plans
from remaster.frontend import prepare
from remaster.frontend.cadence import cadence_sections, frame_times, section_times
from remaster.frontend.scan import PULLDOWN_MIN_FRACTION, detect_scan, hybrid_decision, pulldown_fraction
from remaster.output.preview import read_frame
from remaster.run import media
from remaster.run.errors import RemasterError
from remaster.run.settings import FrontEndSettings
from support import cadence

needs_mjpegtools = pytest.mark.skipif(not (shutil.which("mpeg2enc") and shutil.which("mplex")),
                                      reason="mjpegtools (mpeg2enc, mplex) not installed")


@pytest.mark.unit
def test_film_runs_shorter_than_a_cadence_cycle_inside_video_are_video():
    """Two clean frames in native video (a still moment field matching leaves clean) made a film section
    of their own before: the master's video part was cut into one- and two-frame film/video sections."""
    small, big = 100, 100_000
    combed = [True] * 10 + [False] * 2 + [True] * 8 + [False] + [True] * 9 + [False] * 30
    diffs = [big] * len(combed)
    for i in range(32, 60, 5):
        diffs[i] = small
    sections = cadence_sections(combed, diffs)
    assert [(s["kind"], s["start"], s["end"]) for s in sections] == [("video", 0, 30), ("film", 30, 60)]
    # a title that is all film keeps even a short film run; a five-frame run (one whole cycle) stays film
    assert [s["kind"] for s in cadence_sections([False] * 3, [big] * 3)] == ["film"]
    combed = [True] * 10 + [False] * 5 + [True] * 10
    assert [s["kind"] for s in cadence_sections(combed, [big] * 25)] == ["video", "film", "video"]


def _prepare(source: Path, tmp_path: Path, **settings) -> tuple[dict, dict, Path]:
    """Detect, plan and prepare `source` as the workflow does; (plan, facts, prepared file)."""
    ffmpeg = media.tool("ffmpeg")
    probe, _ = probes.probe_title(source)
    detected = detect_scan(source, ffmpeg=ffmpeg)
    plan = plans.make_plan(probe, FrontEndSettings(**settings), title=source, detected=detected)
    out = tmp_path / f"{source.stem}.prepared.mkv"
    facts = prepare.prepare_title(source, plan, out, expected_seconds=probe.video.duration,
                                  log=logging.getLogger("test"))
    return plan, facts, out


@pytest.mark.unit
def test_cadence_sections_split_at_a_break_and_between_film_and_video():
    small, big = 100, 100_000
    # film with repeats at cycle position 2, a cadence break to position 4, then combed video
    diffs = [big] * 30
    for i in (2, 7, 12, 19, 24, 29):
        diffs[i] = small
    combed = [False] * 30 + [True] * 10
    diffs += [big] * 10
    sections = cadence_sections(combed, diffs)
    assert [(s["kind"], s["start"], s["end"], s["phase"]) for s in sections] == [
        ("film", 0, 13, 2), ("film", 13, 30, 4), ("video", 30, 40, None)]
    timed = section_times(sections)
    # 13 frames less 3 repeats, 17 less 4, then 10 frames of video at the field rate
    assert [s.frames for s in timed] == [10, 13, 20]
    times = frame_times(timed)
    assert all(b > a for a, b in zip(times, times[1:]))  # strictly increasing, no repeated timestamp
    assert times[-1] < Fraction(40 * 1001, 30000)
    assert len(frame_times(timed, factor=2)) == 2 * 43


@needs_mjpegtools
def test_soft_telecine_gives_the_exact_film_pictures(tmp_path):
    disc, film = cadence.soft_telecine(tmp_path)
    plan, facts, out = _prepare(disc, tmp_path)
    assert plan.scan == "telecine" and plan.pulldown is True
    assert "soft telecine" in plan.decisions["scan"].evidence
    assert facts["frame_count"] == cadence.SOFT_FILM_FRAMES and facts["fps"] == "24000/1001"
    # every film picture once, in order: no picture shown twice, none lost
    assert cadence.best_matches(cadence.luma_frames(out), cadence.luma_frames(film)) == list(
        range(cadence.SOFT_FILM_FRAMES))
    # `scan: telecine` named in the config: the flags are still honoured (plan_disc measures them)
    flags = pulldown_fraction(disc, ffmpeg=media.tool("ffmpeg"))
    assert flags == pytest.approx(0.25, abs=0.02)
    forced = plans.make_plan(probes.probe_title(disc)[0], FrontEndSettings(scan="telecine"), title=disc,
                             pulldown=flags > PULLDOWN_MIN_FRACTION)
    assert forced.filters.startswith("repeatfields,copy,fieldmatch") and forced.fps == "24000/1001"


@needs_mjpegtools
def test_cadence_break_between_soft_and_hard_telecine_repeats_no_picture(tmp_path):
    disc, film = cadence.mixed_telecine(tmp_path)
    plan, facts, out = _prepare(disc, tmp_path)
    assert plan.scan == "telecine" and len(plan.cadence.sections) == 2
    shown = cadence.best_matches(cadence.luma_frames(out), cadence.luma_frames(film))
    # no picture twice, in order; at the join the fields change parity and fieldmatch weaves pictures 21/22
    # (their combing under its threshold on this slow pan), so 21 may be lost (docs/frontend.md)
    assert shown == sorted(set(shown))
    total = cadence.MIXED_SOFT_FRAMES + cadence.MIXED_HARD_FRAMES
    assert set(range(total)) - set(shown) <= {cadence.MIXED_SOFT_FRAMES - 1}


@pytest.fixture(scope="module")
def hybrid_disc(tmp_path_factory) -> tuple[Path, Path, Path]:
    return cadence.hybrid(tmp_path_factory.mktemp("hybrid"))


def test_hybrid_title_film_once_video_at_field_rate_with_timestamps(tmp_path, hybrid_disc):
    disc, film, video = hybrid_disc
    plan, facts, out = _prepare(disc, tmp_path)
    assert plan.scan == "hybrid" and plan.vfr is True
    assert [s["kind"] for s in plan.cadence.sections] == ["film", "video"]
    films, fields = cadence.HYBRID_FILM_FRAMES, 2 * cadence.HYBRID_VIDEO_FRAMES
    assert facts["frame_count"] == films + fields
    frames = cadence.luma_frames(out)
    assert cadence.best_matches(frames[:films], cadence.luma_frames(film)) == list(range(films))
    assert cadence.best_matches(frames[films:], cadence.luma_frames(video)) == list(range(fields))
    times = frame_times(facts["timed"])
    assert len(times) == facts["frame_count"]
    assert times[1] - times[0] == Fraction(1001, 24000) and times[-1] - times[-2] == Fraction(1001, 60000)
    assert abs(facts["duration"] - 90 * 1001 / 30000) < 1e-6  # the source's 90 frames, to the frame


def test_hybrid_title_constant_rate_when_vfr_is_off(tmp_path, hybrid_disc):
    disc, film, video = hybrid_disc
    plan, facts, out = _prepare(disc, tmp_path, vfr=False)
    assert plan.vfr is False and facts["vfr"] is False and facts["fps"] == "60000/1001"
    # 50 telecined frames of film shown 3:2 at 59.94 (100 frames) and 80 fields of video
    assert abs(facts["frame_count"] - 180) <= 1


def test_scan_hybrid_in_the_config_finds_a_short_film_part(tmp_path):
    """A title mostly video with a short film part: too few repeated fields for `auto` to look for film
    (it deinterlaces the film, each picture shown two or three times); `scan: hybrid` maps it."""
    disc, film, video = cadence.hybrid(tmp_path, film_frames=cadence.SHORT_FILM_FRAMES,
                                       video_frames=cadence.SHORT_FILM_VIDEO_FRAMES)
    ffmpeg = media.tool("ffmpeg")
    assert detect_scan(disc, ffmpeg=ffmpeg).scan == "interlaced"
    probe, _ = probes.probe_title(disc)
    settings = FrontEndSettings(scan="hybrid")
    with pytest.raises(RemasterError, match="scan: hybrid needs the title's frame map"):
        plans.make_plan(probe, settings, title=disc)
    plan = plans.make_plan(probe, settings, title=disc, detected=hybrid_decision(disc, ffmpeg=ffmpeg))
    assert plan.scan == "hybrid" and plan.decisions["scan"].source == "config"
    assert re.search(r"scan: hybrid in the config; .* finds \d+ film and \d+ interlaced video frames",
                     plan.decisions["scan"].evidence)
    out = tmp_path / "prepared.mkv"
    facts = prepare.prepare_title(disc, plan, out, expected_seconds=probe.video.duration,
                                  log=logging.getLogger("test"))
    films, fields = cadence.SHORT_FILM_FRAMES, 2 * cadence.SHORT_FILM_VIDEO_FRAMES
    assert facts["frame_count"] == films + fields
    frames = cadence.luma_frames(out)
    # every film picture once and in order, then every video field as a picture
    assert cadence.best_matches(frames[:films], cadence.luma_frames(film)) == list(range(films))
    assert cadence.best_matches(frames[films:], cadence.luma_frames(video)) == list(range(fields))


@needs_mjpegtools
def test_soft_telecined_film_joined_to_interlaced_video(tmp_path):
    disc, film, video = cadence.soft_hybrid(tmp_path)
    plan, facts, out = _prepare(disc, tmp_path)
    assert plan.scan == "hybrid" and plan.pulldown is True
    films, fields = cadence.SOFT_HYBRID_FILM_FRAMES, 2 * cadence.SOFT_HYBRID_VIDEO_FRAMES
    assert facts["frame_count"] == films + fields
    frames = cadence.luma_frames(out)
    assert cadence.best_matches(frames[:films], cadence.luma_frames(film)) == list(range(films))
    assert cadence.best_matches(frames[films:], cadence.luma_frames(video)) == list(range(fields))


def test_pal_phase_shifted_film_is_field_matched_to_25p(tmp_path):
    disc, film = cadence.pal_phase_shifted(tmp_path)
    plan, facts, out = _prepare(disc, tmp_path)
    assert plan.scan == "phase_shifted" and "decimate" not in plan.filters
    assert facts["frame_count"] == cadence.PAL_PHASE_FRAMES and facts["fps"] == "25/1"
    shown = cadence.best_matches(cadence.luma_frames(out), cadence.luma_frames(film))
    # the first picture lacks its delayed field; every later one is shown once, in order
    assert shown[1:] == list(range(cadence.PAL_PHASE_FRAMES - 1))


def test_small_progressive_clip_idet_calls_interlaced_stays_progressive(tmp_path):
    clip = cadence.small_progressive(tmp_path)
    decision = detect_scan(clip, ffmpeg=media.tool("ffmpeg"))
    multi = decision.evidence["idet_multiple"]
    assert multi["tff"] + multi["bff"] > 0.5 * cadence.SMALL_FRAMES  # idet alone would double the frames
    assert decision.scan == "progressive", decision.reason
    assert decision.evidence["own_fields_clean"] >= 0.9


def test_full_range_capture_keeps_its_range_for_the_decoder(tmp_path):
    capture = cadence.full_range_capture(tmp_path)
    plan, facts, out = _prepare(capture, tmp_path)
    colour = plan.colour
    assert colour.range == "pc"
    assert cadence.stored_luma_range(capture) == (0, 255)
    low, high = cadence.stored_luma_range(out)
    assert low < 8 and high > 247  # the prepared frames are not squeezed into 16-235
    # the upscaler's decoder reads them as full range: black stays black, white white
    rgb = subprocess.run(commands.decoder_command(out, colour.decoder_matrix, in_range=colour.range),
                         capture_output=True, check=True).stdout
    values = np.frombuffer(rgb, np.uint8)
    assert values.min() < 8 and values.max() > 247
    clipped = subprocess.run(commands.decoder_command(out, colour.decoder_matrix, in_range="tv"),
                             capture_output=True, check=True).stdout
    # read as limited range (the old behaviour) the darks and lights clip: many more pure 0/255 values
    assert (np.frombuffer(clipped, np.uint8) == 0).sum() > 2 * (values == 0).sum()

    # the preview reads the title with the same decision and shows the frame the upscaler gets (it read
    # every source as limited range before, clipping what the master keeps)
    probe, timestamps = probes.probe_title(capture)
    middle = len(timestamps) // 2
    frame = read_frame(capture, timestamps[middle], probe, plan)
    upscaler = values.reshape(-1, *frame.shape)[middle]
    assert np.abs(frame.astype(int) - upscaler).max() <= 1


@pytest.mark.unit
def test_prepare_drains_ffmpegs_messages_while_reading_its_progress(tmp_path, monkeypatch):
    """ffmpeg with much to say (a damaged disc's decode errors) must not hang the job: its messages went
    to a pipe no one read while the progress lines were read."""
    import sys
    import threading

    chatty = [sys.executable, "-c", "import sys; sys.stderr.write('decode error\\n' * 40000); "
              "sys.stderr.write('the last message\\n'); print('progress=end'); sys.exit(1)"]
    monkeypatch.setattr(prepare, "prepare_command", lambda *args, **kwargs: chatty)
    probe = probes.Probe.from_dict({
        "title_file": "title.vob", "frame_count": 25, "format": {"start_time": 0.0}, "audio": [], "subtitles": [],
        "chapters": [], "video": {"fps": "25/1", "dar": "4:3", "sar": "1:1", "width": 64, "height": 48, "start_time": 0.0}})
    plan = plans.make_plan(probe, FrontEndSettings(scan="progressive"), title=tmp_path / "title.vob")
    outcome = []

    def run():
        try:
            prepare.prepare_title(tmp_path / "title.vob", plan, tmp_path / "prepared.mkv", expected_seconds=1,
                                  log=logging.getLogger("test"))
        except RemasterError as error:
            outcome.append(str(error))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "prepare_title hung on ffmpeg's undrained messages"
    assert outcome and "title.vob: preparing the frames failed: the last message" in outcome[0]


@pytest.mark.unit
def test_a_failing_analysis_is_one_line_naming_the_file(tmp_path):
    from remaster.frontend.measure import ffmpeg_log

    not_video = tmp_path / "notes.vob"
    not_video.write_text("not a video\n")
    cmd = [media.tool("ffmpeg"), "-hide_banner", "-nostdin", "-i", media.input_path(not_video), "-f", "null", "-"]
    with pytest.raises(RemasterError) as error:
        ffmpeg_log(cmd)
    assert str(error.value).startswith(f"{not_video}: ffmpeg failed analysing the pictures")
    assert "\n" not in str(error.value)


@pytest.mark.unit
def test_gaps_of_a_variable_rate_source_are_no_damage():
    """A scratch loses pictures in one place; a variable-rate clip skips frame slots all along. Only the
    scratch is named as pictures lost to damage (the verify step and the report read these ranges)."""
    step = 1001 / 30000
    scratched = [k * step for k in range(100) if not 40 <= k < 46]
    assert prepare.damaged_ranges(scratched) == [(round(40 * step, 3), round(46 * step, 3))]
    variable = [k * step for k in range(18) if k >= 9 or k % 3]  # every third slot empty in its first half
    assert prepare.damaged_ranges(variable) == []
