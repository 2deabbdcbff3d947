"""Decide how a DVD title must be turned into square-pixel progressive frames.

DVDs lie: streams are flagged interlaced when they carry film, 16:9 when the picture is
4:3, and their colour tags are often missing or wrong.  These functions decide from what
the pictures themselves show (FFmpeg's ``idet``, ``fieldmatch``/``decimate`` and
``cropdetect`` statistics) and turn the decision into FFmpeg filter text.  They call the
``ffmpeg`` executable they are given with argument lists, never through a shell.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from statistics import median

NTSC_RATE = Fraction(30000, 1001)
FILM_RATE = Fraction(24000, 1001)

# A 3:2 pulldown repeats one field in 2 of every 5 frames; clean video repeats none.
TELECINE_MIN_REPEATED = 0.15
# In 3:2 pulldown consecutive repeated fields are 2 or 3 frames apart.
TELECINE_MIN_CADENCE = 0.6
# Field matching must leave (almost) no combed frames for IVTC to be the right cure.
TELECINE_MAX_COMBED_AFTER_MATCH = 0.1
# Share of frames idet calls interlaced (TFF or BFF) above which the title is interlaced.
INTERLACED_MIN_FRACTION = 0.25

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_META = re.compile(r"lavfi\.(idet\.(?:repeated|single|multiple)\.current_frame|cropdetect\.[whxy])=(\S+)")
_PTS = re.compile(r"\bframe:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:\s*(-?[\d.]+)")
_DECIMATE = re.compile(r"#(\d): totdiff=([0-9a-f]+)")


@dataclass(frozen=True)
class ScanDecision:
    """How the title's frames are scanned, decided from the pictures, not the flags.

    ``scan`` is "progressive", "telecine" (3:2 pulldown film inside 29.97i) or
    "interlaced" (every field a distinct moment); ``field_order`` is "tff"/"bff" for the
    latter two and None for progressive.  ``evidence`` holds the statistics the decision
    was made from and ``reason`` says it in one sentence.
    """

    scan: str
    field_order: str | None
    evidence: dict = field(default_factory=dict)
    reason: str = ""


def _run(cmd: list[str]) -> str:
    """stderr of an ffmpeg run; raise with the tail of it when ffmpeg fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{cmd[0]} failed on {cmd[cmd.index('-i') + 1]}: {tail[0]}")
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


def _window_args(start: float | None, length: float | None) -> list[str]:
    args = []
    if start is not None:
        args += ["-ss", f"{start:.3f}"]
    if length is not None:
        args += ["-t", f"{length:.3f}"]
    return args


def _frames(stderr: str) -> list[dict[str, str]]:
    """Per-frame metadata printed by the ``metadata=print`` filter."""
    frames: list[dict[str, str]] = []
    for line in stderr.splitlines():
        if (m := _PTS.search(line)) and "Parsed_metadata" in line:
            frames.append({"pts_time": m.group(3)})
        elif (m := _META.search(line)) and frames:
            frames[-1][m.group(1)] = m.group(2)
    return frames


def _cadence(repeated: list[str]) -> tuple[float, int]:
    """Share of gaps between repeated-field frames that are 2 or 3 frames (3:2 pulldown),
    and the number of gaps seen."""
    hits = [i for i, r in enumerate(repeated) if r in ("top", "bottom")]
    gaps = [b - a for a, b in zip(hits, hits[1:])]
    return (sum(1 for g in gaps if g in (2, 3)) / len(gaps) if gaps else 0.0), len(gaps)


def _idet_window(video: Path | str, ffmpeg: str, start: float | None, length: float | None,
                 max_frames: int | None) -> list[dict[str, str]]:
    limit = ["-frames:v", str(max_frames)] if max_frames else []
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", *_window_args(start, length),
           "-i", str(video), "-map", "0:v:0", *limit, "-vf", "idet,metadata=mode=print",
           "-f", "null", "-"]
    # the filter graph may run one frame past the output limit
    return _frames(_run(cmd))[:max_frames]


