"""Titles read as a player reads them, on discs authored with mpeg2enc/mplex, spumux and dvdauthor
(tests/authoring.py): the chosen title only, cells in PGC order, sync across VOB IDs, every audio kind,
VobSub palette and forced flag, closed captions, a decoy title."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from remaster.disc.dvd import AudioStream, Cell, SubtitleStream, Title, choose_title, list_titles
from remaster.disc.probe import disc_facts, probe_title
from remaster.disc.reader import Disc, pick_title, read_title, vob_title
from remaster.disc.source import resolve_source
from remaster.disc.subtitles import extract_subtitles, spu_is_forced
from remaster.run import media, preflight
from remaster.run.errors import RemasterError
from support import authoring

FRAME = float(1 / authoring.RATE)
LOG = logging.getLogger("test_read_title")

needs_authoring = pytest.mark.skipif(bool(authoring.missing_tools()),
                                     reason=f"authoring tools missing: {authoring.missing_tools()}")


def _ffprobe() -> str:
    return media.tool("ffprobe")


def _json(path: Path, *args: str) -> dict:
    result = subprocess.run([_ffprobe(), "-v", "error", *args, "-of", "json", str(path)], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout)


def _read(disc: Path, out: Path, **options) -> Path:
    record = read_title(resolve_source(str(disc)), out, log=LOG, **options)
    record.dump(out.with_suffix(".json"))
    return out


@pytest.fixture(scope="module")
def episodes(tmp_path_factory) -> Path:
    """Two titles in one title set. Title 1: VOB IDs 1 (30 frames, marker at 10, captions) and 2 (45 frames,
    marker at 20), whose timestamps both start again at mplex's start; title 2: 60 frames, marker at 30,
    two chapters. AC3 English and MPEG-1 Layer II German audio."""
    if authoring.missing_tools():
        pytest.skip(f"authoring tools missing: {authoring.missing_tools()}")
    work = tmp_path_factory.mktemp("episodes")
    a = authoring.segment(work, "a", 30, 10, audio=("ac3", "mp2"), captions=True)
    b = authoring.segment(work, "b", 45, 20, audio=("ac3", "mp2"))
    c = authoring.segment(work, "c", 60, 30, audio=("ac3", "mp2"))
    return authoring.dvdauthor(work, [[(a, "0"), (b, "0")], [(c, "0,00:00:01.000")]],
                               audio=[("ac3", "en"), ("mp2", "de")])


@pytest.fixture(scope="module")
def lpcm_subs(tmp_path_factory) -> Path:
    """One title of 60 frames (marker at 20): 24-bit LPCM Japanese (with noise below the 16th bit), MPEG-1
    Layer II French (mplex numbers it 0xC1, not 0xC0) and DTS German audio; subtitles: English, German all
    forced (spumux force="yes"), French with one ordinary and one forced subpicture; the PGC palette
    authored from authoring.PALETTE_RGB. The LPCM's source samples lie beside the disc (LPCM_SOURCE)."""
    if authoring.missing_tools():
        pytest.skip(f"authoring tools missing: {authoring.missing_tools()}")
    work = tmp_path_factory.mktemp("lpcm")
    vob = authoring.segment(work, "m", 60, 20, audio=("lpcm24", "mp2", "dts"))
    vob = authoring.add_subpictures(vob, work, [[(False, 0.4, 1.0)], [(True, 1.0, 1.8)],
                                                [(False, 0.3, 0.8), (True, 1.2, 1.7)]])
    return authoring.dvdauthor(work, [[(vob, "0")]], audio=[("pcm", "ja"), ("mp2", "fr"), ("dts", "de")],
                               subtitles=["en", "de", "fr"], palette=True)


def lpcm_source(disc: Path) -> bytes:
    """The 24-bit samples the disc's LPCM track was authored from (big-endian stereo)."""
    return (disc.parent.parent / "m.0.lpcm.s24be").read_bytes()


def _copy_disc(disc: Path, to: Path) -> Path:
    shutil.copytree(disc, to)
    return to


