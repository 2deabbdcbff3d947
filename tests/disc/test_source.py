"""What `source:` points at: the title's VOBs in play order, DVD images and drives, one-line errors for bad
paths, and the length of the one title a master reads."""


from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from remaster.disc import source as sources
from remaster.disc.dvd import iso_ifos
from remaster.disc.reader import read_title
from remaster.disc.source import resolve_source, title_seconds
from remaster.run import media
from remaster.run.disk import source_seconds
from remaster.run.errors import RemasterError
from support.sources import dvd_image, two_title_disc

EPISODE_FRAMES = 24
needs_genisoimage = pytest.mark.skipif(not shutil.which("genisoimage"), reason="genisoimage not installed")


def test_title_vobs_are_in_play_order_without_the_menu(demo_disc):
    source = resolve_source(str(demo_disc))
    assert [p.name for p in source.parts] == ["VTS_01_1.VOB", "VTS_01_2.VOB"] and source.needs_reading
    assert resolve_source(str(demo_disc.parent)).parts == source.parts  # the folder holding VIDEO_TS works too


@pytest.fixture(scope="module")
def authored(tmp_path_factory) -> Path:
    """A dvdauthor disc with IFOs: two titles of EPISODE_FRAMES frames in one title set."""
    return two_title_disc(tmp_path_factory.mktemp("authored"), EPISODE_FRAMES)


def test_disc_root_with_a_lower_case_video_ts(authored, tmp_path):
    """Rips made on Windows or macOS often name the folder video_ts; the disc's root above it works too."""
    shutil.copytree(authored, tmp_path / "My Disc" / "video_ts")
    source = resolve_source(str(tmp_path / "My Disc"))
    assert source.kind == "video_ts" and source.folder == tmp_path / "My Disc" / "video_ts"
    assert [p.name for p in source.parts] == ["VTS_01_1.VOB"]


def test_a_lone_vob_is_joined_like_a_list(demo_disc):
    """A lone VOB goes through the VOB-ID clock-reset handling too (it was read as a plain file)."""
    for given in (str(demo_disc / "VTS_01_1.VOB"), [str(demo_disc / "VTS_01_1.VOB")]):
        source = resolve_source(given)
        assert source.kind == "vobs" and source.needs_reading


def test_bad_sources_are_one_line_errors(tmp_path):
    with pytest.raises(RemasterError, match="source not found"):
        resolve_source(str(tmp_path / "missing"))
    with pytest.raises(RemasterError, match="no title VOBs"):
        resolve_source(str(tmp_path))


@pytest.mark.unit
def test_a_drive_without_libdvdcss_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(sources, "_is_block_device", lambda path: True)
    monkeypatch.setattr(sources.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(RemasterError) as error:
        resolve_source("/dev/sr0")
    message = str(error.value)
    assert message.startswith("/dev/sr0: reading a DVD in a drive needs libdvdcss") and "\n" not in message
    assert "rip the disc first" in message
    monkeypatch.setattr(sources.ctypes.util, "find_library", lambda name: "libdvdcss.so.2")
    assert resolve_source("/dev/sr0").kind == "iso"  # with libdvdcss, read like an image


@needs_genisoimage
def test_an_iso_image_is_read_as_a_dvd(authored, tmp_path):
    image = dvd_image(authored, tmp_path / "My Disc.iso")
    source = resolve_source(str(image))
    assert source.kind == "iso" and source.is_dvd
    ifos = iso_ifos(image, tmp_path / "ifos")
    assert sorted(p.name for p in ifos.iterdir()) == sorted(p.name.upper() for p in authored.iterdir()
                                                            if p.suffix.upper() in (".IFO", ".BUP"))
    out = tmp_path / "title.mkv"
    read_title(source, out, log=logging.getLogger("test"))
    from_folder = tmp_path / "folder title.mkv"
    read_title(resolve_source(str(authored)), from_folder, log=logging.getLogger("test"))
    assert media.count_packets(out) == media.count_packets(from_folder) == EPISODE_FRAMES
    assert len(media.ffprobe_json(out)["chapters"]) == len(media.ffprobe_json(from_folder)["chapters"])
    with pytest.raises(RemasterError, match="not a DVD image"):
        not_image = tmp_path / "notes.iso"
        not_image.write_bytes(b"\0" * 40 * 2048)
        read_title(resolve_source(str(not_image)), tmp_path / "x.mkv", log=logging.getLogger("test"))


def test_disk_estimate_is_the_titles_not_the_discs(tmp_path):
    """The pre-flight estimate costed every title of a VIDEO_TS folder as the whole disc."""
    source = resolve_source(str(two_title_disc(tmp_path, EPISODE_FRAMES, 3 * EPISODE_FRAMES)))
    ffprobe = media.tool("ffprobe")
    first, second = (title_seconds(source, ffprobe, title_number=n) for n in (1, 2))
    assert abs(first - EPISODE_FRAMES * 1001 / 30000) < 0.1, first
    assert abs(second - 3 * EPISODE_FRAMES * 1001 / 30000) < 0.1, second
    assert title_seconds(source, ffprobe) == second  # auto: the main title, the longest
    assert source_seconds(source.parts, ffprobe) > 1.2 * first  # what was counted before, for every title


@needs_genisoimage
def test_an_iso_images_ifo_facts_reach_the_probe(authored, tmp_path):
    from remaster.disc.probe import disc_facts
    from remaster.disc.reader import Disc

    image = dvd_image(authored, tmp_path / "My_Disc.iso")
    # read_title chooses the title and writes its record; the probe reads that record, never the disc again
    read_title(resolve_source(str(image)), tmp_path / "title.mkv", log=logging.getLogger("test")).dump(tmp_path / "disc.json")
    facts = disc_facts(Disc.load(tmp_path / "disc.json"))
    assert facts.title_number == 1 and facts.name == "My Disc"  # auto: of two equal titles, the first
    assert facts.audio_languages == {"0x80": "en"}
