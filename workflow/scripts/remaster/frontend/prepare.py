"""The prepared title: the source made progressive, square-pixel and constant-rate, once, losslessly.

Inverse telecine and deinterlacing need the whole sequence (decimation works on cycles of five frames),
so the title is decoded once through the plan's filters into an intra-only FFV1 file; shards are then cut
from it frame-exactly by stream copy. Gaps in the source's timestamps (a damaged disc) are filled by
repeating the last good frame, so the picture never drifts from the audio.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from ..run import media
from ..run.errors import RemasterError
from ..run.ffv1 import ffv1_args
from ..run.files import partial_path
from ..run.pipes import stderr_last_line
from .plan import Plan

VARIABLE_RATE_GAPS = 0.1  # damage loses pictures in a few places; a variable-rate source skips slots often


def damaged_ranges(timestamps: list[float]) -> list[tuple[float, float]]:
    """Where frames are missing from the source: (from, to) in seconds from the first frame.

    A gap is a step between consecutive frame times of more than 1.75 usual ones (the median, so soft
    telecine's alternating 2- and 3-field steps are no gap); gaps a frame apart are one range.
    -fps_mode cfr fills each with repeats of the last good frame. A source with gaps in more than
    VARIABLE_RATE_GAPS of its steps is variable-rate (a phone's, a screen recorder's): its gaps are its
    timing, not pictures lost, and none is reported (cfr fills them all the same).
    """
    times = sorted(timestamps)
    steps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    if not steps:
        return []
    usual = steps[len(steps) // 2]
    if sum(1 for step in steps if step > 1.75 * usual) > VARIABLE_RATE_GAPS * len(steps):
        return []
    ranges: list[list[float]] = []
    for before, after in zip(times, times[1:]):
        if after - before > 1.75 * usual:
            if ranges and before - ranges[-1][1] <= 1.5 * usual:
                ranges[-1][1] = after
            else:
                ranges.append([before + usual, after])
    return [(round(start - times[0], 3), round(end - times[0], 3)) for start, end in ranges]


def prepare_command(title: Path, plan: Plan, out: Path, *, retime: bool = False) -> list[str]:
    fps = plan.fps
    filters = ["setpts=PTS-STARTPTS"]  # the video's start offset is restored at the mux
    if plan.filters:
        filters.append(plan.filters)
    if retime:
        # the user says the frames are at another rate: retime them, dropping or repeating none
        filters.append(f"setpts=N/({Fraction(fps).numerator}/{Fraction(fps).denominator})/TB")
    return media.ffmpeg_args(
        *media.PROBE_ARGS, "-i", media.input_path(title), "-map", "0:v:0", "-vf", ",".join(filters),
        "-fps_mode", "passthrough" if retime else "cfr", "-r", fps, *FFV1, *_colour_args(plan),
        "-an", "-sn", "-dn", "-progress", "pipe:1", "-nostats", "-f", "matroska", str(out),
    )


FFV1 = tuple(ffv1_args(4))  # intra-only: shards are cut from any frame by stream copy


def _colour_args(plan: Plan) -> list[str]:
    """The prepared title keeps the source's colour as the plan decided it (frontend.colour)."""
    return plan.colour.tags()


def hybrid_commands(title: Path, plan: Plan, work: Path, out: Path) -> list[list[str]]:
    """Two ffmpeg runs for a hybrid title: the film and video sections through their own chains into
    two lossless files (one decode, two outputs, so neither waits on the other), then the two
    interleaved by time into the prepared title, numbered at the nominal rate (the real times are
    the plan's cadence.timed).  With vfr off the interleaved frames go through ``fps`` at the video
    rate instead: film pictures repeated 3:2, a constant-rate title."""
    cadence, fps = plan.cadence, Fraction(plan.fps)
    prefix = "repeatfields,copy," if cadence.pulldown else ""
    film, video = work / "film.nut", work / "video.nut"
    split = (f"[0:v:0]setpts=PTS-STARTPTS,{prefix}split[a][b];[a]{cadence.film}[film];"
             f"[b]{cadence.video}[video]")
    first = media.ffmpeg_args(*media.PROBE_ARGS, "-i", media.input_path(title), "-filter_complex", split,
                              "-map", "[film]", "-fps_mode", "passthrough", *FFV1, "-f", "nut", str(film),
                              "-map", "[video]", "-fps_mode", "passthrough", *FFV1, "-f", "nut", str(video))
    rate = f"{fps.numerator}/{fps.denominator}"
    chain = ["interleave"] + ([] if plan.vfr else [f"fps={rate}"])
    chain += [f for f in (plan.filters,) if f] + [f"setpts=N/({rate})/TB"]
    # -copyts: ffmpeg would start each input at zero, and the two must share the source's clock
    second = media.ffmpeg_args("-copyts", "-i", media.input_path(film), "-i", media.input_path(video), "-filter_complex",
                               f"[0:v][1:v]{','.join(chain)}[v]", "-map", "[v]", "-fps_mode", "passthrough",
                               *FFV1, *_colour_args(plan), "-f", "matroska", str(out))
    return [first, second]


def prepare_title(title: Path, plan: Plan, out_path: Path, *, expected_seconds: float, log: logging.Logger,
                  retime: bool = False) -> dict:
    """Write the prepared title; return its frame count, rate and the frames repeated or dropped to keep sync.

    For a variable-rate (hybrid) title the facts also hold ``vfr: true`` and ``timed``: its sections
    with their frame counts, start times and frame steps (frontend.cadence.section_times), whose frames add up
    to ``frame_count``.
    """
    if plan.hybrid:
        return _prepare_hybrid(title, plan, out_path, log=log)
    tmp = partial_path(out_path)
    tmp.unlink(missing_ok=True)
    fps = Fraction(plan.fps)
    expected = max(int(round(expected_seconds * fps)), 1)
    stats: dict[str, str] = {}
    start = last = time.monotonic()
    # ffmpeg's messages go to a file, not a pipe: a damaged disc's many decode errors would fill a pipe
    # no one reads while the progress lines are read, and both processes would wait forever
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(prepare_command(title, plan, tmp, retime=retime), stdout=subprocess.PIPE,
                                stderr=errors, text=True)
        for line in proc.stdout:
            key, _, value = line.strip().partition("=")
            stats[key] = value
            if key == "progress" and time.monotonic() - last >= 5:
                last = time.monotonic()
                done = int(stats.get("frame", 0) or 0)
                rate = done / (last - start)
                eta = (expected - done) / rate if rate else 0
                log.info("prepare: %d/~%d frames, %.1f fps, ETA %dm%02ds", done, expected, rate, eta // 60,
                         eta % 60)
        proc.wait()
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise RemasterError(f"{title}: preparing the frames failed: {stderr_last_line(errors)}")
    frames = media.count_packets(tmp)
    repeated, dropped = int(stats.get("dup_frames", 0) or 0), int(stats.get("drop_frames", 0) or 0)
    if frames == 0:
        tmp.unlink(missing_ok=True)
        raise RemasterError(f"{title}: no frames came out of the front end's filters ({plan.filters})")
    tmp.replace(out_path)
    return {
        "frame_count": frames,
        "fps": plan.fps,
        "width": plan.model_input[0],
        "height": plan.model_input[1],
        "duration": float(frames / fps),
        "repeated_frames": repeated,
        "dropped_frames": dropped,
        "seconds": round(time.monotonic() - start, 2),
        "vfr": False,
    }


def _prepare_hybrid(title: Path, plan: Plan, out_path: Path, *, log: logging.Logger) -> dict:
    start = time.monotonic()
    tmp = partial_path(out_path)
    work = out_path.with_name(f".{out_path.name}.sections")
    work.mkdir(parents=True, exist_ok=True)
    try:
        tmp.unlink(missing_ok=True)
        for n, cmd in enumerate(hybrid_commands(title, plan, work, tmp), start=1):
            log.info("prepare (hybrid) pass %d of 2", n)
            media.run(cmd, what=f"{title}: preparing the hybrid title (pass {n})")
    finally:
        for part in work.glob("*"):
            part.unlink()
        work.rmdir()
    frames = media.count_packets(tmp)
    fps = Fraction(plan.fps)
    timed = list(plan.cadence.timed)
    expected = sum(s.frames for s in timed)
    if plan.vfr and frames != expected:
        tmp.unlink(missing_ok=True)
        raise RemasterError(f"{title}: the hybrid title's sections gave {frames} frames, their timestamps "
                            f"expect {expected}; set vfr: false for a constant-rate master")
    tmp.replace(out_path)
    if plan.vfr:
        seconds = float(timed[-1].end)
    else:
        seconds = float(frames / fps)
    return {
        "frame_count": frames,
        "fps": plan.fps,
        "width": plan.model_input[0],
        "height": plan.model_input[1],
        "duration": seconds,
        "repeated_frames": 0,
        "dropped_frames": 0,
        "seconds": round(time.monotonic() - start, 2),
        "vfr": plan.vfr,
        # the real time of every frame: frame k of a section at start + k * step (seconds, fractions)
        "timed": timed if plan.vfr else [],
    }
