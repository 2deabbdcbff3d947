"""VOB files without their IFOs, joined as a player would play them: each VOB ID's clock offset to run on.

A title of several VOB IDs (an episode's parts, a film's seamless branches) restarts its timestamps at
each VOB ID: the pack headers' system clock (SCR) and the PTS go back to the start. With the IFOs, FFmpeg's
dvdvideo demuxer offsets every cell by the time played before it. Without them, a byte join leaves the
resets in the file; tools that then make each stream's timestamps increasing on its own move audio and
picture apart by however much the audio of a VOB ID outlasts its last picture (92 ms per reset on the
test disc, adding up).

Here the VOB IDs are found where the SCR of a pack goes back, each is read as a part of the byte-joined
file (FFmpeg's ``subfile`` protocol: no copy) and FFmpeg's ``concat`` demuxer offsets each part by the
length of the pictures before it, dropping the audio packets that begin after a part's last picture (a
player skips them too at a new VOB ID's clock). The streams are copied, never re-encoded.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from ..run import media
from ..run.files import atomic_output

SECTOR = 2048
PACK_START = b"\x00\x00\x01\xba"
RESET_TICKS = 9000  # a pack whose SCR is 0.1 s (90 kHz ticks) before the previous pack's starts a new clock


def concat_files(parts: list[Path], out_path: Path) -> None:
    """Join VOBs byte for byte, as the DVD player reads them (a title is one MPEG stream split at 1 GiB)."""
    with atomic_output(out_path) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)


def _scr(sector: bytes) -> int | None:
    """The 33-bit SCR base of an MPEG-2 pack header (None for a sector that is not one: a damaged one)."""
    if sector[:4] != PACK_START or (sector[4] & 0xC0) != 0x40:
        return None
    b = sector
    return ((((b[4] >> 3) & 7) << 30) | ((b[4] & 3) << 28) | (b[5] << 20) | ((b[6] >> 3) << 15)
            | ((b[6] & 3) << 13) | (b[7] << 5) | (b[8] >> 3))


def clock_resets(path: Path) -> list[int]:
    """Byte offsets of the packs where the system clock goes back: the starts of the later VOB IDs."""
    resets: list[int] = []
    last = None
    offset = 0
    with open(path, "rb") as src:
        while chunk := src.read(SECTOR * 8192):
            for at in range(0, len(chunk) - SECTOR + 1, SECTOR):
                scr = _scr(chunk[at:at + 9])
                if scr is None:
                    continue
                if last is not None and scr < last - RESET_TICKS:
                    resets.append(offset + at)
                last = scr
            offset += len(chunk)
    return resets


def _part_url(path: Path, start: int, end: int) -> str:
    return f"subfile,,start,{start},end,{end},,:{path.absolute()}"


def _picture_span(url: str) -> tuple[float, float]:
    """(start of the part's clock, end of its last picture) in its own time, from the video packets: the
    first picture's time plus every picture's duration (muxers such as mplex stamp a PTS on few packets,
    so the last packet's own time is often unknown)."""
    cmd = [media.tool("ffprobe"), "-v", "error", *media.PROBE_ARGS, "-protocol_whitelist", "file,subfile",
           "-select_streams", "v:0", "-show_entries", "format=start_time:packet=pts_time,duration_time", "-of",
           "json", url]
    facts = json.loads(media.run(cmd, what=f"{url}: reading a VOB ID's packet times").stdout)
    packets = facts.get("packets", [])
    times = [float(p["pts_time"]) for p in packets if p.get("pts_time") not in (None, "N/A")]
    if not times:
        raise ValueError("no picture")
    length = sum(float(p["duration_time"]) for p in packets if p.get("duration_time") not in (None, "N/A"))
    return float(facts["format"]["start_time"]), min(times) + length


def _quoted(url: str) -> str:
    return "'" + url.replace("'", "'\\''") + "'"


def join_vobs(parts: list[Path], out: Path, *, log: logging.Logger) -> None:
    """Join VOB files in order into one MPEG program stream at `out`, each VOB ID's clock running on."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".join-", dir=out.parent) as folder:
        if len(parts) == 1:
            joined = parts[0]  # read in place
        else:
            joined = Path(folder) / "joined.vob"
            concat_files(parts, joined)
        resets = clock_resets(joined)
        if not resets:
            log.info("one clock throughout: the VOBs are joined byte for byte")
            if len(parts) == 1:
                concat_files(parts, out)
            else:
                joined.replace(out)
            return
        bounds = [0, *resets, joined.stat().st_size]
        lines = []
        for n, (start, end) in enumerate(zip(bounds, bounds[1:]), start=1):
            url = _part_url(joined, start, end)
            try:
                first, last = _picture_span(url)
            except ValueError:
                log.warning("VOB ID part %d (bytes %d-%d) holds no picture: left out", n, start, end)
                continue
            log.info("VOB ID part %d: bytes %d-%d, pictures end %.3f s after its clock's start", n, start, end,
                     last - first)
            lines += [f"file {_quoted(url)}", f"duration {last - first:.6f}", f"outpoint {last:.6f}"]
        log.info("the system clock restarts %d time(s) (new VOB IDs): each part offset by the pictures "
                 "before it, audio past a part's last picture dropped", len(resets))
        listing = Path(folder) / "parts.txt"
        listing.write_text("ffconcat version 1.0\n" + "\n".join(lines) + "\n")
        with atomic_output(out) as tmp:
            cmd = media.ffmpeg_args("-protocol_whitelist", "file,subfile", "-f", "concat", "-safe", "0",
                                    *media.PROBE_ARGS, "-i", media.input_path(listing), "-map", "0:v:0",
                                    "-map", "0:a?", "-map", "0:s?", "-c", "copy", "-f", "vob", tmp)
            media.run(cmd, what=f"{parts[0]}: joining the VOB IDs of {len(parts)} VOB file(s)")
