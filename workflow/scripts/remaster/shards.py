"""Shard boundaries, atomic outputs, and frame-exact extraction of one shard from the title."""

from __future__ import annotations

import logging
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from . import media
from .errors import RemasterError


def partial_path(path: Path) -> Path:
    """Where an output is written until it is complete; a rerun never mistakes it for the real file."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


@contextmanager
def atomic_output(path: Path):
    """Yield a temporary path to write; rename it to `path` only if the block finishes without error."""
    path = Path(path)
    tmp = partial_path(path)
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def shard_count(frame_count: int, shard_frames: int) -> int:
    return max(1, math.ceil(frame_count / shard_frames))


def shard_bounds(frame_count: int, shard_frames: int, shard: int) -> tuple[int, int]:
    """Frame indices [start, end) of shard number `shard` (0-based)."""
    start = shard * shard_frames
    if shard < 0 or start >= max(frame_count, 1):
        raise RemasterError(f"shard {shard} is outside a title of {frame_count} frames")
    return start, min(start + shard_frames, frame_count)


def shard_names(frame_count: int, shard_frames: int) -> list[str]:
    """Shard wildcards, zero-padded so they sort in play order."""
    return [f"{k:04d}" for k in range(shard_count(frame_count, shard_frames))]


def concat_files(parts: list[Path], out_path: Path) -> None:
    """Join VOBs byte for byte, as the DVD player reads them (a title is one MPEG stream split at 1 GiB)."""
    with atomic_output(out_path) as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)


def _lossless_args(tmp: Path) -> list[str]:
    return ["-fps_mode", "passthrough", "-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4",
            "-slicecrc", "1", "-an", "-sn", "-dn", "-f", "matroska", str(tmp)]


def extract_shard(title: Path, out_path: Path, timestamps: list[float], start: int, end: int,
                  log: logging.Logger) -> None:
    """Write frames [start, end) of the title's first video stream, losslessly, to `out_path`.

    Seeks near the shard and selects frames by their decoded timestamps (fast); if the frame count does not
    come out exact, decodes from the beginning and selects by frame number (slow, always right).
    """
    count = end - start
    low = -1e18 if start == 0 else (timestamps[start - 1] + timestamps[start]) / 2
    high = 1e18 if end >= len(timestamps) else (timestamps[end - 1] + timestamps[end]) / 2
    seek = timestamps[start] - timestamps[0] - 5.0  # decoder settles well before the first frame we keep
    fast = ["-copyts", "-noaccurate_seek"] + (["-ss", f"{seek:.6f}"] if seek > 0 else [])
    fast += ["-i", media.input_path(title), "-map", "0:v:0", "-vf", f"select='gte(t,{low:.6f})*lt(t,{high:.6f})'"]
    slow = ["-i", media.input_path(title), "-map", "0:v:0", "-vf", f"select='between(n,{start},{end - 1})'"]
    with atomic_output(out_path) as tmp:
        for name, args in (("seek by timestamp", fast), ("decode from start", slow)):
            media.run(media.ffmpeg_args(*args, *_lossless_args(tmp)), what=f"{title}: extracting frames {start}-{end - 1}")
            got = media.count_packets(tmp)
            if got == count:
                log.info("frames %d-%d extracted (%s): %d frames", start, end - 1, name, got)
                return
            log.warning("frames %d-%d: %s gave %d frames instead of %d", start, end - 1, name, got, count)
        raise RemasterError(f"{title}: cannot extract frames {start}-{end - 1} exactly; the stream may be damaged")