def _match_check(video: Path | str, ffmpeg: str, order: str, windows: list, per_window: int | None) -> dict:
    """Inverse-telecine the candidate and measure the result: share of frames fieldmatch
    still finds combed, how clearly decimate finds one duplicate in 5, and how many of
    the output frames idet calls progressive."""
    combed = matched = 0
    contrasts: list[float] = []
    output: Counter = Counter()
    for start, length in windows:
        limit = ["-frames:v", str(per_window)] if per_window else []
        # fieldmatch and decimate report per frame only at debug level
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "debug",
               *_window_args(start, length), "-i", str(video), "-map", "0:v:0", *limit,
               "-vf", f"fieldmatch=order={order}:combmatch=full,decimate,idet,metadata=mode=print",
               "-f", "null", "-"]
        stderr = _run(cmd)
        output.update(f.get("idet.multiple.current_frame", "undetermined") for f in _frames(stderr))
        cycle: list[int] = []
        for line in stderr.splitlines():
            if "Parsed_fieldmatch" in line and "combed=" in line:
                matched += 1
                combed += "combed=YES" in line
            elif m := _DECIMATE.search(line):
                cycle.append(int(m.group(2), 16))
                if m.group(1) == "5":
                    # a scene change marks a frame with the maximal value; skip those
                    real = sorted(v for v in cycle if v != 0x7FFFFFFFFFFFFFFF)
                    if len(real) >= 3:
                        contrasts.append((median(real[1:]) + 1) / (real[0] + 1))
                    cycle = []
    decided = output["tff"] + output["bff"] + output["progressive"]
    return {
        "frames_matched": matched,
        "combed_after_match": round(combed / matched, 4) if matched else None,
        "decimate_cycles": len(contrasts),
        # how many times smaller the dropped duplicate's difference is than the others'
        "decimate_dup_contrast": round(median(contrasts), 2) if contrasts else None,
        "ivtc_frames": sum(output.values()),
        "ivtc_progressive_fraction": round(output["progressive"] / decided, 4) if decided else None,
    }


