"""Shard boundaries, atomic outputs, and frame-exact extraction of one shard from the title."""

from __future__ import annotations

import logging
import math
import os
import shutil
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from . import media
from .errors import RemasterError
from .ffv1 import ffv1_args


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


def cut_shard(prepared: Path, out_path: Path, start: int, end: int, fps: str, log: logging.Logger) -> None:
    """Copy frames [start, end) of the prepared (intra-only, constant-rate) title into `out_path`.

    Every frame of the prepared title is a keyframe, so a stream copy from a seek is exact; the shard is
    kept only if it holds `end - start` frames and its first frame is frame `start`. Otherwise the frames
    are selected by number from a full decode (slow, always right).
    """
    count = end - start
    rate = Fraction(fps)
    first = float(start / rate)
    with atomic_output(out_path) as tmp:
        # a quarter frame past frame `start`, so the seek lands on it and not on its predecessor
        seek = ["-ss", f"{float((start + Fraction(1, 4)) / rate):.6f}"] if start else []
        copy = media.ffmpeg_args("-copyts", *seek, "-i", media.input_path(prepared), "-map", "0:v:0",
                                 "-frames:v", str(count), "-c", "copy", "-f", "matroska", tmp)
        media.run(copy, what=f"{prepared}: cutting frames {start}-{end - 1}")
        got, begins = media.count_packets(tmp), media.first_timestamp(tmp)
        if got == count and abs(begins - first) < float(1 / rate) / 2:
            log.info("frames %d-%d cut by stream copy: %d frames from %.3f s", start, end - 1, got, begins)
            return
        log.warning("frames %d-%d: stream copy gave %d frames from %.3f s; selecting by number instead",
                    start, end - 1, got, begins)
        select = media.ffmpeg_args("-i", media.input_path(prepared), "-map", "0:v:0", "-vf",
                                   f"select='between(n,{start},{end - 1})'", "-fps_mode", "passthrough",
                                   *ffv1_args(4, crc=False), "-f", "matroska", tmp)
        media.run(select, what=f"{prepared}: selecting frames {start}-{end - 1}")
        if media.count_packets(tmp) != count:
            raise RemasterError(f"{prepared}: cannot cut frames {start}-{end - 1} exactly")
