"""Main-title discovery on a dvdauthor disc with IFOs and on a VOB-only rip (tests/discs.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from remaster.disc.dvd import DiscError, find_title
from support import discs

needs_ffmpeg = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="ffmpeg/ffprobe not on PATH (Debian: apt-get install ffmpeg)")
needs_dvdauthor = pytest.mark.skipif(
    not shutil.which("dvdauthor"), reason="dvdauthor not on PATH (Debian: apt-get install dvdauthor)")


def _dvdvideo_ffmpeg() -> str | None:
    """The workflow's ffmpeg (the pinned FFmpeg 8) when it has the dvdvideo demuxer (libdvdnav)."""
    from remaster.run import media
    from remaster.run.errors import RemasterError

    try:
        return media.tool("ffmpeg") if "dvdvideo" in media.demuxers() else None
    except RemasterError:
        return None


@pytest.fixture(scope="module")
def authored(tmp_path_factory) -> Path:
    if not shutil.which("dvdauthor"):
        pytest.skip("dvdauthor not on PATH (Debian: apt-get install dvdauthor)")
    return discs.dvdauthor_disc(tmp_path_factory.mktemp("authored"))


@pytest.fixture(scope="module")
def rip(tmp_path_factory) -> Path:
    return discs.multi_vob_rip(tmp_path_factory.mktemp("rip"))


@needs_ffmpeg
@needs_dvdauthor
def test_ifo_main_title(authored):
    t = find_title(authored)
    assert (t.number, t.vts, t.source) == (2, 2, "ifo")
    assert t.vobs == (authored / "VTS_02_1.VOB",)
    assert t.duration == pytest.approx(discs.MAIN_SECONDS, abs=0.01)
    assert [(a.language, a.codec, a.stream_id) for a in t.audio] == [("en", "ac3", 0x80), ("fr", "ac3", 0x81)]
    assert [s.language for s in t.subtitles] == ["de"]
    assert t.chapters == pytest.approx(discs.CHAPTERS, abs=0.01)
    assert (t.aspect, t.system) == ("16:9", "ntsc")
    # the main title's cells cover its VOB, sector by sector
    assert t.cells[0].first_sector == 0 and t.cells[-1].last_sector + 1 == t.vobs[0].stat().st_size // 2048


@needs_ffmpeg
@needs_dvdauthor
def test_disc_root_and_backup_ifo(authored, tmp_path):
    assert find_title(authored.parent).number == 2
    copy = tmp_path / "VIDEO_TS"
    shutil.copytree(authored, copy)
    (copy / "VTS_02_0.IFO").write_bytes(b"\0" * 2048)  # damaged; the .BUP copy is intact
    t = find_title(copy)
    assert (t.number, t.source, t.chapters) == (2, "bup", find_title(authored).chapters)


@needs_ffmpeg
@needs_dvdauthor
def test_damaged_ifo_and_backup_is_one_line_error(authored, tmp_path):
    copy = tmp_path / "VIDEO_TS"
    shutil.copytree(authored, copy)
    for name in ("VIDEO_TS.IFO", "VIDEO_TS.BUP"):
        (copy / name).write_bytes(b"junk")
    with pytest.raises(DiscError) as err:
        find_title(copy)
    assert str(copy) in str(err.value) and "\n" not in str(err.value)


@needs_ffmpeg
@needs_dvdauthor
@pytest.mark.skipif(not shutil.which("lsdvd"), reason="lsdvd not on PATH (Debian: apt-get install lsdvd)")
def test_agrees_with_lsdvd(authored):
    out = subprocess.run(["lsdvd", "-x", "-Ox", str(authored.parent)], capture_output=True, text=True).stdout
    root = ET.fromstring(out[out.index("<?xml"):].encode())
    longest = int(root.findtext("longest_track"))
    track = next(t for t in root.iter("track") if int(t.findtext("ix")) == longest)
    t = find_title(authored)
    assert (t.number, t.vts) == (longest, int(track.findtext("vts")))
    assert t.duration == pytest.approx(float(track.findtext("length")), abs=0.01)
    assert [a.language for a in t.audio] == [a.findtext("langcode") for a in track.iter("audio")]
    lengths = [float(c.findtext("length")) for c in track.iter("chapter")]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    assert t.chapters == pytest.approx(starts, abs=0.01)


@needs_ffmpeg
@needs_dvdauthor
@pytest.mark.skipif(_dvdvideo_ffmpeg() is None,
                    reason="no ffmpeg with the dvdvideo demuxer (./setup.sh installs the pinned FFmpeg 8)")
def test_agrees_with_ffmpeg_dvdvideo(authored):
    t = find_title(authored)
    err = subprocess.run([_dvdvideo_ffmpeg(), "-hide_banner", "-f", "dvdvideo", "-title", str(t.number),
                          "-i", str(authored)], capture_output=True, text=True).stderr
    starts = [float(s) for s in re.findall(r"Chapter #0:\d+: start (\d+\.\d+)", err)]
    assert t.chapters == pytest.approx(starts, abs=0.01)
    assert re.findall(r"\[0x8(\d)\]\((\w+)\): Audio: ac3", err) == [("0", "eng"), ("1", "fre")]


@needs_ffmpeg
def test_vob_only_rip_takes_largest_title_set(rip):
    t = find_title(rip)
    assert (t.vts, t.number, t.source) == (1, None, "vob-size")
    assert [v.name for v in t.vobs] == ["VTS_01_1.VOB", "VTS_01_2.VOB", "VTS_01_3.VOB"]
    assert t.chapters == () and [(a.codec, a.language, a.stream_id) for a in t.audio] == [("ac3", None, 0x80)]
    assert t.duration == pytest.approx(3.0, abs=0.1)
    # the VOBs split at sector boundaries play back as one stream
    out = subprocess.run(["ffmpeg", "-nostdin", "-i", t.concat_url, "-an", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    assert f"frame={discs.RIP_MAIN_FRAMES:5d}" in out


@needs_ffmpeg
def test_rip_with_lower_case_names(rip, tmp_path):
    copy = tmp_path / "video_ts"
    copy.mkdir()
    for vob in rip.iterdir():
        shutil.copyfile(vob, copy / vob.name.lower())
    t = find_title(copy, ffprobe=None)
    assert [v.name for v in t.vobs] == ["vts_01_1.vob", "vts_01_2.vob", "vts_01_3.vob"]
    assert t.duration is None and t.audio == ()


@needs_ffmpeg
def test_missing_middle_vob_is_an_error(rip, tmp_path):
    copy = tmp_path / "VIDEO_TS"
    shutil.copytree(rip, copy)
    (copy / "VTS_01_2.VOB").unlink()
    with pytest.raises(DiscError, match="VTS_01_2.VOB is missing"):
        find_title(copy, ffprobe=None)


def test_not_a_folder_and_empty_folder(tmp_path):
    with pytest.raises(DiscError, match="not a directory"):
        find_title(tmp_path / "nope")
    with pytest.raises(DiscError, match="no IFO files and no VTS_xx_N.VOB"):
        find_title(tmp_path)
