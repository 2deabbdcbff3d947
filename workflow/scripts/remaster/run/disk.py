"""What a whole run needs on disk, estimated before any job runs (the pre-flight check of every master).

Bytes per frame measured by tests/bench/bench_disk.py and docs/workflow.md ("Disk per frame"), scaled by
pixels: the prepared title and its cut shards are SD FFV1, the upscaled shards at the output size in their
`upscaled_form` (x264 near-lossless or FFV1, both 10-bit 4:2:0), the delivery encode a few percent of that.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import RemasterError

SD_PIXELS = 720 * 576  # the largest DVD frame: the estimate never falls short for a DVD
PREPARED_BYTES_PER_PIXEL = 135_625 / (640 * 480)  # FFV1 yuv420p of the square-pixel SD title
UPSCALED_BYTES_PER_PIXEL = {  # per upscaled_form, 10-bit 4:2:0 at the output size
    "lossless": 834_914 / (1280 * 960),  # FFV1
    "compact": 834_914 / (1280 * 960) * 0.4,  # x264 CRF 4: 25-36% of FFV1 measured (tests, bench), 40% counted
}
ENCODED_BYTES_PER_PIXEL = 14_501 / (1280 * 960)  # x265 crf 18 10-bit (the default encoder)
FRAMES_PER_SECOND = 30  # NTSC video (PAL has 25; a field-rate deinterlace doubles it: see `field_rate`)
IN_FLIGHT_SHARDS = 2  # upscaled shards alive at once: one being written, one being encoded


@dataclass(frozen=True)
class Need:
    """One master's estimate, in bytes."""

    frames: int
    prepared: int
    upscaled: int  # every shard when kept, else the ones in flight
    encoded: int

    @property
    def total(self) -> int:
        return self.prepared + self.upscaled + self.encoded


def source_seconds(parts: tuple[Path, ...], ffprobe: str) -> float:
    """The source's duration from its container (ffprobe reads only the headers and the last packets)."""
    url = "concat:" + "|".join(str(p) for p in parts) if len(parts) > 1 else f"file:{parts[0]}"
    result = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json", url],
                            capture_output=True, text=True)
    try:
        return float(json.loads(result.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        return 0.0  # the probe step names an unreadable source properly; the estimate just leaves it out


def master_need(seconds: float, scale: float, shard_frames: int, keep_upscaled: bool, field_rate: bool = False,
                form: str = "compact") -> Need:
    frames = int(seconds * FRAMES_PER_SECOND * (2 if field_rate else 1)) + 1
    out_pixels = SD_PIXELS * scale * scale
    kept = frames if keep_upscaled else min(frames, IN_FLIGHT_SHARDS * shard_frames)
    return Need(frames, int(frames * SD_PIXELS * PREPARED_BYTES_PER_PIXEL),
                int(kept * out_pixels * UPSCALED_BYTES_PER_PIXEL[form]), int(frames * out_pixels * ENCODED_BYTES_PER_PIXEL))


def check_run(needs: dict[str, Need], folder: Path, free: int | None = None) -> int:
    """Raise a one-line RemasterError when the run's estimated need exceeds the free space; return the need."""
    total = sum(need.total for need in needs.values())
    folder = Path(folder)
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free if free is None else free
    if total > free:
        biggest = max(needs, key=lambda disc: needs[disc].total)
        raise RemasterError(f"{existing}: the run needs about {total / 1e9:.1f} GB ({len(needs)} masters, "
                            f"{sum(n.frames for n in needs.values()):,} frames; {biggest} alone "
                            f"{needs[biggest].total / 1e9:.1f} GB) and {free / 1e9:.1f} GB are free; free some "
                            "space or run fewer rows of the sheet at a time")
    return total
