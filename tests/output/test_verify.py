"""The master verified against its source: a good one passes; a dropped frame, a missing or altered audio
track and a wrong aspect each fail, naming the property; and a failed check stops the workflow."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from remaster.disc.probe import Probe
from remaster.frontend.plan import Plan, make_plan
from remaster.output.flicker import FlickerMeter, summary
from remaster.output.verify import Check, Flicker, LostPictures, Verification, expectations, verify_master
from remaster.run.records import Prepared
from remaster.run.settings import FrontEndSettings
from support.workflow import snakemake, write_config

SHARD_FRAMES = 10  # 24 frames → shards of 10, 10 and 4
FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}
RESULTS = Path("results") / "my_disc"


@pytest.fixture(scope="module")
def run(tmp_path_factory, demo_disc, tiny_model):
    """One finished run of the demo-like disc (24 frames, two AC3 tracks, 4:3)."""
    workdir = tmp_path_factory.mktemp("verify")
    write_config(workdir, source=demo_disc, output="masters/my disc.mkv", models=[str(tiny_model)],
                 shard_frames=SHARD_FRAMES, encoder=FAST_ENCODER)
    snakemake(workdir, "--cores", "2", "--resources", "gpu=1")
    return workdir


def verify(workdir: Path, master: Path):
    """remaster.verify on `master`, with what the workflow's verify_master rule gives it."""
    results = workdir / RESULTS
    probe = Probe.load(results / "probe_source" / "probe.json")
    return verify_master(
        master, probe, workdir / probe.title_file, plan=Plan.load(results / "plan_disc" / "plan.json"),
        prepared=Prepared.load(results / "prepare_title" / "prepared.json"),
        prepared_file=results / "prepare_title" / "prepared.mkv",
    )


def remux(workdir: Path, name: str, *args: str) -> Path:
    """A copy of the good master made by hand with ffmpeg, broken in one way."""
    out = workdir / name
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", f"file:{workdir / 'masters' / 'my disc.mkv'}",
                    *args, f"file:{out}"], check=True)
    return out


def test_the_workflow_verified_its_master(run):
    path = run / RESULTS / "verify_master" / "verify.json"
    report = Verification.load(path)
    assert report.ok and report.master.endswith("my disc.mkv")
    names = {check.name for check in report.checks}
    assert {"frame_count", "decodes_cleanly", "duration", "audio_tracks", "audio_0", "audio_1", "chapters",
            "display_aspect"} <= names
    assert all(check.ok for check in report.checks)
    assert [shard.shard for shard in report.flicker.shards] == ["0000", "0001", "0002"]
    # the keys whoever reads the file without remaster finds
    written = json.loads(path.read_text())
    assert written["ok"] is True and set(written) == {"master", "ok", "checks", "source_damage", "flicker"}
    assert set(written["flicker"]) == {"overall", "shards"} and "motion_ratio" in written["flicker"]["overall"]
    assert "every check passed" in (run / "logs" / "my_disc" / "verify_master.log").read_text()


def test_good_master_passes(run):
    result = verify(run, run / "masters" / "my disc.mkv")
    assert result.ok, result.failure_line()


def test_dropped_frame_fails_on_frame_count(run):
    dropped = remux(run, "dropped.mkv", "-map", "0", "-c", "copy", "-c:v", "libx264", "-preset", "ultrafast",
                    "-vf", r"select=not(eq(n\,5))")
    result = verify(run, dropped)
    assert [check.name for check in result.failures] == ["frame_count"]
    assert "frame_count is 23, expected 24 (-1 frames)" in result.failure_line()


def test_missing_audio_track_fails(run):
    missing = remux(run, "one audio.mkv", "-map", "0", "-map", "-0:a:1", "-c", "copy")
    result = verify(run, missing)
    assert {check.name for check in result.failures} == {"audio_tracks", "audio_1"}
    assert "audio_tracks: the master has 1 audio tracks, the source 2 (-1)" in result.failure_line()


def test_audio_that_is_not_bit_identical_fails(run):
    swapped = remux(run, "swapped.mkv", "-map", "0:v", "-map", "0:a:1", "-map", "0:a:0", "-c", "copy")
    result = verify(run, swapped)
    assert {check.name for check in result.failures} == {"audio_0", "audio_1"}
    assert "audio_0: track 0 is not bit-identical" in result.failure_line()


def test_wrong_aspect_fails(run):
    wide = remux(run, "wide.mkv", "-map", "0", "-c", "copy", "-aspect", "16:9")
    result = verify(run, wide)
    assert [check.name for check in result.failures] == ["display_aspect"]
    assert "display_aspect is 1.7778 (16:9), expected 1.3333 (+33.3%" in result.failure_line()