@pytest.mark.unit
def test_decoy_loses_to_the_main_feature_in_distinct_picture():
    def title(number: int, sectors: list[tuple[int, int]], seconds: float) -> Title:
        cells = tuple(Cell(1, n + 1, first, last, seconds) for n, (first, last) in enumerate(sectors))
        return Title(number=number, vts=1, angles=1, duration=seconds * len(cells), cells=cells, chapters=(0.0,))

    main = title(1, [(0, 99), (100, 199)], 600.0)
    decoy = title(2, [(200, 299)] * 5, 600.0)  # 50 min of one 10 min cell played five times
    chosen, reason = choose_title([main, decoy])
    assert chosen is main and "decoy" in reason and "title 2" in reason
    assert choose_title([main, decoy], 2)[0] is decoy
    with pytest.raises(Exception, match="title_number: 3"):
        choose_title([main, decoy], 3)


@pytest.mark.unit
def test_an_angle_block_plays_one_angle():
    from remaster.disc.dvd import _angle_cells, _Pgc

    # category byte: block mode (bits 7-6: 1 first, 2 inside, 3 last) and block type (bits 5-4: 1 angle)
    categories = [0x00, 0x50, 0x90, 0xD0, 0x00]  # a normal cell, three angles of one scene, a normal cell
    pgc = _Pgc(5.0, [1], [(1.0, 10 * i, 10 * i + 9, c) for i, c in enumerate(categories)], [(1, i + 1) for i in range(5)],
               [0] * 8, [0] * 32, ())
    assert _angle_cells(pgc, 1) == [0, 1, 4]
    assert _angle_cells(pgc, 3) == [0, 3, 4]
    assert _angle_cells(pgc, 9) == [0, 3, 4]  # past the last angle: the last one (read_title refuses it first)


@pytest.mark.unit
def test_forced_command_is_found_in_a_subpicture_unit():
    def spu(commands: bytes) -> bytes:
        pixels = bytes(8)
        control = 4 + len(pixels)
        body = pixels + (0).to_bytes(2, "big") + control.to_bytes(2, "big") + commands + b"\xff"
        return (4 + len(body)).to_bytes(2, "big") + control.to_bytes(2, "big") + body

    shown = b"\x01\x03\x12\x34\x04\xff\xf0\x05" + bytes(6) + b"\x06" + bytes(4)
    assert not spu_is_forced(spu(shown))
    assert spu_is_forced(spu(b"\x00" + shown))
    assert not spu_is_forced(b"\x00\x02")


@pytest.mark.unit
def test_an_ffmpeg_without_dvdvideo_is_refused_for_a_disc(monkeypatch):
    debian = shutil.which("ffmpeg")
    if not debian or "dvdvideo" in subprocess.run([debian, "-hide_banner", "-demuxers"], capture_output=True,
                                                  text=True).stdout:
        pytest.skip("no ffmpeg without the dvdvideo demuxer on PATH to refuse")
    monkeypatch.setenv("REMASTER_FFMPEG", debian)
    for cached in (media.tool, media.demuxers, media.version):
        cached.cache_clear()
    try:
        with pytest.raises(RemasterError, match="no dvdvideo demuxer"):
            preflight.check_tools("video_ts")
        assert "ffmpeg version" in preflight.check_tools("file")  # a video file needs no dvdvideo
    finally:
        monkeypatch.delenv("REMASTER_FFMPEG")
        for cached in (media.tool, media.demuxers, media.version):
            cached.cache_clear()


