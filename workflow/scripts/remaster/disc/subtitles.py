"""DVD subtitles for the master: VobSub streams with their palette and forced flag, closed captions as text.

A DVD marks a subpicture *forced* (shown even with subtitles off) with the FSTA_DSP command in the
subpicture's control sequence; Matroska marks a whole *track* forced (FlagForced). A stream whose every
subpicture is forced (the "foreign parts only" stream spumux writes with force="yes") becomes a forced
track. Closed captions (EIA-608 in the MPEG-2 picture user data) are decoded by FFmpeg's `subcc` output of
the `movie` source into a text (SubRip) track.
"""

from __future__ import annotations

import logging
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..run import media

if TYPE_CHECKING:  # the probe imports this module
    from .probe import ProbeSubtitle

FSTA_DSP = 0x00  # forced start display
_ARGUMENT_BYTES = {0x00: 0, 0x01: 0, 0x02: 0, 0x03: 2, 0x04: 2, 0x05: 6, 0x06: 4}


@dataclass(frozen=True)
class ForcedCount:
    forced: int
    total: int
    indices: tuple[int, ...] = ()  # which subpictures (0-based, in stream order) are forced

    @property
    def all_forced(self) -> bool:
        return self.total > 0 and self.forced == self.total

    @property
    def mixed(self) -> bool:
        """Some but not all subpictures are forced: a forced-only copy of the track is added."""
        return 0 < self.forced < self.total


def spu_is_forced(spu: bytes) -> bool:
    """Whether one subpicture unit (2-byte size, 2-byte control offset, pixel data, control sequences)
    carries the forced-display command."""
    if len(spu) < 4:
        return False
    at = struct.unpack_from(">H", spu, 2)[0]
    seen = set()
    while 0 <= at and at + 4 <= len(spu) and at not in seen:
        seen.add(at)
        following = struct.unpack_from(">H", spu, at + 2)[0]
        cmd_at = at + 4
        while cmd_at < len(spu):
            command = spu[cmd_at]
            if command == FSTA_DSP:
                return True
            if command == 0xFF:
                break
            if command == 0x07:  # CHG_COLCON: its own 2-byte size
                if cmd_at + 3 > len(spu):
                    break
                cmd_at += 1 + struct.unpack_from(">H", spu, cmd_at + 1)[0]
                continue
            if command not in _ARGUMENT_BYTES:
                break
            cmd_at += 1 + _ARGUMENT_BYTES[command]
        if following == at:
            break
        at = following
    return False


def split_spus(data: bytes) -> list[bytes]:
    """The subpicture units of a VobSub stream's packets written back to back (each starts with its size)."""
    spus, at = [], 0
    while at + 4 <= len(data):
        size = struct.unpack_from(">H", data, at)[0]
        if size < 4:
            break
        spus.append(data[at:at + size])
        at += size
    return spus


def count_forced(title: Path, streams: list[int]) -> dict[int, ForcedCount]:
    """Which subpictures of each VobSub stream in `streams` (0-based among subtitle streams) are forced, read
    in one pass over the title (a disc may have 32 subtitle streams)."""
    if not streams:
        return {}
    # subpicture data is small (MBs for a film): the system temp folder, never the (maybe read-only) source folder
    with tempfile.TemporaryDirectory(prefix="remaster-forced-") as folder:
        outputs = {n: Path(folder) / f"{n}.sub" for n in streams}
        args: list[str] = []
        for n, path in outputs.items():
            args += ["-map", f"0:s:{n}", "-c", "copy", "-f", "data", str(path)]
        media.run(media.ffmpeg_args(*media.PROBE_ARGS, "-i", media.input_path(title), *args),
                  what=f"{title}: reading the subtitle streams")
        counted = {}
        for n, path in outputs.items():
            spus = split_spus(path.read_bytes())
            indices = tuple(k for k, spu in enumerate(spus) if spu_is_forced(spu))
            counted[n] = ForcedCount(len(indices), len(spus), indices)
    return counted


def keep_only(indices: tuple[int, ...]) -> str:
    """A `noise` bitstream filter that drops every packet but those numbered `indices` (runs as between())."""
    runs: list[list[int]] = []
    for n in indices:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    # commas inside the expression are escaped: the bitstream filter list splits on them
    kept = "+".join(f"between(n\\,{first}\\,{last})" for first, last in runs)
    return f"noise=drop='not({kept})'"


# user data carrying EIA-608: the DVD format ("CC", 0x01, 0xF8) and ATSC A/53 ("GA94", type 3)
CAPTION_USER_DATA = (b"\x00\x00\x01\xb2CC\x01\xf8", b"\x00\x00\x01\xb2GA94\x03")


