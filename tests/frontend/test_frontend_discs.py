"""The DVD front end end to end: each kind of disc plays with the right speed, shape, colour, languages and chapters."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from support import cadence, discs
from support.workflow import ffprobe, frame_count, snakemake, write_config

FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}


def run_disc(workdir: Path, source: Path, model: Path, **overrides) -> dict:
    """Run the workflow up to the master on one disc; return what a test looks at."""
    write_config(workdir, source=str(source), output="master.mkv", models=[str(model)], shard_frames=64,
                 encoder=FAST_ENCODER, **overrides)
    snakemake(workdir, "--cores", "2", "master.mkv")
    master = workdir / "master.mkv"
    streams = json.loads(ffprobe(master, "-show_streams", "-show_chapters", "-show_format", "-of", "json"))
    return {
        "master": master,
        "video": next(s for s in streams["streams"] if s["codec_type"] == "video"),
        "audio": [s for s in streams["streams"] if s["codec_type"] == "audio"],
        "chapters": streams["chapters"],
        "format": streams["format"],
        "plan": json.loads((workdir / "results" / "master" / "plan_disc" / "plan.json").read_text()),
        "log": (workdir / "logs" / "master" / "plan_disc.log").read_text(),
    }


def combed_fraction(master: Path, height: int) -> float:
    """idet's share of interlaced-looking frames in the master scaled back to the source height."""
    stderr = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(master), "-vf",
                             f"scale=-2:{height},idet", "-f", "null", "-"], capture_output=True, text=True).stderr
    tff, bff, prog, und = map(int, re.search(
        r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+) Undetermined:\s*(\d+)", stderr).groups())
    return (tff + bff) / max(tff + bff + prog + und, 1)


def display_aspect(video: dict) -> float:
    return float(Fraction(video["display_aspect_ratio"].replace(":", "/")))


def assert_bt709(video: dict) -> None:
    assert (video.get("color_space"), video.get("color_primaries"), video.get("color_transfer")) == ("bt709",) * 3


def test_telecined_film_flagged_16_9_with_one_override_line(tmp_path, tiny_model):
    disc = discs.ntsc_telecine(tmp_path)
    result = run_disc(tmp_path / "work", disc, tiny_model, display_aspect="4:3")
    assert frame_count(result["master"]) == discs.TELECINE_FILM_FRAMES  # the film frames, recovered exactly
    assert result["video"]["r_frame_rate"] == "24000/1001"
    assert abs(display_aspect(result["video"]) - 4 / 3) / (4 / 3) < 0.02
    assert (result["video"]["width"], result["video"]["height"]) == (1280, 960)
    assert combed_fraction(result["master"], 480) < 0.05
    assert_bt709(result["video"])
    assert re.search(r"scan: telecine \[auto\] because .*repeat.*\(override: scan\)", result["log"])
    assert "display_aspect: 4:3 [config]" in result["log"]


def test_pal_interlaced_anamorphic(tmp_path, tiny_model):
    disc = discs.pal_interlaced_anamorphic(tmp_path)
    result = run_disc(tmp_path / "work", disc, tiny_model)
    assert result["plan"]["scan"] == "interlaced" and result["plan"]["field_order"] == "tff"
    assert frame_count(result["master"]) == 2 * discs.PAL_FRAMES  # one frame per field
    assert result["video"]["r_frame_rate"] == "50/1"
    assert (result["video"]["width"], result["video"]["height"]) == (2048, 1152)  # 1024×576 square, ×2
    assert abs(display_aspect(result["video"]) - 16 / 9) / (16 / 9) < 0.02
    assert combed_fraction(result["master"], 576) < 0.05
    assert_bt709(result["video"])
    assert re.search(r"scan: interlaced \[auto\] because .*\(override: scan\)", result["log"])


def test_ntsc_bff_capture_keeps_its_late_audio(tmp_path, tiny_model):
    disc = discs.ntsc_interlaced_bff_late_audio(tmp_path)
    result = run_disc(tmp_path / "work", disc, tiny_model, deinterlace_rate="frame")
    assert result["plan"]["scan"] == "interlaced" and result["plan"]["field_order"] == "bff"
    assert frame_count(result["master"]) == discs.BFF_FRAMES
    assert result["video"]["r_frame_rate"] == "30000/1001"
    offset = float(result["audio"][0]["start_time"]) - float(result["video"]["start_time"])
    assert abs(offset - discs.AUDIO_DELAY) < 1001 / 30000  # within one frame
    assert combed_fraction(result["master"], 480) < 0.05
    assert re.search(r"field_order: bff \[auto\] because .*\(override: field_order\)", result["log"])


def test_multi_vob_rip_without_ifos_takes_languages_from_the_config(tmp_path, tiny_model):
    video_ts = discs.multi_vob_rip(tmp_path)
    result = run_disc(tmp_path / "work", video_ts, tiny_model, audio_languages=["eng"])
    assert frame_count(result["master"]) == discs.RIP_MAIN_FRAMES
    assert [a["tags"].get("language") for a in result["audio"]] == ["eng"]
    assert result["plan"]["audio"][0]["language_source"] == "config"


def test_authored_disc_carries_languages_chapters_and_title(tmp_path, tiny_model):
    pytest.importorskip("remaster.disc.dvd")
    video_ts = discs.dvdauthor_disc(tmp_path)
    result = run_disc(tmp_path / "work", video_ts, tiny_model)
    assert abs(float(result["format"]["duration"]) - discs.MAIN_SECONDS) < 0.1  # the main title, not the trailer
    assert [a["tags"].get("language") for a in result["audio"]] == ["eng", "fre"]
    starts = [float(c["start_time"]) for c in result["chapters"]]
    offset = float(result["video"]["start_time"])
    assert [round(s - offset, 1) for s in starts] == list(discs.CHAPTERS)
    assert abs(display_aspect(result["video"]) - 16 / 9) / (16 / 9) < 0.02
    assert result["format"]["tags"]["title"] == result["plan"]["title"] and result["plan"]["title"]


@pytest.mark.skipif(not shutil.which("mkvmerge"), reason="mkvtoolnix (mkvmerge) not installed")
def test_hybrid_title_becomes_a_variable_rate_master(tmp_path, tiny_model):
    disc, film, video = cadence.hybrid(tmp_path)
    work = tmp_path / "work"
    # 240 lines into the ×2 model keep the CPU run short; the verification runs in the same call
    write_config(work, source=str(disc), output="master.mkv", models=[str(tiny_model)], shard_frames=64,
                 encoder=FAST_ENCODER, target_height=480)
    snakemake(work, "--cores", "2", "master.mkv", "results/master/verify_master/verify.json")
    master = work / "master.mkv"
    plan = json.loads((work / "results" / "master" / "plan_disc" / "plan.json").read_text())
    log = (work / "logs" / "master" / "plan_disc.log").read_text()
    assert plan["scan"] == "hybrid" and plan["vfr"] is True
    assert re.search(r"section film: frames 0-49 .*\n.*section video: frames 50-89", log)
    films, fields = cadence.HYBRID_FILM_FRAMES, 2 * cadence.HYBRID_VIDEO_FRAMES
    assert frame_count(master) == films + fields
    # the frames' real times: film pictures 1001/24000 s apart, video fields 1001/60000 s apart
    times = [float(t) for t in ffprobe(master, "-select_streams", "v:0", "-show_entries",
                                       "packet=pts_time", "-of", "csv=p=0").split()]
    steps = [round(b - a, 3) for a, b in zip(times, times[1:])]
    assert set(steps[:films - 1]) <= {0.041, 0.042} and set(steps[films:]) <= {0.016, 0.017}
    # each film picture once and each video field once, in order, after the ×2 model
    shown = cadence.luma_frames(master)
    assert cadence.best_matches(shown[:films], cadence.luma_frames(film)) == list(range(films))
    assert cadence.best_matches(shown[films:], cadence.luma_frames(video)) == list(range(fields))
    assert combed_fraction(master, 240) < 0.05
    # the verification step checked frame count, duration and every frame's time
    checks = {c["name"]: c for c in json.loads(
        (work / "results" / "master" / "verify_master" / "verify.json").read_text())["checks"]}
    assert checks["timestamps"]["ok"] and checks["frame_count"]["ok"] and checks["duration"]["ok"]


@pytest.mark.skipif(not shutil.which("mkvmerge"), reason="mkvtoolnix (mkvmerge) not installed")
def test_hybrid_title_interpolated_keeps_its_frame_times(tmp_path, tiny_model):
    from support.rife import make_ifnet

    disc, film, video = cadence.hybrid(tmp_path)
    work = tmp_path / "work"
    ifnet = make_ifnet(tmp_path / "rife46 random.safetensors")
    # `scan: hybrid` named in the config (the automatic decision finds the same split on this title)
    write_config(work, source=str(disc), output="master.mkv", models=[str(tiny_model)], shard_frames=64,
                 encoder=FAST_ENCODER, target_height=240, interpolate={"factor": 2, "model": str(ifnet)},
                 scan="hybrid")
    snakemake(work, "--cores", "2", "master.mkv", "results/master/verify_master/verify.json")
    master = work / "master.mkv"
    assert re.search(r"scan: hybrid \[config\] because scan: hybrid in the config; .* finds 50 film and 40 "
                     r"interlaced video frames", (work / "logs" / "master" / "plan_disc.log").read_text())
    films, fields = cadence.HYBRID_FILM_FRAMES, 2 * cadence.HYBRID_VIDEO_FRAMES
    assert frame_count(master) == 2 * (films + fields)  # every section twice its frames, the count exact
    times = [float(t) for t in ffprobe(master, "-select_streams", "v:0", "-show_entries",
                                       "packet=pts_time", "-of", "csv=p=0").split()]
    steps = [round(b - a, 3) for a, b in zip(times, times[1:])]
    # film at 47.952 fps (20.9 ms), video fields at 119.88 fps (8.3 ms): the sections' times halved
    assert set(steps[:2 * films - 1]) <= {0.020, 0.021, 0.022} and set(steps[2 * films:]) <= {0.008, 0.009}
    checks = {c["name"]: c for c in json.loads(
        (work / "results" / "master" / "verify_master" / "verify.json").read_text())["checks"]}
    assert checks["timestamps"]["ok"] and checks["frame_count"]["ok"] and checks["duration"]["ok"]
