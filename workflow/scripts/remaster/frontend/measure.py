"""Running FFmpeg's analysis filters on a title and reading their per-frame statistics.

The front end decides from what the pictures show (``idet``, ``fieldmatch``/``decimate``, ``cropdetect``),
never from the flags. These helpers call the ``ffmpeg`` executable they are given with argument lists,
never through a shell, and turn its log into numbers.
"""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

from ..run.errors import RemasterError

NTSC_RATE = Fraction(30000, 1001)
FILM_RATE = Fraction(24000, 1001)
# Pulldown flags (repeat_first_field) are honoured before any analysis: DGIndex's "honour pulldown".
# FFmpeg 5.1's repeatfields shares buffers with frames already sent, so a copy follows it.
PULLDOWN = "repeatfields,copy"
SCENE_CHANGE = 0x7FFFFFFFFFFFFFFF
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_META = re.compile(r"lavfi\.(idet\.(?:repeated|single|multiple)\.current_frame|cropdetect\.[whxy])=(\S+)")
_PTS = re.compile(r"\bframe:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:\s*(-?[\d.]+)")
DECIMATE_LINE = re.compile(r"#(\d): totdiff=([0-9a-f]+)")
FIELDMATCH_LINE = re.compile(r"match=(\d) combed=(YES|NO)")
COMBS_LINE = re.compile(r"COMBS:\s*(-?\d+)\s+(-?\d+).*?combpel=(\d+)\) match=(\d) combed=(YES|NO)")
FRAME_COUNT_LINE = re.compile(r"frame=\s*(\d+)")


def ffmpeg_log(cmd: list[str]) -> str:
    """stderr of an ffmpeg run; a one-line RemasterError naming the file and ffmpeg's last message when
    ffmpeg fails (or cannot be started)."""
    source = cmd[cmd.index("-i") + 1] if "-i" in cmd else "?"
    source = source.removeprefix("file:")
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    except OSError as error:
        raise RemasterError(f"{source}: cannot run {cmd[0]} to analyse it ({error.strerror})") from None
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RemasterError(f"{source}: ffmpeg failed analysing the pictures (exit {result.returncode}): "
                            f"{tail[0].strip()}")
    return result.stderr


def duration(video: Path | str, *, ffmpeg: str = "ffmpeg") -> float | None:
    """Container duration in seconds as FFmpeg reports it, None when it cannot tell."""
    result = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(video)],
                            capture_output=True, text=True, errors="replace")
    m = _DURATION.search(result.stderr)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def sample_windows(total: float | None, *, windows: int, seconds: float) -> list[tuple[float | None, float | None]]:
    """(start, length) windows spread evenly over a title; one whole-title window when the
    title is shorter than the windows together (or its length is unknown)."""
    if total is None or total <= windows * seconds:
        return [(None, None)]
    step = total / windows
    # centre each window in its slice so the start (logos) and end (credits) weigh less
    return [(round(step * (i + 0.5) - seconds / 2, 3), seconds) for i in range(windows)]


def window_args(start: float | None, length: float | None) -> list[str]:
    args = []
    if start is not None:
        args += ["-ss", f"{start:.3f}"]
    if length is not None:
        args += ["-t", f"{length:.3f}"]
    return args


def frame_metadata(stderr: str) -> list[dict[str, str]]:
    """Per-frame metadata printed by the ``metadata=print`` filter."""
    frames: list[dict[str, str]] = []
    for line in stderr.splitlines():
        if (m := _PTS.search(line)) and "Parsed_metadata" in line:
            frames.append({"pts_time": m.group(3)})
        elif (m := _META.search(line)) and frames:
            frames[-1][m.group(1)] = m.group(2)
    return frames