def detect_scan(video: Path | str, *, ffmpeg: str = "ffmpeg", max_frames: int | None = None,
                windows: int = 6, window_seconds: float = 20.0) -> ScanDecision:
    """Decide progressive / telecine / interlaced and the field order from the pictures.

    Runs ``idet`` over the whole title, or over ``windows`` windows of ``window_seconds``
    spread across a long one, at most ``max_frames`` frames in all.  Telecine needs idet's
    repeated fields in 3:2 cadence *and* field matching that leaves the frames clean;
    interlaced needs a quarter of the frames combed in a consistent field order.  The
    container's interlace flags are never consulted.  Raises RuntimeError when FFmpeg
    fails and ValueError when no frame could be decoded.
    """
    spans = sample_windows(duration(video, ffmpeg=ffmpeg), windows=windows, seconds=window_seconds)
    per_window = -(-max_frames // len(spans)) if max_frames else None
    counts = {kind: Counter() for kind in ("repeated", "single", "multiple")}
    cadence_hits = cadence_gaps = frames = 0
    pts: list[float] = []
    for start, length in spans:
        window = _idet_window(video, ffmpeg, start, length, per_window)
        frames += len(window)
        for kind in counts:
            counts[kind].update(f.get(f"idet.{kind}.current_frame", "undetermined") for f in window)
        share, gaps = _cadence([f.get("idet.repeated.current_frame", "") for f in window])
        cadence_hits += round(share * gaps)
        cadence_gaps += gaps
        times = [float(f["pts_time"]) for f in window]
        if len(times) > 1:
            pts.append((len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0)
    if frames == 0:
        raise ValueError(f"{video}: no video frames could be decoded for scan detection")

    rep, multi = counts["repeated"], counts["multiple"]
    decided = multi["tff"] + multi["bff"] + multi["progressive"]
    repeated = (rep["top"] + rep["bottom"]) / frames
    interlaced = (multi["tff"] + multi["bff"]) / decided if decided else 0.0
    order = "tff" if multi["tff"] >= multi["bff"] else "bff"
    cadence = cadence_hits / cadence_gaps if cadence_gaps else 0.0
    evidence = {
        "frames": frames,
        "windows": len(spans),
        "idet_repeated": {k: rep[k] for k in ("neither", "top", "bottom")},
        "idet_single": {k: counts["single"][k] for k in ("tff", "bff", "progressive", "undetermined")},
        "idet_multiple": {k: multi[k] for k in ("tff", "bff", "progressive", "undetermined")},
        "repeated_fraction": round(repeated, 4),
        "cadence_32_fraction": round(cadence, 4),
        "interlaced_fraction": round(interlaced, 4),
        # decoded frames per second; ~23.976 inside a 29.97 stream means soft telecine
        "decoded_fps": round(median(pts), 3) if pts else None,
    }

    if repeated >= TELECINE_MIN_REPEATED and cadence >= TELECINE_MIN_CADENCE:
        evidence |= _match_check(video, ffmpeg, order, spans, per_window)
        after = evidence["combed_after_match"]
        if after is not None and after <= TELECINE_MAX_COMBED_AFTER_MATCH:
            return ScanDecision("telecine", order, evidence, (
                f"{repeated:.0%} of frames repeat a field, {cadence:.0%} of repeats are 2-3 frames "
                f"apart (3:2 pulldown) and {order.upper()} field matching leaves {after:.0%} combed."))
        return ScanDecision("interlaced", order, evidence, (
            f"3:2 repeats seen ({repeated:.0%} of frames) but field matching leaves "
            f"{after if after is not None else 1:.0%} combed (hybrid or broken cadence), so deinterlace {order.upper()}."))
    if interlaced >= INTERLACED_MIN_FRACTION:
        return ScanDecision("interlaced", order, evidence, (
            f"idet finds {interlaced:.0%} of decided frames combed, {multi[order]} {order.upper()} "
            f"against {multi['bff' if order == 'tff' else 'tff']}, with {repeated:.0%} repeated fields."))
    rate = evidence["decoded_fps"]
    soft = f"; frames decode at {rate} fps (soft telecine if 23.976)" if rate and abs(rate - 23.976) < 0.05 else ""
    return ScanDecision("progressive", None, evidence, (
        f"idet finds only {interlaced:.0%} of decided frames combed and {repeated:.0%} repeated fields{soft}."))


def scan_filters(decision: ScanDecision, *, source_fps: Fraction,
                 deinterlace_rate: str = "field") -> tuple[str, Fraction]:
    """FFmpeg ``-vf`` text that makes the title progressive, and the frame rate it outputs.

    telecine: field matching then decimation of 1 frame in 5 (29.97 -> 23.976, or 4/5 of
    ``source_fps``), with bwdif cleaning any frame fieldmatch still finds combed;
    interlaced: bwdif, one frame per field (``deinterlace_rate="field"``, double rate) or
    per frame ("frame"); progressive: no filter, ``source_fps``.
    """
    if deinterlace_rate not in ("field", "frame"):
        raise ValueError(f"deinterlace_rate must be 'field' or 'frame', not {deinterlace_rate!r}")
    order = decision.field_order or "tff"
    if decision.scan == "telecine":
        rate = FILM_RATE if source_fps == NTSC_RATE else Fraction(source_fps) * Fraction(4, 5)
        # combmatch=full marks frames still combed after matching; bwdif then fixes only those
        return (f"fieldmatch=order={order}:combmatch=full,"
                f"bwdif=mode=send_frame:parity={order}:deint=interlaced,decimate", rate)
    if decision.scan == "interlaced":
        if deinterlace_rate == "field":
            return f"bwdif=mode=send_field:parity={order}:deint=all", Fraction(source_fps) * 2
        return f"bwdif=mode=send_frame:parity={order}:deint=all", Fraction(source_fps)
    if decision.scan == "progressive":
        return "", Fraction(source_fps)
    raise ValueError(f"unknown scan type {decision.scan!r}")


def detect_crop(video: Path | str, *, ffmpeg: str = "ffmpeg", windows: int = 6,
                window_seconds: float = 5.0, min_bar: int = 4) -> tuple[int, int, int, int] | None:
    """Crop (w, h, x, y) that removes black bars, or None when there are none.

    ``cropdetect`` keeps the largest non-black area it sees (``reset=0``) in each of
    ``windows`` windows spread over the title; the union over windows is the crop, so a
    dark scene cannot eat into the picture.  Bars thinner than ``min_bar`` pixels (edge
    noise, half-lines) are ignored.  Dimensions are even so 4:2:0 chroma stays aligned.
    """
    spans = sample_windows(duration(video, ffmpeg=ffmpeg), windows=windows, seconds=window_seconds)
    width = height = None
    boxes = []
    for start, length in spans:
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", *_window_args(start, length),
               "-i", str(video), "-map", "0:v:0", "-vf",
               "cropdetect=limit=24:round=2:reset=0,metadata=mode=print", "-f", "null", "-"]
        stderr = _run(cmd)
        if m := re.search(r"Video: .*?, (\d{2,5})x(\d{2,5})", stderr):
            width, height = int(m.group(1)), int(m.group(2))
        frames = [f for f in _frames(stderr) if "cropdetect.w" in f]
        if frames:
            last = frames[-1]
            w, h, x, y = (int(last[f"cropdetect.{k}"]) for k in "whxy")
            # an all-black window (fade, logo gap) gives an empty or inverted box
            if w > 0 and h > 0:
                boxes.append((x, y, x + w, y + h))
    if not boxes or width is None:
        return None
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    # bars must be real on at least one side to be worth a crop
    if max(x1, y1, width - x2, height - y2) < min_bar:
        return None
    x1, y1 = x1 - x1 % 2, y1 - y1 % 2
    w, h = (x2 - x1) - (x2 - x1) % 2, (y2 - y1) - (y2 - y1) % 2
    return w, h, x1, y1


def _even(value: Fraction) -> int:
    """Nearest even integer (halves round up), at least 2."""
    return max(2, int(value / 2 + Fraction(1, 2)) * 2)


def square_geometry(width: int, height: int, sar: Fraction, *, display_aspect: Fraction | None = None,
                    target_height: int | None = None, scale: int = 1) -> tuple[int, int]:
    """Square-pixel (w, h) to resize the (cropped) picture to before a ×``scale`` model.

    The display aspect is ``display_aspect`` when given (the disc's flag overruled) or
    width·sar/height.  Without ``target_height`` the height is kept: 720×480 at 4:3 gives
    640×480, 720×576 at 16:9 gives 1024×576.  With it, the height is target_height/scale so
    the model's output is target_height tall: 16:9 with 1080 and ×2 gives 960×540.  Both
    dimensions are even.
    """
    if width <= 0 or height <= 0 or sar <= 0 or scale < 1:
        raise ValueError(f"bad geometry {width}x{height} sar {sar} scale {scale}")
    aspect = Fraction(display_aspect) if display_aspect else Fraction(width) * Fraction(sar) / height
    out_h = Fraction(target_height, scale) if target_height else Fraction(height)
    return _even(out_h * aspect), _even(out_h)


# ffprobe's tag values the colorspace filter understands, per property
_KNOWN = {
    "colorspace": {"bt709", "fcc", "bt470bg", "smpte170m", "smpte240m"},
    "color_primaries": {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020"},
    "color_trc": {"bt709", "bt470m", "bt470bg", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear"},
}
_PROBE_KEYS = {"colorspace": "color_space", "color_primaries": "color_primaries", "color_trc": "color_transfer"}
_FILTER_KEYS = {"colorspace": "space", "color_primaries": "primaries", "color_trc": "trc"}


def colour_tags(height: int, probe_stream: dict) -> dict:
    """Input (BT.601) and output (BT.709) colour properties, and the filter between them.

    Input properties come from the stream's tags (an ffprobe stream dict) when they are
    set to something meaningful, else from the system the height implies: 480 lines is
    NTSC (smpte170m throughout), 576 is PAL (bt470bg matrix and primaries, smpte170m
    transfer).  Keys are FFmpeg's output option names so ``-colorspace`` etc. can be
    built from them; ``filter`` is the ``colorspace`` filter that converts in to out.
    """
    pal = height in (576, 288) or (height not in (480, 240) and height > 500)
    defaults = ({"colorspace": "bt470bg", "color_primaries": "bt470bg", "color_trc": "smpte170m"} if pal else
                {"colorspace": "smpte170m", "color_primaries": "smpte170m", "color_trc": "smpte170m"})
    colour_in, from_tags = {}, []
    for key, default in defaults.items():
        tag = str(probe_stream.get(_PROBE_KEYS[key]) or "")
        colour_in[key] = tag if tag in _KNOWN[key] else default
        if tag in _KNOWN[key]:
            from_tags.append(key)
    colour_in["color_range"] = "pc" if probe_stream.get("color_range") in ("pc", "jpeg") else "tv"
    colour_out = {"colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709", "color_range": "tv"}
    parts = [f"{_FILTER_KEYS[k]}={colour_out[k]}" for k in _FILTER_KEYS]
    parts += [f"i{_FILTER_KEYS[k]}={colour_in[k]}" for k in _FILTER_KEYS]
    parts += ["range=tv", f"irange={colour_in['color_range']}"]
    return {
        "system": "pal" if pal else "ntsc",
        "in": colour_in,
        "out": colour_out,
        "from_tags": from_tags,
        "filter": "colorspace=" + ":".join(parts),
    }
