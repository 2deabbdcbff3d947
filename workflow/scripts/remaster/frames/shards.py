"""Reading one shard's frames of the prepared title: a checked seek, or a selection by number."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..run import media
from ..run.errors import RemasterError
from ..run.records import Record


@dataclass(frozen=True)
class Cut(Record):
    """How the upscale job reads frames [start, end) of the prepared title: written by extract_shard
    (`plan_cut`), read by upscale_shard (`Cut.load`) and handed to the decoder (`cut_input_args`)."""

    what = "shard cut"

    start: int  # the frames read, the temporal stage's context frames included
    end: int
    method: str  # "seek": a seek to `seek` s, then end - start frames; "select": chosen by number from a full decode
    seek: float | None  # None: read from the first frame
    context: tuple[int, int] = (0, 0)  # [before, after]: how many of the frames read lie outside the shard


def read_range(start: int, end: int, total: int, context: int) -> tuple[int, int]:
    """The frames a shard [start, end) reads with `context` neighbours each side, within the title's [0, total).

    At the title's ends there are fewer (the temporal stage mirrors the window there instead)."""
    if not 0 <= start < end <= total:
        raise RemasterError(f"shard frames {start}-{end - 1} are not within the title's {total} frames")
    return max(0, start - context), min(total, end + context)


def plan_cut(prepared: Path, start: int, end: int, fps: str, log: logging.Logger, *, context: int = 0,
             total: int | None = None) -> Cut:
    """How the upscale job reads frames [start, end) of the prepared title, checked without copying a frame.

    With `context` (the temporal stage's neighbours) it reads up to `context` frames more on each side,
    within the title's `total` frames; the cut's `start`/`end` are then the frames read and its `context`
    (before, after) says how many of them lie outside the shard.

    The prepared title is intra-only and constant-rate, so a seek to half a frame before frame `start`
    (accurate: frames before the seek time are decoded and dropped) followed by `end - start` frames is
    exact. The packets' times are read here (ffprobe, no decode) to confirm the title's clock agrees:
    the frames from `start` on are where the rate puts them, and there are enough of them. Where they
    are not, the frames are selected by number from a full decode instead (slow, always right).

    No copy of the frames is written: a copy of every shard, made ahead of the upscale by idle cores,
    was a second prepared title on disk (docs/benchmarks.md, "Disk of a run").
    """
    shard_start, shard_end = start, end
    if context:
        if total is None:
            raise RemasterError("plan_cut: context frames need the title's frame count")
        start, end = read_range(start, end, total, context)
    count, rate = end - start, Fraction(fps)
    half = 1 / (2 * rate)
    seek = float(start / rate - half) if start else None
    interval = f"{seek:.6f}%+#{count + 1}" if seek is not None else f"%+#{count}"
    cmd = [media.tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-read_intervals", interval,
           "-show_entries", "packet=pts_time", "-of", "csv=p=0", media.input_path(prepared)]
    lines = media.run(cmd, what=f"{prepared}: reading the times of frames {start}-{end - 1}").stdout.split()
    times = [float(v.rstrip(",")) for v in lines if v.rstrip(",") not in ("", "N/A")]
    if seek is not None:
        times = [t for t in times if t >= seek]
    times = times[:count]
    expected = [float((start + n) / rate) for n in range(count)]
    exact = len(times) == count and all(abs(t - e) < float(half) for t, e in zip(times, expected))
    if exact:
        log.info("frames %d-%d: read by a seek to %s s", start, end - 1, "0" if seek is None else f"{seek:.6f}")
    else:
        log.warning("frames %d-%d: the title's times are not where its rate puts them (%d of %d found from "
                    "%.3f s); the upscale selects them by number instead", start, end - 1, len(times), count,
                    times[0] if times else float("nan"))
    return Cut(start, end, "seek" if exact else "select", seek, (shard_start - start, end - shard_end))


def cut_input_args(cut: Cut | None) -> tuple[list[str], list[str], str | None]:
    """ffmpeg arguments reading a `plan_cut` cut of a file: (before -i, after -i, a filter to put first)."""
    if cut is None:
        return [], [], None
    count = cut.end - cut.start
    if cut.method == "seek":
        before = ["-ss", f"{cut.seek:.6f}"] if cut.seek is not None else []
        return before, ["-frames:v", str(count), "-fps_mode", "passthrough"], None
    return [], ["-frames:v", str(count), "-fps_mode", "passthrough"], \
        f"select='between(n,{cut.start},{cut.end - 1})'"
