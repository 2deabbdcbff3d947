"""Every source form and every common rate and container through the whole workflow, in ONE run over a
sheet of tiny clips (a ×2 model of 8 features, one shard each): each master verified green, with the
source's pictures on the source's timeline.

Source forms: a DVD image (genisoimage), a disc's root folder with a lower-case video_ts, a title remuxed
to MKV by `ffmpeg -f dvdvideo -c copy` (soft telecine, VobSub, languages, chapters), a lone VOB holding two
VOB IDs (a clock reset), an MPEG-2 program stream capture. Rates and containers: 23.976, 24, 25, 29.97,
30, 50, 59.94, 60 fps and variable rate in MKV, MP4, AVI, MPEG-TS (support.sources.CLIPS).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support.sources import (
    CLIPS,
    REMUX_FILM_FRAMES,
    decoded_frames,
    dvd_image,
    dvdvideo_remux,
    make_clip,
    ps_capture,
    two_title_disc,
)
from support.workflow import ffprobe, frame_count, snakemake, write_config

FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}
TITLE_FRAMES = (24, 36)  # the authored disc's two titles; `auto` masters the longer, title 2
needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("genisoimage", "dvdauthor", "mpeg2enc", "spumux")),
                                 reason="genisoimage, dvdauthor, mjpegtools or spumux not installed")
FORMS = ["iso", "disc_root", "remux_mkv", "lone_vob", "capture_ps"]
CASES = [c.name for c in CLIPS] + FORMS


def write_sheet(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    path.write_text("\n".join(["\t".join(columns)] + ["\t".join(str(r.get(c, "")) for c in columns) for r in rows])
                    + "\n")
    return path


@pytest.fixture(scope="module")
def sources_run(tmp_path_factory, tiny_model):
    """One snakemake call over a sheet of every case."""
    workdir = tmp_path_factory.mktemp("sources")
    clips = workdir / "clips"
    clips.mkdir()
    sources = {clip.name: make_clip(clips, clip) for clip in CLIPS}
    disc = two_title_disc(workdir / "authored", *TITLE_FRAMES)
    sources["iso"] = dvd_image(disc, clips / "My Disc.iso")
    shutil.copytree(disc, clips / "Disc Root" / "video_ts")
    sources["disc_root"] = clips / "Disc Root"
    sources["remux_mkv"] = dvdvideo_remux(workdir / "remux")
    (clips / "rip").mkdir()
    # both titles' VOB IDs in one file, each restarting the clock: no IFO says where
    sources["lone_vob"] = shutil.copy(disc / "VTS_01_1.VOB", clips / "rip" / "VTS_01_1.VOB")
    sources["capture_ps"] = ps_capture(clips)
    sheet = write_sheet(workdir / "discs.tsv", [{"source": path, "output": f"masters/{name}.mkv"}
                                                 for name, path in sources.items()])
    write_config(workdir, discs=str(sheet), models=[str(tiny_model)], shard_frames=64, encoder=FAST_ENCODER)
    result = snakemake(workdir, "--cores", "2", "--resources", "gpu=1", check=False, timeout=2400)
    return workdir, {name: Path(path) for name, path in sources.items()}, result


pytestmark = needs_tools


@pytest.mark.parametrize("case", CASES)
def test_each_source_ends_green(sources_run, case):
    workdir, _, result = sources_run
    verify = workdir / "results" / case / "verify_master" / "verify.json"
    logs = sorted((workdir / "logs" / case).glob("*.log"))
    failed = [f"{log.name}: {log.read_text()[-1500:]}" for log in logs if "ERROR" in log.read_text()]
    assert verify.is_file(), failed or result.stderr[-3000:]
    report = json.loads(verify.read_text())
    assert report["ok"], [c["message"] for c in report["checks"] if not c["ok"]]


@pytest.mark.parametrize("clip", [c.name for c in CLIPS])
def test_each_rate_and_container_keeps_the_sources_frames(sources_run, clip):
    """The master shows the source's pictures for as long as the source does (within a frame)."""
    workdir, sources, _ = sources_run
    master = workdir / "masters" / f"{clip}.mkv"
    assert master.is_file()
    source, made = decoded_frames(sources[clip]), decoded_frames(master)
    step = min(b - a for a, b in zip(source, source[1:]))
    span = source[-1] - source[0] + step
    made_span = made[-1] - made[0] + min(b - a for a, b in zip(made, made[1:]))
    assert abs(made_span - span) <= step + 0.002, (made_span, span)
    if clip != "vfr_mkv":  # a constant-rate source: one master frame per source picture
        assert len(made) == len(source), (len(made), len(source))


def streams(master: Path, kind: str) -> list[dict]:
    info = json.loads(ffprobe(master, "-show_streams", "-show_chapters", "-of", "json"))
    return info["chapters"] if kind == "chapters" else [s for s in info["streams"] if s["codec_type"] == kind]


def test_dvd_image_and_disc_root_master_the_main_title(sources_run):
    workdir, _, _ = sources_run
    for case in ("iso", "disc_root"):
        master = workdir / "masters" / f"{case}.mkv"
        assert frame_count(master) == TITLE_FRAMES[1], case  # title 2, the longer, not the whole title set
        assert [s["tags"].get("language") for s in streams(master, "audio")] == ["eng"], case
        probe = json.loads((workdir / "results" / case / "probe_source" / "probe.json").read_text())
        assert probe["disc"]["title_number"] == 2, case  # the IFOs were read (from inside the image)


def test_remuxed_title_keeps_film_once_subtitles_languages_chapters(sources_run):
    workdir, _, _ = sources_run
    master = workdir / "masters" / "remux_mkv.mkv"
    plan = json.loads((workdir / "results" / "remux_mkv" / "plan_disc" / "plan.json").read_text())
    assert plan["fps"] == "24000/1001", plan["decisions"]["scan"]  # soft telecine honoured: film, each picture once
    assert abs(frame_count(master) - REMUX_FILM_FRAMES) <= 1
    assert [s["tags"].get("language") for s in streams(master, "audio")] == ["eng"]
    subtitles = streams(master, "subtitle")
    assert [(s["codec_name"], s["tags"].get("language")) for s in subtitles] == [("dvd_subtitle", "fre")]
    assert len(streams(master, "chapters")) == 2


def test_lone_vob_goes_through_the_vob_id_clock_reset_handling(sources_run):
    workdir, _, _ = sources_run
    log = (workdir / "logs" / "lone_vob" / "join_vobs.log").read_text()
    assert "joining 1 VOBs: VTS_01_1.VOB" in log
    assert frame_count(workdir / "masters" / "lone_vob.mkv") == sum(TITLE_FRAMES)
