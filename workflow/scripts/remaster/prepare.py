"""The prepared title: the source made progressive, square-pixel and constant-rate, once, losslessly.

Inverse telecine and deinterlacing need the whole sequence (decimation works on cycles of five frames),
so the title is decoded once through the plan's filters into an intra-only FFV1 file; shards are then cut
from it frame-exactly by stream copy. Gaps in the source's timestamps (a damaged disc) are filled by
repeating the last good frame, so the picture never drifts from the audio.
"""

from __future__ import annotations

import logging
import subprocess
import time
from fractions import Fraction
from pathlib import Path

from . import media
from .errors import RemasterError
from .shards import partial_path


def damaged_ranges(timestamps: list[float]) -> list[tuple[float, float]]:
    """Where frames are missing from the source: (from, to) in seconds from the first frame.

    A gap is a step between consecutive frame times of more than 1.75 usual ones (the median, so soft
    telecine's alternating 2- and 3-field steps are no gap); gaps a frame apart are one range.
    -fps_mode cfr fills each with repeats of the last good frame.
    """
    times = sorted(timestamps)
    steps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    if not steps:
        return []
    usual = steps[len(steps) // 2]
    ranges: list[list[float]] = []
    for before, after in zip(times, times[1:]):
        if after - before > 1.75 * usual:
            if ranges and before - ranges[-1][1] <= 1.5 * usual:
                ranges[-1][1] = after
            else:
                ranges.append([before + usual, after])
    return [(round(start - times[0], 3), round(end - times[0], 3)) for start, end in ranges]


def prepare_command(title: Path, plan: dict, out: Path, *, retime: bool = False) -> list[str]:
    fps = plan["fps"]
    filters = ["setpts=PTS-STARTPTS"]  # the video's start offset is restored at the mux
    if plan["filters"]:
        filters.append(plan["filters"])
    if retime:
        # the user says the frames are at another rate: retime them, dropping or repeating none
        filters.append(f"setpts=N/({Fraction(fps).numerator}/{Fraction(fps).denominator})/TB")
    colour = plan["colour"]["in"]
    return media.ffmpeg_args(
        *media.PROBE_ARGS, "-i", media.input_path(title), "-map", "0:v:0", "-vf", ",".join(filters),
        "-fps_mode", "passthrough" if retime else "cfr", "-r", fps,
        "-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "4", "-slicecrc", "1",
        "-colorspace", colour["colorspace"], "-color_primaries", colour["color_primaries"],
        "-color_trc", colour["color_trc"], "-color_range", colour["color_range"],
        "-an", "-sn", "-dn", "-progress", "pipe:1", "-nostats", "-f", "matroska", str(out),
    )


def prepare_title(title: Path, plan: dict, out_path: Path, *, expected_seconds: float, log: logging.Logger,
                  retime: bool = False) -> dict:
    """Write the prepared title; return its frame count, rate and the frames repeated or dropped to keep sync."""
    tmp = partial_path(out_path)
    tmp.unlink(missing_ok=True)
    fps = Fraction(plan["fps"])
    expected = max(int(round(expected_seconds * fps)), 1)
    proc = subprocess.Popen(prepare_command(title, plan, tmp, retime=retime), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stats: dict[str, str] = {}
    start = last = time.monotonic()
    for line in proc.stdout:
        key, _, value = line.strip().partition("=")
        stats[key] = value
        if key == "progress" and time.monotonic() - last >= 5:
            last = time.monotonic()
            done = int(stats.get("frame", 0) or 0)
            rate = done / (last - start)
            eta = (expected - done) / rate if rate else 0
            log.info("prepare: %d/~%d frames, %.1f fps, ETA %dm%02ds", done, expected, rate, eta // 60, eta % 60)
    stderr = proc.stderr.read()
    if proc.wait() != 0:
        tmp.unlink(missing_ok=True)
        last_line = (stderr.strip().splitlines() or ["no message"])[-1]
        raise RemasterError(f"{title}: preparing the frames failed: {last_line}")
    frames = media.count_packets(tmp)
    repeated, dropped = int(stats.get("dup_frames", 0) or 0), int(stats.get("drop_frames", 0) or 0)
    if frames == 0:
        tmp.unlink(missing_ok=True)
        raise RemasterError(f"{title}: no frames came out of the front end's filters ({plan['filters']})")
    tmp.replace(out_path)
    return {
        "frame_count": frames,
        "fps": plan["fps"],
        "width": plan["model_input"][0],
        "height": plan["model_input"][1],
        "duration": float(frames / fps),
        "repeated_frames": repeated,
        "dropped_frames": dropped,
        "seconds": round(time.monotonic() - start, 2),
    }
