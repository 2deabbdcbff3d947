"""Small DVD-Video discs authored with the tools that author real ones, for the title reader's tests.

mjpegtools' ``mpeg2enc`` (video, 352x240 NTSC: the smallest DVD frame, so tests stay quick) and ``mplex``
(program streams with NAV packs, AC3, MPEG-1 Layer II and 16-bit LPCM audio; it writes a video PTS once per
GOP, as real discs often do; ffmpeg 5.1's ``-f dvd`` also writes LPCM, but spumux adds no subpicture to its
output), ffmpeg 5.1 for the audio elementary streams, ``spumux`` for subpictures (``force="yes"``
for forced ones) and ``dvdauthor`` for the IFOs: two ``<pgc>`` in one ``<titles>`` are two titles in one
title set, several ``<vob>`` in one ``<pgc>`` restart the timestamps at every VOB ID.

What dvdauthor cannot author (a PGC that plays its cells out of file order, a decoy title that loops one
cell) is made by patching the PGC's cell tables in both the IFO and its BUP copy: :func:`patch_cells`.

Every segment carries a *marker*: a white flash in the picture and a 1 kHz beep in every audio track at
the same instant, so a test can measure sync anywhere in the title.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

RATE = Fraction(30000, 1001)
WIDTH, HEIGHT = 352, 240
SECTOR = 2048
TOOLS = ("mpeg2enc", "mplex", "dvdauthor", "spumux", "ffmpeg")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if not shutil.which(t)]


def _run(cmd: list[str], *, stdin=None, env: dict | None = None, cwd: Path | None = None) -> bytes:
    result = subprocess.run(cmd, input=stdin, capture_output=True, env=env, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: {result.stderr.decode(errors='replace')[-800:]}")
    return result.stdout


def _ffmpeg(*args: str) -> bytes:
    return _run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args])


def marker_video(out: Path, frames: int, flash: int, *, shade: int = 60, captions: bool = False) -> Path:
    """`frames` frames of MPEG-2 (mpeg2enc, DVD profile) of a moving test pattern darkened to `shade`, with
    one white frame at `flash`; with `captions`, EIA-608 captions "HI" in the GOP user data (DVD format)."""
    graph = (f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE},lutyuv=y='val*{shade}/255',"
             f"drawbox=color=white:t=fill:enable='eq(n,{flash})',format=yuv420p")
    y4m = _ffmpeg("-f", "lavfi", "-i", graph, "-frames:v", str(frames), "-f", "yuv4mpegpipe", "-")
    _run(["mpeg2enc", "-v", "0", "-f", "8", "-a", "2", "-n", "n", "-G", "15", "-o", str(out)], stdin=y4m)
    if captions:
        out.write_bytes(insert_captions(out.read_bytes()))
    return out


def _odd_parity(byte: int) -> int:
    return byte | (0x80 if bin(byte).count("1") % 2 == 0 else 0)


# EIA-608 field-1 pairs, one per frame: resume caption loading, "HI", end of caption (shown), later erase
CAPTION_WORDS = [(0x14, 0x20), (0x14, 0x20), (ord("H"), ord("I")), (0x14, 0x2F), (0x14, 0x2F)]
CAPTION_ERASE_AT = 20  # frame of the erase-displayed-memory command
CAPTION_TEXT = "HI"


def insert_captions(stream: bytes) -> bytes:
    """Add DVD closed-caption user data ("CC", 0x01, 0xF8: one field-1 and one field-2 word per picture)
    after every GOP header of an MPEG-2 elementary stream."""
    gops = [i for i in range(len(stream) - 3) if stream[i:i + 4] == b"\x00\x00\x01\xb8"]
    pictures = [i for i in range(len(stream) - 3) if stream[i:i + 4] == b"\x00\x00\x01\x00"]
    out, last, frame = bytearray(), 0, 0
    for n, gop in enumerate(gops):
        end = gops[n + 1] if n + 1 < len(gops) else len(stream)
        count = sum(1 for p in pictures if gop < p < end)
        blocks = bytearray()
        for k in range(count):
            word = (0x80, 0x80)
            if frame + k < len(CAPTION_WORDS):
                word = CAPTION_WORDS[frame + k]
            elif frame + k in (CAPTION_ERASE_AT, CAPTION_ERASE_AT + 1):
                word = (0x14, 0x2C)
            blocks += bytes([0xFF, _odd_parity(word[0]), _odd_parity(word[1]), 0xFE, 0x80, 0x80])
        frame += count
        user_data = b"\x00\x00\x01\xb2CC\x01\xf8" + bytes([0x80 | (count << 1)]) + bytes(blocks)
        out += stream[last:gop + 8] + user_data
        last = gop + 8
    out += stream[last:]
    return bytes(out)


LPCM_BITS = {"lpcm": 16, "lpcm24": 24}


def dvd_lpcm24(raw: bytes) -> bytes:
    """Big-endian 24-bit stereo samples in DVD LPCM's layout, which mplex copies as it is: per two sample
    frames, the upper 16 bits of the four samples, then their low bytes."""
    out = bytearray()
    for group in range(0, len(raw) - len(raw) % 12, 12):
        samples = [raw[group + 3 * k:group + 3 * k + 3] for k in range(4)]
        out += b"".join(s[:2] for s in samples) + bytes(s[2] for s in samples)
    return bytes(out)


def marker_audio(out: Path, seconds: float, beep: float, codec: str) -> Path:
    """`seconds` of silence with a 0.1 s 1 kHz beep at `beep` s, as an elementary stream for mplex.

    lpcm24's samples carry a faint noise below the 16th bit, so a conversion that keeps only 16 bits
    shows; the unpacked samples are written beside it as `<out>.s24be` to compare with."""
    beeps = f"if(between(t,{beep},{beep + 0.1}),0.5*sin(2*PI*1000*t),0)"
    graph = f"aevalsrc='{beeps}':s=48000:d={seconds}"
    if codec == "lpcm24":
        graph = f"aevalsrc='{beeps}+0.00002*random(0)|{beeps}+0.00002*random(1)':s=48000:d={seconds}"
    args = {"ac3": ["-c:a", "ac3", "-b:a", "192k", "-f", "ac3"], "mp2": ["-c:a", "mp2", "-b:a", "192k", "-f", "mp2"],
            "dts": ["-c:a", "dca", "-strict", "-2", "-b:a", "768k", "-f", "dts"],
            # raw big-endian 16-bit stereo, which mplex packs as DVD LPCM (its -L option gives the layout)
            "lpcm": ["-c:a", "pcm_s16be", "-f", "s16be"], "lpcm24": ["-c:a", "pcm_s24be", "-f", "s24be"]}
    target = out.with_name(out.name + ".s24be") if codec == "lpcm24" else out
    _ffmpeg("-f", "lavfi", "-i", graph, "-ac", "2", *args[codec], str(target))
    if codec == "lpcm24":
        out.write_bytes(dvd_lpcm24(target.read_bytes()))
    return out


def segment(work: Path, name: str, frames: int, flash: int, *, audio: tuple[str, ...] = ("ac3",),
            captions: bool = False) -> Path:
    """One VOB (mplex, DVD format) of `frames` frames with a marker at frame `flash` in picture and sound."""
    video = marker_video(work / f"{name}.m2v", frames, flash, captions=captions)
    seconds = float(frames / RATE)
    # mplex knows an LPCM stream by its file name's .lpcm; -L gives each one's layout, in order
    tracks = [marker_audio(work / f"{name}.{n}.{'lpcm' if codec in LPCM_BITS else codec}", seconds,
                           float(flash / RATE), codec) for n, codec in enumerate(audio)]
    layouts = ",".join(f"48000:2:{LPCM_BITS[codec]}" for codec in audio if codec in LPCM_BITS)
    out = work / f"{name}.mpg"
    _run(["mplex", "-v", "0", "-f", "8", *(["-L", layouts] if layouts else []), "-o", str(out),
          str(video), *map(str, tracks)])
    return out


def subpicture_png(out: Path, y: int) -> Path:
    """A subtitle image: one opaque bar on a transparent frame (two colours, as spumux wants)."""
    _ffmpeg("-f", "lavfi", "-i", f"color=c=black:s={WIDTH}x{HEIGHT},format=rgba,"
            f"geq=r='255':g='255':b='0':a='255*between(Y,{y},{y + 24})*between(X,60,280)'", "-frames:v", "1", str(out))
    return out


def add_subpictures(vob: Path, work: Path, streams: list[list[tuple[bool, float, float]]]) -> Path:
    """Run spumux once per subpicture stream, each a list of (forced, start s, end s); stream n gets id
    0x20 + n and its bar 60 rows below stream n - 1's."""
    current = vob
    for n, spus in enumerate(streams):
        png = subpicture_png(work / f"sub{n}.png", 40 + 60 * n)
        xml = work / f"sub{n}.xml"
        entries = "".join(f'<spu start="{_clock(start)}" end="{_clock(end)}" image="{png}"'
                          f'{" force=" + chr(34) + "yes" + chr(34) if forced else ""}/>' for forced, start, end in spus)
        xml.write_text(f"<subpictures><stream>{entries}</stream></subpictures>\n")
        out = work / f"{vob.stem}.s{n}.mpg"
        # spumux reads the program stream on stdin and writes it, with the subpictures, to stdout
        with open(current, "rb") as source, open(out, "wb") as target:
            result = subprocess.run(["spumux", "-m", "dvd", "-s", str(n), str(xml)], stdin=source, stdout=target,
                                    stderr=subprocess.PIPE, env={**os.environ, "VIDEO_FORMAT": "NTSC"})
        if result.returncode != 0 or f" {len(spus)} subtitles added".encode() not in result.stderr:
            raise RuntimeError(f"spumux {xml}: {result.stderr.decode(errors='replace')[-500:]}")
        current = out
    return current