def has_closed_captions(title: Path, seconds: float | None = None) -> bool:
    """Whether the title's MPEG-2 video carries caption user data anywhere (or in its first `seconds`).

    Read from the bitstream, copied through a pipe and searched as it comes, stopping at the first caption:
    ffprobe's own flag needs a decoded frame with captions, which a Matroska title does not give, and a
    film's first caption may come minutes in. A title without any is read to its end (stream copy: I/O,
    no decoding)."""
    limit = ["-t", str(seconds)] if seconds else []
    cmd = media.ffmpeg_args(*media.PROBE_ARGS, "-i", media.input_path(title), "-map", "0:v:0", *limit,
                            "-c", "copy", "-f", "mpeg2video", "-")
    keep = max(len(marker) for marker in CAPTION_USER_DATA) - 1  # a marker may straddle two reads
    tail = b""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        try:
            while chunk := proc.stdout.read(1 << 20):
                window = tail + chunk
                if any(marker in window for marker in CAPTION_USER_DATA):
                    return True
                tail = window[-keep:]
        finally:
            if proc.poll() is None:
                proc.kill()
    return False


def _movie_source(path: Path) -> str:
    # filtergraph quoting: inside '…' only the quote itself needs escaping
    escaped = str(path.absolute()).replace("'", "'\\''")
    return f"movie=filename='{escaped}'[out0+subcc]"


def closed_captions(title: Path, out: Path) -> int:
    """Write the title's EIA-608 closed captions as SubRip to `out`, on the title's clock; return the
    number of captions (0: the title has none, and `out` is not written)."""
    # a DVD sends a GOP's caption words at its first picture: the decoder times captions per GOP, each shown
    # until its erase command (-fix_sub_duration would drop the caption an erase ends)
    cmd = media.ffmpeg_args("-copyts", "-f", "lavfi", "-i", _movie_source(title), "-map", "0:1",
                            "-c:s", "srt",
                            "-f", "srt", str(out))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not out.is_file():
        # no caption in the user data: FFmpeg has no subcc stream to map
        out.unlink(missing_ok=True)
        return 0
    count = sum(1 for line in out.read_text(errors="replace").splitlines() if "-->" in line)
    if count == 0:
        out.unlink(missing_ok=True)
    return count


def extract_subtitles(title: Path, out: Path, *, subtitles: Sequence[ProbeSubtitle], log: logging.Logger) -> dict:
    """Every subtitle stream of the title, stream-copied (the VobSub palette travels in the codec private
    data), forced tracks marked, a forced-only copy of each track that mixes forced and ordinary subpictures,
    and the closed captions as one more text track; written to `out` (Matroska) on the title's clock, in that
    order. Returns what was written, for the log and the tests."""
    vobsub = count_forced(title, [n for n, track in enumerate(subtitles) if track.codec == "dvd_subtitle"])
    flags = []
    for n, track in enumerate(subtitles):
        counted = vobsub.get(n, ForcedCount(0, 0))
        flags.append(counted)
        kind = ": a forced track" if counted.all_forced else ": a forced-only copy is added" if counted.mixed else ""
        log.info("subtitle %d (%s): %d subpictures, %d forced%s", n, track.language or "und",
                 counted.total, counted.forced, kind)
    mixed = [n for n, counted in enumerate(flags) if counted.mixed]
    captions = out.with_name(f".{out.name}.cc.srt")
    n_captions = closed_captions(title, captions)
    log.info("closed captions: %s", f"{n_captions} captions, kept as a text track" if n_captions else "none")
    try:
        args = ["-copyts", *media.PROBE_ARGS, "-i", media.input_path(title)]
        maps = ["-map", "0:s?"]
        options: list[str] = []
        for n, counted in enumerate(flags):
            options += [f"-disposition:s:{n}", "forced" if counted.all_forced else "0"]
        for j, n in enumerate(mixed):
            # Matroska marks whole tracks forced: the forced subpictures of a mixed stream get a track of their own
            track = len(flags) + j
            maps += ["-map", f"0:s:{n}"]
            options += [f"-bsf:s:{track}", keep_only(flags[n].indices), f"-disposition:s:{track}", "forced",
                        f"-metadata:s:s:{track}", "title=Forced only",
                        f"-metadata:s:s:{track}", f"language={subtitles[n].language or 'und'}"]
        if n_captions:
            args += ["-i", media.input_path(captions)]
            maps += ["-map", "1:s"]
            track = len(flags) + len(mixed)
            options += [f"-disposition:s:{track}", "0", f"-metadata:s:s:{track}", "title=Closed captions",
                        f"-metadata:s:s:{track}", "language=und"]
        cmd = media.ffmpeg_args(*args, *maps, "-c", "copy", *options, "-f", "matroska", str(out))
        media.run(cmd, what=f"{title}: copying the subtitle streams")
    finally:
        captions.unlink(missing_ok=True)
    return {"forced": [c.all_forced for c in flags], "forced_only": mixed, "captions": n_captions}