@needs_authoring
def test_titles_of_one_title_set_are_listed_apart(episodes):
    titles = list_titles(episodes)
    assert [t.number for t in titles] == [1, 2] and {t.vts for t in titles} == {1}
    assert titles[0].duration == pytest.approx(75 * FRAME, abs=0.05)
    assert titles[1].duration == pytest.approx(60 * FRAME, abs=0.05)
    assert [c.vob_id for c in titles[0].cells] == [1, 2] and [c.vob_id for c in titles[1].cells] == [3, 3]
    assert titles[1].chapters == pytest.approx((0.0, 1.0), abs=0.05)
    # stream ids from the PGC's audio control table, as the dvdvideo demuxer numbers them
    dvd = _json(episodes, "-f", "dvdvideo", "-title", "1", "-show_streams")["streams"]
    ids = [(s["id"], s["tags"]["language"]) for s in dvd if s["codec_type"] == "audio"]
    assert [(a.probe_id, a.language, a.codec) for a in titles[0].audio] == [
        (ids[0][0], "en", "ac3"), (ids[1][0], "de", "mp2")]
    # what a title or angle the disc lacks is: one line naming the disc
    with pytest.raises(RemasterError, match=r"angle: 2: title 1 of .* has 1 angle"):
        pick_title(episodes, "auto", 2, LOG)
    with pytest.raises(RemasterError, match=r"VIDEO_TS: title_number: 3: the disc has titles 1\.\.2"):
        pick_title(episodes, 3, 1, LOG)


@needs_authoring
def test_main_title_alone_is_read_with_its_chapters(episodes, tmp_path):
    title = _read(episodes, tmp_path / "t1.mkv")
    description, times = probe_title(title)
    assert description.frame_count == len(times) == 75  # both VOB IDs of title 1, nothing of title 2
    assert description.video.duration == pytest.approx(75 * FRAME, abs=FRAME)
    assert [c.start for c in description.chapters] == pytest.approx([0.0, 1.0], abs=0.05)
    assert [(a.codec, a.language) for a in description.audio] == [("ac3", "eng"), ("mp2", "ger")]

    second = _read(episodes, tmp_path / "t2.mkv", title_number=2)
    description, _ = probe_title(second)
    assert description.frame_count == 60
    # the title read is the one its record names: the probe takes the IFO facts from it, never chooses again
    facts = disc_facts(Disc.load(tmp_path / "t2.json"))
    assert (facts.title_number, facts.vts, facts.name) == (2, 1, episodes.parent.name.replace("_", " "))
    assert facts.chapters == pytest.approx([0.0, 1.0], abs=0.05)
    assert facts.audio_languages == {"0x80": "en", "0x1c1": "de"}  # the PGC numbers the MPEG track 1
    assert disc_facts(Disc.load(tmp_path / "t1.json")).title_number == 1
    assert [c.start for c in description.chapters] == pytest.approx([0.0, 1.0], abs=0.05)
    assert authoring.flash_times(second, _ffprobe()) == pytest.approx([30 * FRAME], abs=FRAME / 2)


@needs_authoring
def test_sync_holds_across_vob_ids(episodes, tmp_path):
    title = _read(episodes, tmp_path / "t1.mkv")
    flashes = authoring.flash_times(title, _ffprobe())
    # marker frames 10 and 30 + 20: the second VOB ID's clock restarted, the title's runs on
    assert flashes == pytest.approx([10 * FRAME, 50 * FRAME], abs=FRAME)
    for audio in (0, 1):
        assert authoring.beep_times(title, audio, _ffprobe()) == pytest.approx(flashes, abs=FRAME)
    for stream in ("v:0", "a:0", "a:1"):
        times = media.packet_timestamps(title, stream)
        assert all(b > a for a, b in zip(times, times[1:])), stream


@needs_authoring
def test_cells_play_in_pgc_order(episodes, tmp_path):
    disc = _copy_disc(episodes, tmp_path / "VIDEO_TS")
    authoring.patch_cells(disc, 1, [2, 1])  # dvdauthor cannot author this: VOB ID 2 plays first
    assert [c.vob_id for c in list_titles(disc)[0].cells] == [2, 1]
    title = _read(disc, tmp_path / "t1.mkv")
    assert probe_title(title)[0].frame_count == 75
    assert authoring.flash_times(title, _ffprobe()) == pytest.approx([20 * FRAME, 55 * FRAME], abs=FRAME)