def test_audio_out_of_sync_by_more_than_a_frame_fails(run):
    master = run / "masters" / "my disc.mkv"
    late = run / "late audio.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", f"file:{master}", "-itsoffset", "0.1", "-i",
                    f"file:{master}", "-map", "0:v", "-map", "1:a", "-c", "copy", f"file:{late}"], check=True)
    result = verify(run, late)
    assert {check.name for check in result.failures} == {"audio_0_sync", "audio_1_sync"}
    assert "audio_0_sync: track 0 starts" in result.failure_line() and "+100 ms" in result.failure_line()


def test_missing_chapter_fails(run):
    results = run / RESULTS
    probe = Probe.load(results / "probe_source" / "probe.json")
    plan = Plan.load(results / "plan_disc" / "plan.json")
    master = run / "masters" / "my disc.mkv"
    # the source's chapters and one more than the master holds
    result = verify_master(master, probe, run / probe.title_file,
                           plan=dataclasses.replace(plan, chapters=(*plan.chapters, 0.5)),
                           prepared=Prepared.load(results / "prepare_title" / "prepared.json"),
                           prepared_file=results / "prepare_title" / "prepared.mkv")
    assert [check.name for check in result.failures] == ["chapters"]
    assert "chapters: the master has" in result.failure_line() and "(-1)" in result.failure_line()


@pytest.mark.unit
def test_pictures_lost_to_source_damage_are_expected_and_named():
    """A damaged disc: the front end logged 5 pictures its span promised and the title could not hold;
    the master is judged on that timeline (it ended red: -5 frames), and the loss is named, not failed."""
    probe = Probe.from_dict({
        "title_file": "title.vob", "frame_count": 355, "format": {"start_time": 0.0}, "audio": [], "subtitles": [],
        "chapters": [], "video": {"fps": "30000/1001", "dar": "4:3", "sar": "8:9", "width": 720, "height": 480,
                                  "duration": 12.012, "start_time": 0.0}})
    plan = make_plan(probe, FrontEndSettings(scan="progressive"), title=Path("title.vob"))
    facts = {"frame_count": 355, "fps": "30000/1001", "width": 640, "height": 480, "damaged": [[2.94, 3.14]],
             "repeated_frames": 6, "dropped_frames": 0}
    damaged = expectations(probe, plan, Prepared.from_facts(facts, 100))
    assert damaged.lost_frames == 5 and abs(damaged.duration - 355 * 1001 / 30000) < 1e-6
    from remaster.output.verify import _damage

    result = Verification("damaged.mkv", source_damage=_damage(damaged))
    assert [d.pictures for d in result.source_damage] == [6, 5]
    assert result.damage_line().startswith("damaged.mkv: 11 pictures lost to source damage")
    # without a record of damage the same shortfall stays a failure: nothing logged, nothing excused
    clean = expectations(probe, plan, Prepared.from_facts({**facts, "damaged": [], "repeated_frames": 0}, 100))
    assert clean.lost_frames == 0 and clean.duration == 12.012


@pytest.mark.unit
def test_verification_record_round_trips_and_a_damaged_one_is_named(tmp_path):
    """verify_master writes the verification, the report reads it back typed: checks, lost pictures, flicker."""
    meter = FlickerMeter([("0000", 0, 3), ("0001", 3, 5)])
    rng = np.random.default_rng(1)
    for _ in range(5):
        frame = rng.integers(0, 255, (8, 8), dtype=np.uint8)
        meter.add(frame, frame.copy())
    result = Verification("master.mkv", (Check("frame_count", True, 5, 5, "frame_count is 5"),
                                         Check("chapters", False, [0.0, 1.5], [0.0], "chapters: one missing")),
                          (LostPictures(2.94, 3.14, 6), LostPictures(None, None, 5)), Flicker.of(meter.result()))
    path = tmp_path / "verify.json"
    result.dump(path)
    loaded = Verification.load(path)
    assert loaded == result and not loaded.ok and loaded.failure_line() == result.failure_line()
    assert loaded.damage_line() == result.damage_line() and loaded.flicker.overall["frames"] == 5
    written = json.loads(path.read_text())
    assert written["ok"] is False and written["flicker"]["shards"][1]["first_frame"] == 3
    assert written["source_damage"][1] == {"start": None, "end": None, "pictures": 5}


def test_flicker_is_measured_per_shard(run):
    lines = (run / RESULTS / "verify_master" / "flicker.tsv").read_text().splitlines()
    header, rows = lines[0].split("\t"), [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]
    assert header[:3] == ["shard", "first_frame", "frames"]
    assert [(row["shard"], int(row["frames"])) for row in rows] == [("0000", 10), ("0001", 10), ("0002", 4)]
    for row in rows:
        # the demo pans slowly: the master moves as much as its source does, give or take the model
        assert 0.8 < float(row["motion_ratio"]) < 1.25, row