def _clock(seconds: float) -> str:
    return f"00:00:{seconds:06.3f}"


# the subpicture palette authored into the PGC (RGB); the IFO stores it as Y, Cr, Cb
PALETTE_RGB = ["000000", "ffff00", "ffffff", "0000ff", "ff0000", "00ff00", "808080", "404040",
               "c0c0c0", "ff00ff", "00ffff", "800000", "008000", "000080", "808000", "800080"]


def dvdauthor(work: Path, titles: list[list[tuple[Path, str]]], *, audio: list[tuple[str, str]],
              subtitles: list[str] = (), palette: bool = False) -> Path:
    """Author a VIDEO_TS with one title set holding `titles` (each a list of (VOB, chapters) played in one
    PGC); `audio` is (format, language) per stream, `subtitles` the subpicture languages."""
    dest = work / "DVD"
    shutil.rmtree(dest, ignore_errors=True)
    pal = ""
    if palette:
        (work / "pal.rgb").write_text("\n".join(PALETTE_RGB) + "\n")
        pal = f' palette="{work / "pal.rgb"}"'
    streams = "".join(f'<audio format="{fmt}" lang="{lang}"/>' for fmt, lang in audio)
    streams += "".join(f'<subpicture lang="{lang}"/>' for lang in subtitles)
    pgcs = "".join(f"<pgc{pal}>" + "".join(f'<vob file="{vob}" chapters="{chapters}"/>' for vob, chapters in pgc)
                   + "</pgc>" for pgc in titles)
    xml = work / "dvd.xml"
    xml.write_text(f'<dvdauthor dest="{dest}"><vmgm/><titleset><titles><video format="ntsc" aspect="4:3"/>'
                   f"{streams}{pgcs}</titles></titleset></dvdauthor>\n")
    _run(["dvdauthor", "-x", str(xml)], env={**os.environ, "VIDEO_FORMAT": "NTSC"})
    return dest / "VIDEO_TS"