@needs_authoring
def test_a_decoy_title_is_not_taken(tmp_path, caplog):
    work = tmp_path / "work"
    work.mkdir()
    a = authoring.segment(work, "a", 30, 10)
    b = authoring.segment(work, "b", 45, 20)
    loop = authoring.segment(work, "d", 120, 5)
    disc = authoring.dvdauthor(work, [[(a, "0"), (b, "0")], [(loop, "0,00:00:01.000,00:00:02.000,00:00:03.000")]],
                               audio=[("ac3", "en")])
    authoring.patch_cells(disc, 2, [1, 1, 1, 1])  # a decoy: the first second four times over
    titles = list_titles(disc)
    assert titles[1].duration > titles[0].duration and titles[1].unique_duration < titles[0].duration
    with caplog.at_level(logging.INFO, logger=LOG.name):
        title = _read(disc, tmp_path / "t.mkv")
    assert probe_title(title)[0].frame_count == 75
    assert "decoy" in caplog.text


@needs_authoring
def test_lpcm_mp2_and_dts_keep_their_bits_and_languages(lpcm_subs, tmp_path):
    # ids from the PGC's control tables: mplex put the MP2 track at 0xC1 and the DTS one at 0x8A (each after
    # the tracks before it), as dvdvideo reads
    info = list_titles(lpcm_subs)[0]
    dvd = _json(lpcm_subs, "-f", "dvdvideo", "-title", "1", "-show_streams")["streams"]
    assert [(a.probe_id, a.codec, a.language) for a in info.audio] == [
        ("0xa0", "pcm_dvd", "ja"), ("0x1c1", "mp2", "fr"), ("0x8a", "dts", "de")]
    assert [a.probe_id for a in info.audio] == [s["id"] for s in dvd if s["codec_type"] == "audio"]
    assert [(f"0x{s.stream_id:x}", s.language) for s in info.subtitles] == [("0x20", "en"), ("0x21", "de"),
                                                                            ("0x22", "fr")]
    title = _read(lpcm_subs, tmp_path / "t.mkv")
    audio = [s for s in _json(title, "-show_streams")["streams"] if s["codec_type"] == "audio"]
    assert [(s["codec_name"], s["tags"]["language"]) for s in audio] == [("flac", "jpn"), ("mp2", "fre"),
                                                                         ("dts", "ger")]
    assert audio[0]["bits_per_raw_sample"] == "24"  # FLAC at the disc's bit depth
    vob = next(lpcm_subs.glob("VTS_01_1.VOB"))

    def packets(path: Path, stream: str, form: str) -> bytes:
        cmd = media.ffmpeg_args("-i", media.input_path(path), "-map", stream, "-c", "copy", "-f", form, "-")
        return subprocess.run(cmd, capture_output=True, check=True).stdout

    # LPCM: the FLAC decodes to the very 24-bit samples the disc was authored from, the noise under the
    # 16th bit included (a 16-bit conversion would lose it); MP2 and DTS: the same frames, byte for byte
    samples = _pcm_bytes(title, "0:a:0")
    source = lpcm_source(lpcm_subs)
    assert len(samples) > 0.95 * len(source) and samples == source[:len(samples)]
    assert any(sample[2] for sample in zip(*[iter(samples)] * 3))  # the low byte carries the noise
    for stream, ident, form in (("0:a:1", "0x1c1", "mp2"), ("0:a:2", "0x8a", "dts")):
        original = packets(vob, f"0:i:{ident}", form)
        assert original and packets(title, stream, form) == original, form
    assert authoring.beep_times(title, 0, _ffprobe()) == pytest.approx(authoring.flash_times(title, _ffprobe()),
                                                                       abs=FRAME)


def _pcm_bytes(path: Path, stream: str) -> bytes:
    """The track's samples as 24-bit big-endian: a 16-bit track would come back with zero low bytes."""
    cmd = media.ffmpeg_args("-i", media.input_path(path), "-map", stream, "-f", "s24be", "-")
    return subprocess.run(cmd, capture_output=True, check=True).stdout