def test_flicker_meter_sees_added_noise():
    rng = np.random.default_rng(0)
    still = rng.integers(40, 200, (48, 64), dtype=np.uint8)
    bounds = [("0000", 0, 5), ("0001", 5, 10)]
    steady, noisy = FlickerMeter(bounds), FlickerMeter(bounds)
    for n in range(10):
        frame = np.roll(still, n // 5, axis=1)  # one cut between the shards, otherwise still
        steady.add(frame, frame.copy())
        flicker = np.clip(frame.astype(np.int16) + rng.integers(-6, 7, frame.shape), 0, 255).astype(np.uint8)
        noisy.add(frame, flicker)
    assert [s.frames for s in steady.result()] == [5, 5]
    assert summary(steady.result())["motion_ratio"] == 1.0
    noisy_summary = summary(noisy.result())
    assert noisy_summary["master_static_noise"] > 2 > 0.1 > noisy_summary["source_static_noise"]
    assert noisy_summary["static_ratio"] > 20
    assert noisy.result()[0].static_ratio is None  # the source is perfectly still there: no ratio, no crash


@pytest.mark.unit
def test_expected_count_follows_the_prepared_title():
    probe = Probe.from_dict({
        "title_file": "title.vob", "frame_count": 30, "format": {"start_time": 0.0}, "audio": [], "subtitles": [],
        "chapters": [], "video": {"fps": "30000/1001", "dar": "4:3", "sar": "8:9", "width": 720, "height": 480,
                                  "duration": 1.001, "start_time": 0.0}})
    plan = make_plan(probe, FrontEndSettings(scan="telecine", field_order="tff"), title=Path("title.vob"))
    prepared = Prepared.from_facts({"frame_count": 24, "fps": "24000/1001"}, shard_frames=10)
    ivtc = expectations(probe, plan, prepared)
    # inverse telecine keeps the duration; the models got the plan's square-pixel frames
    assert (ivtc.frames, ivtc.fps, ivtc.duration, ivtc.width) == (24, Fraction(24000, 1001), 1.001, 640)
    assert expectations(probe, plan, prepared, interpolation_factor=2).frames == 48


def test_failed_check_stops_the_workflow(run):
    """Last in this file: it leaves a broken master behind."""
    dropped = remux(run, "dropped again.mkv", "-map", "0", "-c", "copy", "-c:v", "libx264", "-preset", "ultrafast",
                    "-vf", r"select=not(eq(n\,5))")
    shutil.copy(dropped, run / "masters" / "my disc.mkv")
    result = snakemake(run, "--cores", "2", str(RESULTS / "verify_master" / "verify.json"), check=False)
    assert result.returncode != 0
    assert "verification failed: frame_count is 23, expected 24 (-1 frames)" in result.stdout + result.stderr
    assert not (run / RESULTS / "verify_master" / "verify.json").exists()


# --- false failures: what a master's decoder says, not what the pipe's muxer says of its own output ------

def _x264_mkv(path: Path, rate: int, frames: int) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={rate}",
                    "-frames:v", str(frames), "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p",
                    f"file:{path}"], check=True)
    return path


def test_muxer_complaints_about_its_own_output_are_no_decode_errors(tmp_path):
    """Matroska's millisecond times give frames the raw pipe's muxer calls "non monotonically increasing
    dts" (the source prints the same); they decoded perfectly. Here 1500 fps puts two frames in a
    millisecond every time."""
    from remaster.output.verify import decode_and_measure

    master = _x264_mkv(tmp_path / "fast.mkv", 1500, 12)
    frames, errors, _ = decode_and_measure(master, None, 160, 120, [("0000", 0, 12)])
    assert frames == 12 and errors == ""


def test_a_damaged_master_still_fails_to_decode_cleanly(tmp_path):
    from remaster.output.verify import decode_and_measure

    master = _x264_mkv(tmp_path / "good.mkv", 24, 48)
    data = bytearray(master.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3000] = bytes(range(256)) * 11 + bytes(184)  # a scratch in the middle of the video
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    _, errors, _ = decode_and_measure(damaged, None, 160, 120, [("0000", 0, 48)])
    assert errors and "rawvideo @" not in errors


@pytest.mark.parametrize("container", ["mpegts", "adts"])
def test_aac_is_compared_by_its_payload_not_its_adts_headers(tmp_path, container):
    """MPEG-TS and .aac carry AAC with an ADTS header per packet; Matroska stores the same payload bare."""
    from remaster.output.verify import audio_hash

    source = tmp_path / f"source.{'ts' if container == 'mpegts' else 'aac'}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    "-c:a", "aac", "-f", container, f"file:{source}"], check=True)
    copied = tmp_path / "copied.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", f"file:{source}", "-map", "0:a", "-c", "copy",
                    f"file:{copied}"], check=True)
    assert audio_hash(source, 0, "aac") == audio_hash(copied, 0, "aac") is not None
    other = tmp_path / "other.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=660:duration=1",
                    "-c:a", "aac", f"file:{other}"], check=True)
    assert audio_hash(other, 0, "aac") != audio_hash(source, 0, "aac")