def _pgc_offset(ifo: bytes, pgcn: int) -> int:
    pgci = struct.unpack_from(">I", ifo, 0xCC)[0] * SECTOR
    return pgci + struct.unpack_from(">I", ifo, pgci + 8 + 8 * (pgcn - 1) + 4)[0]


def patch_cells(video_ts: Path, pgcn: int, order: list[int]) -> None:
    """Rewrite PGC `pgcn` of title set 1 so it plays its own cells in `order` (1-based cell numbers, repeats
    allowed, as many entries as the PGC has cells): the cell playback table (PGC+0xE8, 24 bytes a cell)
    and the cell position table (PGC+0xEA, 4 bytes a cell), and the PGC's playback time; IFO and BUP both.
    dvdauthor cannot author this; players and libdvdnav follow these tables."""
    for name in ("VTS_01_0.IFO", "VTS_01_0.BUP"):
        path = video_ts / name
        ifo = bytearray(path.read_bytes())
        at = _pgc_offset(ifo, pgcn)
        n_cells = ifo[at + 3]
        if len(order) != n_cells:
            raise ValueError(f"PGC {pgcn} has {n_cells} cells, order names {len(order)}")
        playback = at + struct.unpack_from(">H", ifo, at + 0xE8)[0]
        position = at + struct.unpack_from(">H", ifo, at + 0xEA)[0]
        cells = [bytes(ifo[playback + 24 * i:playback + 24 * i + 24]) for i in range(n_cells)]
        positions = [bytes(ifo[position + 4 * i:position + 4 * i + 4]) for i in range(n_cells)]
        for i, cell in enumerate(order):
            ifo[playback + 24 * i:playback + 24 * i + 24] = cells[cell - 1]
            ifo[position + 4 * i:position + 4 * i + 4] = positions[cell - 1]
        frames = sum(_bcd_frames(ifo[playback + 24 * i + 4:playback + 24 * i + 8]) for i in range(n_cells))
        ifo[at + 4:at + 8] = _frames_bcd(frames)
        path.write_bytes(bytes(ifo))


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