@needs_authoring
def test_subtitles_keep_palette_language_and_forced_flag(lpcm_subs, tmp_path):
    title = _read(lpcm_subs, tmp_path / "t.mkv")
    description, _ = probe_title(title)
    out = tmp_path / "subs.mks"
    written = extract_subtitles(title, out, subtitles=description.subtitles, log=LOG)
    assert written == {"forced": [False, True, False], "forced_only": [2], "captions": 0}
    streams = _json(out, "-show_streams", "-show_data", "-count_packets")["streams"]
    # the French stream mixes an ordinary and a forced subpicture: its forced one also gets a forced track
    assert [s["tags"]["language"] for s in streams] == ["eng", "ger", "fre", "fre"]
    assert [s["disposition"]["forced"] for s in streams] == [0, 1, 0, 1]
    assert [int(s["nb_read_packets"]) for s in streams] == [1, 1, 2, 1]
    ordinary, forced = media.packet_timestamps(out, "s:2")
    assert media.packet_timestamps(out, "s:3") == [forced] and forced - ordinary == pytest.approx(0.9, abs=0.05)
    palette = _extradata_palette(streams[0]["extradata"])
    expected = [tuple(int(c[i:i + 2], 16) for i in (0, 2, 4)) for c in authoring.PALETTE_RGB]
    # the IFO keeps the palette as Y'CbCr: RGB comes back within rounding
    assert len(palette) == 16
    assert all(abs(x - y) <= 3 for got, want in zip(palette, expected) for x, y in zip(got, want)), palette


def _extradata_palette(dump: str) -> list[tuple[int, int, int]]:
    """The 16 colours of a VobSub track's codec private data ("palette: rrggbb, …") from ffprobe's dump."""
    text = "".join(line[51:] if len(line) > 51 else "" for line in dump.splitlines())
    colours = text.split("palette:")[1].split(".")[0] if "palette:" in text else ""
    hexes = [c.strip() for c in colours.replace("\n", "").split(",")]
    return [tuple(int(h[i:i + 2], 16) for i in (0, 2, 4)) for h in hexes if len(h) == 6]


@needs_authoring
def test_closed_captions_become_a_text_track(episodes, tmp_path):
    title = _read(episodes, tmp_path / "t1.mkv")
    description, _ = probe_title(title)
    assert description.video.closed_captions is True
    out = tmp_path / "subs.mks"
    assert extract_subtitles(title, out, subtitles=description.subtitles, log=LOG)["captions"] == 1
    stream = _json(out, "-show_streams")["streams"]
    assert [s["codec_name"] for s in stream] == ["subrip"]
    text = media.run(media.ffmpeg_args("-i", media.input_path(out), "-f", "srt", "-"), what="srt").stdout
    assert authoring.CAPTION_TEXT in text
    start, end = text.split("\n")[1].split(" --> ")
    seconds = [int(t[6:8]) + int(t[9:12]) / 1000 + 60 * int(t[3:5]) for t in (start, end)]
    # a DVD sends a GOP's caption words at its first picture: shown from the first GOP until the erase's
    assert seconds[0] < 0.5 and authoring.CAPTION_ERASE_AT * FRAME - 0.5 <= seconds[1] <= authoring.CAPTION_ERASE_AT * FRAME + 0.1


