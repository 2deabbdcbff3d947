"""Find the main title of a DVD-Video VIDEO_TS folder and read what its IFOs say about it.

The IFO files are read by a small pure-Python parser for *planning* (which title, its cells, chapters,
stream ids and languages, palette); the title's bytes are *read* by FFmpeg's ``dvdvideo`` demuxer
(libdvdnav), which follows the PGC's cells the way a player does (docs/frontend.md says why).  A folder
of VOBs without IFOs, as many rips are, still works: the title set with the most VOB bytes is taken.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from ..run.records import Record

SECTOR = 2048
VOB_NAME = re.compile(r"^VTS_(\d\d)_(\d)\.VOB$", re.IGNORECASE)
# DVD "MPEG-1" audio is Layer II (Layer I is not allowed on DVD-Video); 3 is MPEG-2 with extension
_AUDIO_CODECS = {0: "ac3", 2: "mp2", 3: "mp2", 4: "pcm_dvd", 6: "dts"}


class DiscError(ValueError):
    """A VIDEO_TS folder that cannot be read; the message is one line naming the path."""


@dataclass(frozen=True)
class Cell(Record):
    """One cell of a title as the PGC plays it (PGC order, one angle)."""

    vob_id: int
    cell_id: int
    first_sector: int
    last_sector: int  # inclusive
    seconds: float


@dataclass(frozen=True)
class AudioStream(Record):
    index: int  # logical DVD audio stream number, 0-based
    stream_id: int  # MPEG-PS stream id in the VOBs (0x80 = first AC3), for `-map 0:i:0x80`
    codec: str  # FFmpeg codec name: ac3, dts, pcm_dvd, mp1, mp2
    language: str | None  # ISO 639-1 code as stored on the disc ("en"), None if unset
    channels: int | None = None

    @property
    def probe_id(self) -> str:
        """The id ffprobe and FFmpeg's demuxers show: MPEG audio is a PES stream (0x1c0..), the others are
        sub-streams of private stream 1 (0x80..)."""
        return f"0x{0x100 | self.stream_id:x}" if self.codec in ("mp1", "mp2") else f"0x{self.stream_id:x}"


@dataclass(frozen=True)
class SubtitleStream(Record):
    index: int  # logical DVD subpicture stream number, 0-based
    stream_id: int  # MPEG-PS sub-stream id (0x20 + the PGC's subpicture control number for the display)
    language: str | None


def _video_ts_dir(path: Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DiscError(f"{path}: not a directory (expected a VIDEO_TS folder)")
    for child in path.iterdir():
        # accept the disc root as well as VIDEO_TS itself
        if child.is_dir() and child.name.upper() == "VIDEO_TS":
            return child
    return path


def _files(folder: Path) -> dict[str, Path]:
    # rips made on case-insensitive file systems often have lower-case names
    return {p.name.upper(): p for p in folder.iterdir() if p.is_file()}


def _vobs(folder: Path, vts: int) -> tuple[Path, ...]:
    files = _files(folder)
    parts = sorted(int(m.group(2)) for name in files if (m := VOB_NAME.match(name))
                   and int(m.group(1)) == vts and m.group(2) != "0")
    if not parts:
        raise DiscError(f"{folder}: title set {vts} has no VTS_{vts:02d}_1.VOB")
    missing = sorted(set(range(1, parts[-1] + 1)) - set(parts))
    if missing:
        raise DiscError(f"{folder}: VTS_{vts:02d}_{missing[0]}.VOB is missing; the rip is incomplete")
    return tuple(files[f"VTS_{vts:02d}_{i}.VOB"] for i in parts)


def _bcd(byte: int) -> int:
    return (byte >> 4) * 10 + (byte & 0x0F)


def _dvd_time(raw: bytes) -> float:
    """Seconds of a 4-byte BCD hh:mm:ss:ff playback time; the top bits of ff give the rate."""
    hours, minutes, seconds = _bcd(raw[0]), _bcd(raw[1]), _bcd(raw[2])
    rate = {1: 25.0, 3: 30000 / 1001}.get(raw[3] >> 6)
    frames = _bcd(raw[3] & 0x3F)
    return hours * 3600 + minutes * 60 + seconds + (frames / rate if rate else 0.0)


def _u8(data: bytes, at: int) -> int:
    return data[at]


def _u16(data: bytes, at: int) -> int:
    return struct.unpack_from(">H", data, at)[0]


def _u32(data: bytes, at: int) -> int:
    return struct.unpack_from(">I", data, at)[0]


def _language(raw: bytes) -> str | None:
    text = raw.decode("latin-1")
    return text.lower() if text.isalpha() and text.isascii() else None


def _read_ifo(folder: Path, stem: str, magic: bytes) -> tuple[bytes, str]:
    """Bytes of STEM.IFO, or of STEM.BUP when the IFO is missing or damaged."""
    files = _files(folder)
    problems = []
    for ext, source in (("IFO", "ifo"), ("BUP", "bup")):
        path = files.get(f"{stem}.{ext}")
        if path is None:
            problems.append(f"{stem}.{ext} missing")
            continue
        data = path.read_bytes()
        if data[:12] == magic:
            return data, source
        problems.append(f"{path.name} is not a {magic.decode()} file")
    raise DiscError(f"{folder}: cannot read {stem} ({'; '.join(problems)})")


@dataclass
class _TitleEntry:
    number: int
    chapters: int
    vts: int
    ttn: int
    angles: int = 1


def _titles(vmg: bytes, folder: Path) -> list[_TitleEntry]:
    # VMGI byte 0xC4: sector of TT_SRPT, the table of every title on the disc
    base = _u32(vmg, 0xC4) * SECTOR
    try:
        count = _u16(vmg, base)
        entries = []
        for i in range(count):
            at = base + 8 + 12 * i
            entries.append(_TitleEntry(i + 1, _u16(vmg, at + 2), _u8(vmg, at + 6), _u8(vmg, at + 7),
                                       max(_u8(vmg, at + 1), 1)))
    except struct.error:
        raise DiscError(f"{folder}: VIDEO_TS.IFO title table is truncated") from None
    if not entries:
        raise DiscError(f"{folder}: VIDEO_TS.IFO lists no titles")
    return entries


@dataclass
class _Pgc:
    duration: float
    programs: list[int]  # entry cell number (1-based) of each program
    cells: list[tuple[float, int, int, int]]  # (seconds, first sector, last sector, category byte)
    positions: list[tuple[int, int]]  # (VOB id, cell id) of each cell
    audio_control: list[int]  # 8 words: bit 15 = stream present, bits 8-10 = its number in the VOBs
    subpicture_control: list[int]  # 32 words: bit 31 present; 4:3, wide, letterbox, pan&scan numbers
    palette: tuple[tuple[int, int, int], ...]  # 16 (Y, Cr, Cb) colours of the subpictures


def _pgc(vts: bytes, at: int) -> _Pgc:
    n_programs, n_cells = _u8(vts, at + 2), _u8(vts, at + 3)
    program_map, cell_table, position_table = _u16(vts, at + 0xE6), _u16(vts, at + 0xE8), _u16(vts, at + 0xEA)
    programs = [_u8(vts, at + program_map + i) for i in range(n_programs)]
    cells, positions = [], []
    for i in range(n_cells):
        c = at + cell_table + 24 * i
        cells.append((_dvd_time(vts[c + 4:c + 8]), _u32(vts, c + 8), _u32(vts, c + 20), _u8(vts, c)))
        positions.append((_u16(vts, at + position_table + 4 * i), _u8(vts, at + position_table + 4 * i + 3)))
    audio_control = [_u16(vts, at + 0x0C + 2 * i) for i in range(8)]
    subpicture_control = [_u32(vts, at + 0x1C + 4 * i) for i in range(32)]
    palette = tuple((vts[at + 0xA4 + 4 * i + 1], vts[at + 0xA4 + 4 * i + 2], vts[at + 0xA4 + 4 * i + 3])
                    for i in range(16))
    return _Pgc(_dvd_time(vts[at + 4:at + 8]), programs, cells, positions, audio_control, subpicture_control,
                palette)


def _angle_cells(pgc: _Pgc, angle: int) -> list[int]:
    """Indices of the cells a player plays for `angle` (1-based): outside angle blocks every cell, inside
    an angle block the angle-th cell of the block."""
    chosen, block = [], []
    for i, (_, _, _, category) in enumerate(pgc.cells):
        mode, kind = category >> 6, (category >> 4) & 0x3
        if kind != 1 or mode == 0:  # not in an angle block
            chosen.append(i)
            continue
        block.append(i)
        if mode == 3:  # last cell of the block
            chosen.append(block[min(angle, len(block)) - 1])
            block = []
    return chosen


def _title_facts(vts: bytes, entry: _TitleEntry, angle: int = 1) -> dict:
    """Duration, chapter starts, cells (PGC order, one angle), palette of one title from its VTS IFO."""
    ptt_base = _u32(vts, 0xC8) * SECTOR  # VTS_PTT_SRPT: chapters -> (PGC, program)
    pgci_base = _u32(vts, 0xCC) * SECTOR  # VTS_PGCI: the program chains
    ptt_at = ptt_base + _u32(vts, ptt_base + 8 + 4 * (entry.ttn - 1))
    chapters = [(_u16(vts, ptt_at + 4 * i), _u16(vts, ptt_at + 4 * i + 2)) for i in range(entry.chapters)]
    pgcs: dict[int, _Pgc] = {}
    for pgcn, _ in chapters:
        if pgcn not in pgcs:
            pgcs[pgcn] = _pgc(vts, pgci_base + _u32(vts, pgci_base + 8 + 8 * (pgcn - 1) + 4))
    # a title may span several PGCs; they play one after another in chapter order
    offsets, total, cells = {}, 0.0, []
    played: dict[int, list[int]] = {}
    for pgcn, pgc in pgcs.items():
        offsets[pgcn] = total
        played[pgcn] = _angle_cells(pgc, angle)
        total += sum(pgc.cells[i][0] for i in played[pgcn]) or pgc.duration
        cells += [Cell(*pgc.positions[i], pgc.cells[i][1], pgc.cells[i][2], pgc.cells[i][0]) for i in played[pgcn]]
    starts = []
    for pgcn, pgn in chapters:
        pgc = pgcs[pgcn]
        entry_cell = pgc.programs[pgn - 1] if pgn - 1 < len(pgc.programs) else 1
        before = sum(pgc.cells[i][0] for i in played[pgcn] if i < entry_cell - 1)
        starts.append(round(offsets[pgcn] + before, 3))
    first = next(iter(pgcs.values()))
    return {"duration": round(total, 3), "chapters": tuple(starts), "cells": tuple(cells),
            "audio_control": first.audio_control, "subpicture_control": first.subpicture_control,
            "palette": first.palette}


# first MPEG-PS (sub-)stream id of each audio coding; the PGC's audio control gives the number after it
_AUDIO_ID_BASE = {"ac3": 0x80, "dts": 0x88, "pcm_dvd": 0xA0, "mp1": 0xC0, "mp2": 0xC0}


def _streams(vts: bytes, audio_control: list[int] | None = None, subpicture_control: list[int] | None = None) -> dict:
    """Audio and subpicture attributes from the VTSI_MAT header, with the stream ids the PGC's control
    tables give them (never guessed from counts: a disc may number its streams in any order)."""
    video = _u16(vts, 0x200)
    system = {0: "ntsc", 1: "pal"}.get((video >> 12) & 0x3)
    aspect = {0: "4:3", 3: "16:9"}.get((video >> 10) & 0x3)
    audio = []
    for i in range(min(_u16(vts, 0x202), 8)):
        at = 0x204 + 8 * i
        codec = _AUDIO_CODECS.get(vts[at] >> 5, "unknown")
        control = audio_control[i] if audio_control else 0
        if control & 0x8000:
            number = (control >> 8) & 0x7
        else:  # no PGC (or the stream is marked absent): the n-th stream of its coding, as authoring tools do
            number = sum(1 for a in audio if _AUDIO_ID_BASE.get(a.codec) == _AUDIO_ID_BASE.get(codec))
        audio.append(AudioStream(i, _AUDIO_ID_BASE.get(codec, 0x80) + number, codec,
                                 _language(vts[at + 2:at + 4]), (vts[at + 1] & 0x7) + 1))
    subtitles = []
    for i in range(min(_u16(vts, 0x254), 32)):
        at = 0x256 + 6 * i
        control = subpicture_control[i] if subpicture_control else 0
        if control & 0x80000000:
            # the PGC names one stream per display mode: 4:3 (bits 24-28) or, on a 16:9 title, wide (16-20)
            number = (control >> 16) & 0x1F if aspect == "16:9" else (control >> 24) & 0x1F
        else:
            number = i
        subtitles.append(SubtitleStream(i, 0x20 + number, _language(vts[at + 2:at + 4])))
    line21 = {"field1": bool(video & 0x80), "field2": bool(video & 0x40)}  # closed captions in the user data
    return {"audio": tuple(audio), "subtitles": tuple(subtitles), "system": system, "aspect": aspect,
            "line21": line21}


@dataclass(frozen=True)
class Title(Record):
    """One title of a disc as a player plays it: the one title record, for choosing titles (one title or
    every episode) and, once read_title has chosen, for every later step (read_title writes it).

    ``source`` says where the facts came from: "ifo", "bup" (the backup copy) or "vob-size" (no IFOs: the
    title set with the most bytes was taken; number, duration, languages and chapters are unknown).
    ``vobs`` are the title set's VOBs VTS_xx_1..N in play order (never VTS_xx_0, the menu), filled in by
    `find_title`; a title set may hold several titles, whose ``cells`` say which sectors each plays.
    """

    what = "disc title"

    number: int | None  # 1-based title number on the disc (`-title N` of FFmpeg's dvdvideo, `title_number: N`)
    vts: int  # title set number, the xx of VTS_xx_y.VOB
    angles: int
    duration: float | None  # seconds, the chosen angle's cells
    cells: tuple[Cell, ...]  # PGC order, one angle
    chapters: tuple[float, ...]  # chapter start times in seconds, first is 0.0
    audio: tuple[AudioStream, ...] = ()
    subtitles: tuple[SubtitleStream, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()  # 16 (Y, Cr, Cb)
    aspect: str | None = None  # "4:3" or "16:9" as the IFO declares it
    system: str | None = None  # "ntsc" or "pal" as the IFO declares it
    line21: bool = False  # the IFO says the video carries closed captions
    source: str = "ifo"
    vobs: tuple[Path, ...] = ()

    @property
    def unique_duration(self) -> float:
        """Seconds of distinct picture: a decoy that plays the same cells over and over counts them once."""
        seen: dict[tuple[int, int], float] = {}
        for cell in self.cells:
            seen.setdefault((cell.first_sector, cell.last_sector), cell.seconds)
        return round(sum(seen.values()), 3)

    @property
    def concat_url(self) -> str:
        """FFmpeg input URL that reads the VOBs as one stream (``concat:`` protocol)."""
        return "concat:" + "|".join(str(v) for v in self.vobs)


def _ifo_titles(folder: Path, angle: int = 1) -> list[Title]:
    vmg, vmg_source = _read_ifo(folder, "VIDEO_TS", b"DVDVIDEO-VMG")
    titles = []
    for entry in _titles(vmg, folder):
        vts, source = _read_ifo(folder, f"VTS_{entry.vts:02d}_0", b"DVDVIDEO-VTS")
        try:
            facts = _title_facts(vts, entry, min(angle, entry.angles))
            streams = _streams(vts, facts.pop("audio_control"), facts.pop("subpicture_control"))
        except (struct.error, IndexError, ZeroDivisionError, StopIteration):
            raise DiscError(f"{folder}: VTS_{entry.vts:02d}_0 tables for title {entry.number} are damaged") from None
        line21 = streams.pop("line21")
        titles.append(Title(number=entry.number, vts=entry.vts, angles=entry.angles,
                                line21=line21["field1"] or line21["field2"],
                                source="bup" if "bup" in (source, vmg_source) else "ifo", **facts, **streams))
    return titles


def list_titles(video_ts: Path, *, angle: int = 1) -> list[Title]:
    """Every title of a disc with IFOs (or their .BUP copies), in title-number order, as a player plays it:
    duration, cells in PGC order for `angle`, chapters, streams with their ids and languages, palette."""
    return _ifo_titles(_video_ts_dir(video_ts), angle)


def choose_title(titles: list[Title], title_number: int | str = "auto") -> tuple[Title, str]:
    """The title to master and why: `title_number` N, or for `auto` the main feature, the title with the
    most distinct picture (a decoy looping a few cells is long, but not in distinct picture); ties go to
    the lower number."""
    if not titles:
        raise DiscError("the disc lists no titles")
    if str(title_number) != "auto":
        wanted = int(title_number)
        for info in titles:
            if info.number == wanted:
                return info, f"title {wanted} as title_number asks"
        raise DiscError(f"title_number: {wanted}: the disc has titles 1..{len(titles)}")
    main = max(titles, key=lambda t: (t.unique_duration, -t.number))
    reason = f"title {main.number} is the main feature: {main.unique_duration:.3f} s of distinct picture"
    longest = max(titles, key=lambda t: (t.duration, -t.number))
    if longest is not main:
        reason += (f"; title {longest.number} runs longer ({longest.duration:.3f} s) but replays the same "
                   f"cells ({longest.unique_duration:.3f} s distinct): a decoy")
    others = [f"{t.number}: {t.duration:.3f} s" for t in titles if t is not main]
    if others:
        reason += f" (other titles {', '.join(others)})"
    return main, reason


def _from_ifos(folder: Path, title_number: int | str = "auto", angle: int = 1) -> Title:
    info, _ = choose_title(_ifo_titles(folder, angle), title_number)
    return replace(info, vobs=_vobs(folder, info.vts))


def _probe_streams(vobs: tuple[Path, ...], ffprobe: str) -> dict:
    """Audio/subtitle streams and duration of VOBs without IFOs, languages unknown."""
    url = "concat:" + "|".join(str(v) for v in vobs)
    cmd = [ffprobe, "-v", "error", "-show_entries", "stream=index,id,codec_type,codec_name,channels:format=duration",
           "-of", "json", url]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise DiscError(f"{vobs[0]}: ffprobe cannot read the VOBs: {result.stderr.strip().splitlines()[-1:]}")
    info = json.loads(result.stdout)
    audio, subtitles = [], []
    for s in sorted(info.get("streams", []), key=lambda s: int(s.get("id", "0x0"), 16)):
        sid = int(s.get("id", "0x0"), 16)
        if s.get("codec_type") == "audio":
            audio.append(AudioStream(len(audio), sid, s.get("codec_name", "unknown"), None, s.get("channels")))
        elif s.get("codec_type") == "subtitle":
            subtitles.append(SubtitleStream(len(subtitles), sid, None))
    duration = info.get("format", {}).get("duration")
    return {"audio": tuple(audio), "subtitles": tuple(subtitles),
            "duration": round(float(duration), 3) if duration else None}


def _from_vob_sizes(folder: Path, ffprobe: str | None) -> Title:
    sizes: dict[int, int] = {}
    for name, path in _files(folder).items():
        m = VOB_NAME.match(name)
        # VTS_xx_0.VOB is the title set's menu, never part of a title
        if m and m.group(2) != "0":
            sizes[int(m.group(1))] = sizes.get(int(m.group(1)), 0) + path.stat().st_size
    if not sizes:
        raise DiscError(f"{folder}: no IFO files and no VTS_xx_N.VOB files")
    vts = max(sizes, key=lambda n: (sizes[n], -n))
    vobs = _vobs(folder, vts)
    facts = _probe_streams(vobs, ffprobe) if ffprobe else {"duration": None}
    return Title(None, vts, 1, facts.pop("duration"), (), (), source="vob-size", vobs=vobs, **facts)


def find_title(video_ts: Path, *, ffprobe: str | None = "ffprobe", title_number: int | str = "auto",
               angle: int = 1) -> Title:
    """The main title (or title `title_number`) of a DVD folder: its VOBs in order, streams and chapters.

    ``video_ts`` is the VIDEO_TS folder or the disc root above it.  With IFOs (or their .BUP
    copies) the title table is read and :func:`choose_title` picks the title.  Without any IFO the title
    set with the most bytes in VTS_xx_1..N.VOB is taken; ``ffprobe`` (None to skip) then
    lists its audio/subtitle streams and duration, with languages unknown and no chapters.
    Raises DiscError (one line naming the path) for anything else that is wrong.
    """
    folder = _video_ts_dir(video_ts)
    names = _files(folder)
    if not any(name.endswith((".IFO", ".BUP")) for name in names):
        return _from_vob_sizes(folder, ffprobe)
    return _from_ifos(folder, title_number, angle)


def _iso_records(image, extent: int, size: int):
    """(name, extent, size, is_folder) of each entry of an ISO 9660 directory (records never cross a sector)."""
    image.seek(extent * SECTOR)
    data = image.read(size)
    at = 0
    while at < len(data):
        length = data[at]
        if length == 0:  # the rest of this sector is padding
            at = (at // SECTOR + 1) * SECTOR
            continue
        record = data[at:at + length]
        name = record[33:33 + record[32]]
        if name not in (b"\x00", b"\x01"):  # not "." or ".."
            yield (name.decode("ascii", "replace").split(";")[0].rstrip("."), _u32_le(record, 2), _u32_le(record, 10),
                   bool(record[25] & 2))
        at += length


def _u32_le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def iso_ifos(image_path: Path, into: Path) -> Path:
    """Copy the IFO and BUP files of a DVD image (an ISO file or a drive's device) into the folder `into`
    and return it: the title tables every title choice reads, a few hundred KiB (the VOBs stay in the
    image, which FFmpeg's dvdvideo demuxer reads directly). DVD images carry an ISO 9660 directory beside
    their UDF one (the "UDF bridge" DVD-Video requires), which is read here."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        with open(image_path, "rb") as image:
            image.seek(16 * SECTOR)
            descriptor = image.read(SECTOR)
            if descriptor[1:6] != b"CD001" or descriptor[0] != 1:
                raise DiscError(f"{image_path}: not a DVD image (no ISO 9660 volume descriptor at sector 16)")
            root = descriptor[156:156 + 34]
            entries = list(_iso_records(image, _u32_le(root, 2), _u32_le(root, 10)))
            folder = next((e for e in entries if e[3] and e[0].upper() == "VIDEO_TS"), None)
            if folder is None:
                raise DiscError(f"{image_path}: the image has no VIDEO_TS folder; is it a DVD-Video disc?")
            copied = 0
            for name, extent, size, is_folder in _iso_records(image, folder[1], folder[2]):
                if not is_folder and name.upper().endswith((".IFO", ".BUP")):
                    image.seek(extent * SECTOR)
                    (into / name.upper()).write_bytes(image.read(size))
                    copied += 1
    except OSError as error:
        raise DiscError(f"{image_path}: cannot read the disc image ({error.strerror or error})") from None
    if not copied:
        raise DiscError(f"{image_path}: VIDEO_TS in the image holds no IFO or BUP file")
    return into