def _unbcd(byte: int) -> int:
    return (byte >> 4) * 10 + (byte & 0xF)


def _bcd_frames(raw: bytes) -> int:
    """Frames (at 30, as the BCD time counts them) of a 4-byte DVD playback time."""
    return ((_unbcd(raw[0]) * 60 + _unbcd(raw[1])) * 60 + _unbcd(raw[2])) * 30 + _unbcd(raw[3] & 0x3F)


def _frames_bcd(frames: int) -> bytes:
    seconds, ff = divmod(frames, 30)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return bytes([_bcd(hh), _bcd(mm), _bcd(ss), 0xC0 | _bcd(ff)])  # 0xC0: 29.97 fps


def _lavfi_rows(ffprobe: str, graph: str, tag: str) -> list[tuple[float, float]]:
    cmd = [ffprobe, "-v", "error", "-f", "lavfi", "-i", graph, "-show_entries", f"frame=pts_time:frame_tags={tag}",
           "-of", "csv=p=0"]
    rows = []
    for line in _run(cmd).decode().split():
        fields = line.split(",")
        if len(fields) >= 2 and fields[0] not in ("", "N/A") and fields[1] not in ("", "-inf", "inf", "nan"):
            rows.append((float(fields[0]), float(fields[1])))
    return rows


def _movie(path: Path) -> str:
    return str(Path(path).absolute()).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def flash_times(path: Path, ffprobe: str = "ffprobe") -> list[float]:
    """Times (s) of the white marker frames of a file's first video stream, on the file's clock."""
    rows = _lavfi_rows(ffprobe, f"movie={_movie(path)},signalstats", "lavfi.signalstats.YAVG")
    return [t for t, luma in rows if luma > 150]


def beep_times(path: Path, audio: int, ffprobe: str = "ffprobe") -> list[float]:
    """Onsets (s) of the marker beeps of audio stream `audio` (0-based among audio streams), to 5 ms."""
    graph = f"amovie={_movie(path)}:si={audio_stream_index(path, audio, ffprobe)},asetnsamples=240,astats=metadata=1:reset=1"
    loud = [t for t, level in _lavfi_rows(ffprobe, graph, "lavfi.astats.Overall.RMS_level") if level > -20]
    return [t for n, t in enumerate(loud) if n == 0 or t - loud[n - 1] > 0.3]


def audio_stream_index(path: Path, audio: int, ffprobe: str = "ffprobe") -> int:
    cmd = [ffprobe, "-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of", "csv=p=0", str(path)]
    return [int(v.strip(",")) for v in _run(cmd).decode().split()][audio]