@needs_authoring
def test_vob_files_without_ifos_keep_sync_across_vob_ids(episodes, tmp_path):
    """The title set's VOB files alone (no IFO): three VOB IDs whose clocks each restart. Joined byte for
    byte, the second marker's beep came 0.64 s before its flash in the master; each VOB ID is now offset by
    the pictures before it."""
    from remaster.disc.source import resolve_source
    from remaster.disc.voblist import clock_resets

    rip = tmp_path / "rip"
    rip.mkdir()
    for vob in sorted(episodes.glob("VTS_01_*.VOB")):
        if not vob.name.endswith("_0.VOB"):
            shutil.copy(vob, rip / vob.name)
    source = resolve_source(str(rip))
    assert source.kind == "vobs" and source.needs_reading
    assert len(clock_resets(source.parts[0])) == 2
    title = _read(rip, tmp_path / "title.vob")
    ffprobe = _ffprobe()
    flashes = authoring.flash_times(title, ffprobe)
    start = flashes[0] - 10 * FRAME  # the markers: frame 10 of 30, frame 20 of 45, frame 30 of 60
    assert [t - start for t in flashes] == pytest.approx([10 * FRAME, 50 * FRAME, 105 * FRAME], abs=FRAME / 2)
    for n in (0, 1):
        assert authoring.beep_times(title, n, ffprobe) == pytest.approx(flashes, abs=FRAME)
    frames = media.run([ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=nb_read_frames", "-of", "csv=p=0", str(title)], what="count").stdout
    assert int(frames.strip().rstrip(",")) == 30 + 45 + 60


@needs_authoring
def test_captions_that_begin_late_are_found(tmp_path):
    """A film's first caption may come minutes in: 70 s without captions, then the captioned segment. The
    probe finds them (it once looked at the first 60 s only) and the track starts 70 s in."""
    filler = tmp_path / "filler.m2v"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    f"color=gray:size={authoring.WIDTH}x{authoring.HEIGHT}:rate={authoring.RATE}:duration=70",
                    "-c:v", "mpeg2video", "-g", "15", "-f", "mpeg2video", str(filler)], check=True)
    captioned = authoring.marker_video(tmp_path / "captioned.m2v", 45, 10, captions=True)
    joined = tmp_path / "joined.m2v"
    joined.write_bytes(filler.read_bytes() + captioned.read_bytes())
    title = tmp_path / "late captions.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-fflags", "+genpts", "-r", str(authoring.RATE), "-i", str(joined), "-c", "copy",
                    str(title)], check=True)
    description, _ = probe_title(title)
    assert description.video.closed_captions is True
    out = tmp_path / "subs.mks"
    assert extract_subtitles(title, out, subtitles=[], log=LOG)["captions"] == 1
    text = media.run(media.ffmpeg_args("-i", media.input_path(out), "-f", "srt", "-"), what="srt").stdout
    start = text.split("\n")[1].split(" --> ")[0]
    assert authoring.CAPTION_TEXT in text and 70 <= 60 * int(start[3:5]) + int(start[6:8]) < 71


@needs_authoring
def test_master_of_a_two_episode_disc(episodes, tmp_path, tiny_model):
    """The whole workflow on the disc as a user would run it, no key set by hand: the master is episode 1
    only, in sync, with both audio tracks bit for bit, its chapters, and the closed captions."""
    from support.workflow import snakemake, write_config

    write_config(tmp_path, source=str(episodes), output="episode.mkv", models=[str(tiny_model)], shard_frames=100,
                 encoder={"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"})
    snakemake(tmp_path, "--cores", "2", "--resources", "gpu=1")
    master = tmp_path / "episode.mkv"
    info = _json(master, "-show_streams", "-show_chapters")
    kinds = [(s["codec_type"], s["codec_name"], s.get("tags", {}).get("language")) for s in info["streams"]]
    assert kinds[1:3] == [("audio", "ac3", "eng"), ("audio", "mp2", "ger")]
    # the captions: the IFO has no language for line 21, so und (which ffprobe shows as no tag)
    assert kinds[3:] == [("subtitle", "subrip", None)]
    assert info["streams"][3]["tags"]["title"] == "Closed captions"
    # the 75 pictures of episode 1; VOB ID 1's audio runs 23 ms past its last picture, so a player holds that
    # picture 23 ms longer: a constant-rate master keeping sync shows it twice (at most one extra per cell)
    frames = media.frame_timestamps(master)
    assert 75 <= len(frames) <= 76
    assert frames[-1] + FRAME == pytest.approx(30 * FRAME + 0.0227 + 45 * FRAME, abs=FRAME)
    assert [float(c["start_time"]) for c in info["chapters"]] == pytest.approx([0.0, 1.0], abs=0.05)
    title = tmp_path / "results" / "episode" / "read_title" / "title.mkv"
    for n in (0, 1):
        original = subprocess.run(media.ffmpeg_args("-i", media.input_path(title), "-map", f"0:a:{n}", "-c", "copy",
                                                    "-f", "data", "-"), capture_output=True, check=True).stdout
        copied = subprocess.run(media.ffmpeg_args("-i", media.input_path(master), "-map", f"0:a:{n}", "-c", "copy",
                                                  "-f", "data", "-"), capture_output=True, check=True).stdout
        assert original and copied == original
        times = media.packet_timestamps(master, f"a:{n}")
        assert all(b > a for a, b in zip(times, times[1:]))
    flashes = authoring.flash_times(master, _ffprobe())
    assert flashes == pytest.approx(authoring.flash_times(title, _ffprobe()), abs=FRAME)
    for n in (0, 1):
        assert authoring.beep_times(master, n, _ffprobe()) == pytest.approx(flashes, abs=FRAME)
    log = (tmp_path / "logs" / "episode" / "read_title.log").read_text()
    assert "title 1 is the main feature" in log and "ffmpeg version" in log


@needs_authoring
def test_master_keeps_lpcm_and_every_subtitle_kind(lpcm_subs, tmp_path, tiny_model):
    """The LPCM/MP2 disc through the whole workflow: FLAC and MP2 with their languages, three VobSub tracks
    with the IFO palette, the all-forced one marked, and a forced-only copy of the mixed one."""
    from support.workflow import snakemake, write_config

    write_config(tmp_path, source=str(lpcm_subs), output="music.mkv", models=[str(tiny_model)], shard_frames=100,
                 encoder={"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"})
    snakemake(tmp_path, "--cores", "2", "--resources", "gpu=1")
    streams = _json(tmp_path / "music.mkv", "-show_streams", "-show_data")["streams"]
    tracks = [(s["codec_name"], s.get("tags", {}).get("language"), s["disposition"]["forced"]) for s in streams[1:]]
    assert tracks == [("flac", "jpn", 0), ("mp2", "fre", 0), ("dts", "ger", 0), ("dvd_subtitle", "eng", 0),
                      ("dvd_subtitle", "ger", 1), ("dvd_subtitle", "fre", 0), ("dvd_subtitle", "fre", 1)]
    assert streams[-1]["tags"]["title"] == "Forced only"
    # the master's FLAC holds the 24 bits the disc was authored with, sample for sample
    samples = _pcm_bytes(tmp_path / "music.mkv", "0:a:0")
    source = lpcm_source(lpcm_subs)
    assert streams[1]["bits_per_raw_sample"] == "24" and samples == source[:len(samples)]
    assert len(samples) > 0.95 * len(source)
    assert _extradata_palette(streams[4]["extradata"]) == _extradata_palette(streams[-1]["extradata"])
    assert len(_extradata_palette(streams[4]["extradata"])) == 16


@pytest.mark.unit
def test_the_disc_record_round_trips_with_its_title(tmp_path):
    cells = (Cell(1, 1, 0, 99, 2.5), Cell(2, 1, 100, 199, 1.5))
    audio = (AudioStream(0, 0x80, "ac3", "en", 6), AudioStream(1, 0xC0, "mp2", "de", 2))
    title = Title(3, 2, 1, 4.0, cells, (0.0, 2.5), audio=audio, subtitles=(SubtitleStream(0, 0x20, "fr"),),
                  palette=((16, 128, 128),) * 16, aspect="16:9", system="pal", line21=True, source="bup")
    Disc("My Disc", title).dump(tmp_path / "disc.json")
    again = Disc.load(tmp_path / "disc.json")
    assert again == Disc("My Disc", title) and again.title.cells[1].seconds == 1.5
    assert disc_facts(again).audio_languages == {"0x80": "en", "0x1c0": "de"}
    assert disc_facts(again).subtitle_languages == {"0x20": "fr"}
    # VOB files that are not a disc: no IFO facts; a rip's folder without IFOs: its title set, nothing more
    assert disc_facts(Disc()) is None
    vobs = (tmp_path / "VTS_03_1.VOB", tmp_path / "VTS_03_2.VOB")
    facts = disc_facts(Disc("rip", vob_title(vobs)))
    assert (facts.vts, facts.title_number, facts.read_from, facts.chapters) == (3, None, "vob-size", ())
