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
# A frame after field matching is a pulldown repeat when it differs from its predecessor this many
# times less than the frames around it do.
DUPLICATE_RATIO = 0.2
# fieldmatch's match numbers: p (previous field), c (own fields), n (next field), …
_MATCHES = {0: "p", 1: "c", 2: "n", 3: "b", 4: "u"}
# Pulldown flags (repeat_first_field) are honoured before any analysis: DGIndex's "honour pulldown".
# FFmpeg 5.1's repeatfields shares buffers with frames already sent, so a copy follows it.
PULLDOWN = "repeatfields,copy"
_SCENE_CHANGE = 0x7FFFFFFFFFFFFFFF
# Share of extra frames the pulldown flags must add before they count (soft telecine adds 25 %).
PULLDOWN_MIN_FRACTION = 0.02

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_META = re.compile(r"lavfi\.(idet\.(?:repeated|single|multiple)\.current_frame|cropdetect\.[whxy])=(\S+)")
_PTS = re.compile(r"\bframe:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:\s*(-?[\d.]+)")
_DECIMATE = re.compile(r"#(\d): totdiff=([0-9a-f]+)")
_FIELDMATCH = re.compile(r"match=(\d) combed=(YES|NO)")
_COMBS = re.compile(r"COMBS:\s*(-?\d+)\s+(-?\d+).*?combpel=(\d+)\) match=(\d) combed=(YES|NO)")
_FRAME_COUNT = re.compile(r"frame=\s*(\d+)")


@dataclass(frozen=True)
class ScanDecision:
    """How the title's frames are scanned, decided from the pictures, not the flags.

    ``scan`` is "progressive", "telecine" (3:2 pulldown film inside 29.97i, soft or hard),
    "hybrid" (telecined film and interlaced video in one title: ``sections`` says which
    frames are which), "phase_shifted" (progressive film whose fields are one field out of
    step, as on some PAL discs) or "interlaced" (every field a distinct moment);
    ``field_order`` is "tff"/"bff" except for progressive.  ``sections`` (telecine and
    hybrid, when the cadence was mapped) lists runs of frames, counted after the pulldown
    flags are honoured, as {"kind": "film"|"video", "start", "end", "phase"}: a film run
    drops the frames whose index mod 5 is ``phase`` (the pulldown repeats).  ``pulldown``
    says the stream carries repeat-first-field flags (soft telecine).  ``evidence`` holds the statistics the decision
    was made from and ``reason`` says it in one sentence.
    """

    scan: str
    field_order: str | None
    evidence: dict = field(default_factory=dict)
    reason: str = ""
    sections: tuple = ()
    pulldown: bool = False


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
                 max_frames: int | None, prefix: str = "") -> list[dict[str, str]]:
    limit = ["-frames:v", str(max_frames)] if max_frames else []
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", *_window_args(start, length),
           "-i", str(video), "-map", "0:v:0", *limit, "-vf", f"{prefix}idet,metadata=mode=print",
           "-f", "null", "-"]
    # the filter graph may run one frame past the output limit
    return _frames(_run(cmd))[:max_frames]


def _match_check(video: Path | str, ffmpeg: str, order: str, windows: list, per_window: int | None,
                 prefix: str = "") -> dict:
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
               "-vf", f"{prefix}fieldmatch=order={order}:combmatch=full,decimate,idet,metadata=mode=print",
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


def _count_frames(video: Path | str, ffmpeg: str, vf: str, span: tuple, limit: int | None) -> int:
    frames = ["-frames:v", str(limit)] if limit else []
    cmd = [ffmpeg, "-hide_banner", "-nostdin", *_window_args(*span), "-i", str(video), "-map", "0:v:0",
           *frames, *(["-vf", vf] if vf else []), "-f", "null", "-"]
    counts = _FRAME_COUNT.findall(_run(cmd))
    return int(counts[-1]) if counts else 0


def pulldown_fraction(video: Path | str, *, ffmpeg: str = "ffmpeg", spans: list | None = None,
                      max_seconds: float | None = 10.0) -> float:
    """How many more frames the stream shows than it codes: 0.25 for soft telecine (4 coded
    pictures shown as 5 frames through repeat-first-field flags), 0 without flags.  Counted over
    the same seconds of every window (at most `max_seconds` each), so flags in any part are found."""
    coded = shown = 0
    for begin, length in spans or [(None, None)]:
        if max_seconds is not None:
            length = min(length, max_seconds) if length is not None else max_seconds
        coded += _count_frames(video, ffmpeg, "", (begin, length), None)
        shown += _count_frames(video, ffmpeg, PULLDOWN, (begin, length), None)
    return round((shown - coded) / coded, 4) if coded else 0.0


def _field_match(video: Path | str, ffmpeg: str, order: str, spans: list, per_window: int | None,
                 prefix: str = "") -> dict:
    """fieldmatch alone (no decimation) over the windows: the share of frames it leaves combed and
    which field it matched each frame with.  Progressive pictures match their own fields ("c")
    and are clean; film whose fields are one out of step matches the neighbour's ("p"/"n") and is
    clean; interlaced video stays combed whatever it matches."""
    matches: Counter = Counter()
    combed = own_clean = 0
    for start, length in spans:
        limit = ["-frames:v", str(per_window)] if per_window else []
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "debug", *_window_args(start, length),
               "-i", str(video), "-map", "0:v:0", *limit, "-vf",
               f"{prefix}fieldmatch=order={order}:combmatch=full", "-f", "null", "-"]
        for m in _COMBS.finditer(_run(cmd)):
            matches[_MATCHES.get(int(m.group(4)), "u")] += 1
            combed += m.group(5) == "YES"
            # fieldmatch's comb score of the frame as decoded (its own two fields)
            own_clean += 0 <= int(m.group(2)) < int(m.group(3))
    total = sum(matches.values())
    return {
        "fieldmatch_frames": total,
        "fieldmatch_combed": round(combed / total, 4) if total else None,
        "fieldmatch_own_fields": round(matches["c"] / total, 4) if total else None,
        # the second measure: share of frames whose own fields are not combed by fieldmatch's test
        "own_fields_clean": round(own_clean / total, 4) if total else None,
    }


def cadence_map(video: Path | str, *, ffmpeg: str = "ffmpeg", order: str = "tff",
                pulldown: bool = False) -> tuple[list[bool], list[int]]:
    """Per frame of the whole title (pulldown honoured): whether field matching leaves it combed,
    and decimate's difference to the frame before (a pulldown repeat's is near zero)."""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "debug", "-i", str(video), "-map",
           "0:v:0", "-vf", f"{PULLDOWN + ',' if pulldown else ''}fieldmatch=order={order}:combmatch=full,decimate",
           "-f", "null", "-"]
    combed: list[bool] = []
    diffs: list[int] = []
    for line in _run(cmd).splitlines():
        if "Parsed_fieldmatch" in line and (m := _FIELDMATCH.search(line)):
            combed.append(m.group(2) == "YES")
        elif "Parsed_decimate" in line and (m := _DECIMATE.search(line)):
            diffs.append(int(m.group(2), 16))
    # decimate reports only whole cycles; the tail's frames have no difference (treated as unknown)
    diffs += [_SCENE_CHANGE] * (len(combed) - len(diffs))
    return combed, diffs[:len(combed)]


def cadence_sections(combed: list[bool], diffs: list[int]) -> list[dict]:
    """Runs of film and video frames, and each film run's pulldown phase, from :func:`cadence_map`.

    A frame is video when field matching leaves it and a neighbour combed (or both neighbours).  In
    film, a frame is a pulldown repeat when its difference to its predecessor is under
    ``DUPLICATE_RATIO`` of the median around it; a film run is split where the repeats' position
    in the 5-frame cycle changes (a cadence break), so every run drops exactly its repeats and a
    break neither drops a picture nor keeps a repeat.  Static stretches (no measurable repeat)
    keep the phase of the run they are in.
    """
    count = len(combed)
    def near(i: int) -> tuple[bool, bool]:
        return (i > 0 and combed[i - 1]), (i + 1 < count and combed[i + 1])

    # a lone combed frame is film that bwdif cleans; a lone clean frame in video is still video
    video = [any(near(i)) if combed[i] else all(near(i)) for i in range(count)]
    dups = []
    for i in range(count):
        if video[i] or diffs[i] == _SCENE_CHANGE:
            continue
        around = sorted(d for j, d in enumerate(diffs[max(0, i - 5):i + 6], start=max(0, i - 5))
                        if j != i and d != _SCENE_CHANGE and not video[j])
        reference = around[len(around) // 2] if around else 0
        if reference > 0 and diffs[i] < DUPLICATE_RATIO * reference:
            dups.append(i)
    sections: list[dict] = []
    start = 0
    for i in range(1, count + 1):
        if i < count and video[i] == video[start]:
            continue
        if video[start]:
            sections.append({"kind": "video", "start": start, "end": i, "phase": None})
        else:
            run = [d for d in dups if start <= d < i]
            first = start
            for a, b in zip(run, run[1:] + [None]):
                if b is None or b % 5 != a % 5:
                    end = i if b is None else a + 1
                    sections.append({"kind": "film", "start": first, "end": end, "phase": a % 5})
                    first = end
            if first < i:  # a film run without any measurable repeat: keep every frame
                sections.append({"kind": "film", "start": first, "end": i, "phase": None})
        start = i
    return sections


def section_summary(sections: list[dict] | tuple, rate: Fraction = NTSC_RATE) -> list[str]:
    """One line per section for the log: kind, frames and times."""
    return [f"{s['kind']}: frames {s['start']}-{s['end'] - 1} ({float(s['start'] / rate):.3f}-"
            f"{float(s['end'] / rate):.3f} s)" + (f", pulldown repeats at cycle position {s['phase']}"
                                                 if s.get("phase") is not None else "") for s in sections]


def detect_scan(video: Path | str, *, ffmpeg: str = "ffmpeg", max_frames: int | None = None,
                windows: int = 6, window_seconds: float = 20.0, map_cadence: bool = True) -> ScanDecision:
    """Decide progressive / telecine / interlaced and the field order from the pictures.

    Runs ``idet`` over the whole title, or over ``windows`` windows of ``window_seconds``
    spread across a long one, at most ``max_frames`` frames in all.  Telecine needs idet's
    repeated fields in 3:2 cadence *and* field matching that leaves the frames clean;
    interlaced needs a quarter of the frames combed in a consistent field order *and* field
    matching that cannot make them clean (when it can, the pictures are progressive, or film
    one field out of step).  Pulldown flags are honoured first, so soft telecine is judged as
    the frames a player shows.  With ``map_cadence`` a telecine candidate's whole title is
    mapped frame by frame (one more decode) to find cadence breaks and video sections.  The
    container's interlace flags are never consulted.  Raises RuntimeError when FFmpeg
    fails and ValueError when no frame could be decoded.
    """
    spans = sample_windows(duration(video, ffmpeg=ffmpeg), windows=windows, seconds=window_seconds)
    per_window = -(-max_frames // len(spans)) if max_frames else None
    # repeatfields rebuilds frames from fields even where no flag is set: use it only on flagged streams
    soft = pulldown_fraction(video, ffmpeg=ffmpeg, spans=spans)
    pulldown = soft > PULLDOWN_MIN_FRACTION
    prefix = f"{PULLDOWN}," if pulldown else ""
    counts = {kind: Counter() for kind in ("repeated", "single", "multiple")}
    cadence_hits = cadence_gaps = frames = 0
    pts: list[float] = []
    for start, length in spans:
        window = _idet_window(video, ffmpeg, start, length, per_window, prefix)
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
        "pulldown_fraction": soft,
    }

    flags = (f"; pulldown flags add {soft:.0%} frames (soft telecine), honoured before analysis"
             if pulldown else "")

    if repeated >= TELECINE_MIN_REPEATED and cadence >= TELECINE_MIN_CADENCE:
        evidence |= _match_check(video, ffmpeg, order, spans, per_window, prefix)
        after = evidence["combed_after_match"]
        clean = after is not None and after <= TELECINE_MAX_COMBED_AFTER_MATCH
        sections: tuple = ()
        if map_cadence:
            sections = tuple(cadence_sections(*cadence_map(video, ffmpeg=ffmpeg, order=order, pulldown=pulldown)))
            evidence["sections"] = [f"{s['kind']} {s['start']}-{s['end']}" for s in sections]
        kinds = {s["kind"] for s in sections}
        if kinds == {"film", "video"}:
            films = sum(s["end"] - s["start"] for s in sections if s["kind"] == "film")
            return ScanDecision("hybrid", order, evidence, (
                f"3:2 repeats in {repeated:.0%} of frames, but field matching leaves {after or 0:.0%} combed: "
                f"the frame map finds {films} film and {sum(s['end'] - s['start'] for s in sections) - films} "
                f"interlaced video frames in {len(sections)} sections{flags}."), sections, pulldown)
        if clean:
            breaks = len(sections) - 1
            return ScanDecision("telecine", order, evidence, (
                f"{repeated:.0%} of frames repeat a field, {cadence:.0%} of repeats are 2-3 frames "
                f"apart (3:2 pulldown) and {order.upper()} field matching leaves {after:.0%} combed"
                + (f"; {breaks} cadence break(s), each run decimated at its own phase" if breaks > 0 else "")
                + f"{flags}."), sections if breaks > 0 else (), pulldown)
        return ScanDecision("interlaced", order, evidence, (
            f"3:2 repeats seen ({repeated:.0%} of frames) but field matching leaves "
            f"{after if after is not None else 1:.0%} combed (broken cadence), so deinterlace {order.upper()}."),
            (), pulldown)
    if interlaced >= INTERLACED_MIN_FRACTION:
        # one detector's vote is not enough: a small or aliased progressive picture fools idet
        evidence |= _field_match(video, ffmpeg, order, spans, per_window, prefix)
        left, own = evidence["fieldmatch_combed"], evidence["own_fields_clean"]
        if own is not None and own >= 1 - TELECINE_MAX_COMBED_AFTER_MATCH:
            return ScanDecision("progressive", None, evidence, (
                f"idet calls {interlaced:.0%} of decided frames combed, but fieldmatch's comb test finds "
                f"{own:.0%} of frames clean as decoded: progressive pictures idet misread{flags}."), (), pulldown)
        if left is not None and left <= TELECINE_MAX_COMBED_AFTER_MATCH:
            return ScanDecision("phase_shifted", order, evidence, (
                f"idet calls {interlaced:.0%} of decided frames combed, but {order.upper()} field matching "
                f"with the neighbouring field leaves {left:.0%} combed ({1 - (own or 0):.0%} combed as "
                f"decoded): progressive film one field out of step, field-matched without decimation."),
                (), pulldown)
        return ScanDecision("interlaced", order, evidence, (
            f"idet finds {interlaced:.0%} of decided frames combed, {multi[order]} {order.upper()} "
            f"against {multi['bff' if order == 'tff' else 'tff']}, with {repeated:.0%} repeated fields, and "
            f"field matching leaves {left if left is not None else 1:.0%} combed."), (), pulldown)
    return ScanDecision("progressive", None, evidence, (
        f"idet finds only {interlaced:.0%} of decided frames combed and {repeated:.0%} repeated fields{flags}."),
        (), pulldown)


def hybrid_decision(video: Path | str, *, ffmpeg: str = "ffmpeg", order: str | None = None) -> ScanDecision:
    """`scan: hybrid` named in the config: the whole title's frame map splits it into film and video runs,
    whatever the sampled vote says (a title with a short film part has too few repeated fields for the
    automatic decision to look for film at all).

    The field order is the one given, else the one idet measures.  When the map finds only one kind of
    frame, the title is that kind (telecine, each run at its own phase; or interlaced) and the reason says
    that the config asked for hybrid.
    """
    auto = detect_scan(video, ffmpeg=ffmpeg, map_cadence=False)
    order = order or auto.field_order or "tff"
    sections = tuple(cadence_sections(*cadence_map(video, ffmpeg=ffmpeg, order=order, pulldown=auto.pulldown)))
    evidence = auto.evidence | {"sections": [f"{s['kind']} {s['start']}-{s['end']}" for s in sections]}
    films = sum(s["end"] - s["start"] for s in sections if s["kind"] == "film")
    videos = sum(s["end"] - s["start"] for s in sections) - films
    asked = (f"scan: hybrid in the config; the {order.upper()} frame map of the whole title finds {films} film "
             f"and {videos} interlaced video frames in {len(sections)} sections")
    if films and videos:
        return ScanDecision("hybrid", order, evidence, asked + " (the sampled vote alone: "
                            f"{auto.scan}).", sections, auto.pulldown)
    if films:
        return ScanDecision("telecine", order, evidence, asked + ": no video section, so the whole title is "
                            "inverse-telecined, each run at its own phase.",
                            sections if len(sections) > 1 else (), auto.pulldown)
    return ScanDecision("interlaced", order, evidence, asked + f": no film run, so deinterlace {order.upper()}.",
                        (), auto.pulldown)


def _film_keep(sections) -> str:
    """select expression keeping every frame except each film run's pulldown repeats."""
    drops = [f"between(n,{s['start']},{s['end'] - 1})*eq(mod(n,5),{s['phase']})"
             for s in sections if s["kind"] == "film" and s.get("phase") is not None]
    return f"not({'+'.join(drops)})" if drops else "1"


def scan_filters(decision: ScanDecision, *, source_fps: Fraction,
                 deinterlace_rate: str = "field") -> tuple[str, Fraction]:
    """FFmpeg ``-vf`` text that makes the title progressive, and the frame rate it outputs.

    Pulldown flags first, when the stream has them (``repeatfields``).  telecine: field
    matching then decimation of 1 frame in 5 (29.97 -> 23.976, or 4/5 of ``source_fps``), with
    bwdif cleaning any frame fieldmatch still finds combed; with cadence-break sections each run
    drops exactly its own repeats (``select``) instead of a fixed one in five; phase_shifted:
    field matching without decimation; interlaced: bwdif, one frame per field
    (``deinterlace_rate="field"``, double rate) or per frame ("frame"); progressive: no filter,
    ``source_fps``.  hybrid: no single chain (see :func:`hybrid_chains`); the rate is the video
    sections' (field or frame rate), the nominal rate of the prepared frames.
    """
    if deinterlace_rate not in ("field", "frame"):
        raise ValueError(f"deinterlace_rate must be 'field' or 'frame', not {deinterlace_rate!r}")
    order = decision.field_order or "tff"
    first = [PULLDOWN] if decision.pulldown else []
    match = [f"fieldmatch=order={order}:combmatch=full", f"bwdif=mode=send_frame:parity={order}:deint=interlaced"]
    if decision.scan == "telecine":
        rate = FILM_RATE if source_fps == NTSC_RATE else Fraction(source_fps) * Fraction(4, 5)
        if decision.sections:
            keep = [f"select='{_film_keep(decision.sections)}'", f"setpts=N/({rate.numerator}/{rate.denominator})/TB"]
            return ",".join(first + match + keep), rate
        # combmatch=full marks frames still combed after matching; bwdif then fixes only those
        return ",".join(first + match + ["decimate"]), rate
    if decision.scan == "phase_shifted":
        return ",".join(first + match), Fraction(source_fps)
    if decision.scan == "hybrid":
        rate = Fraction(source_fps) * (2 if deinterlace_rate == "field" else 1)
        # two chains, not one: the prepare step runs hybrid_chains and interleaves their outputs
        return "", rate
    if decision.scan == "interlaced":
        if deinterlace_rate == "field":
            return ",".join(first + [f"bwdif=mode=send_field:parity={order}:deint=all"]), Fraction(source_fps) * 2
        return ",".join(first + [f"bwdif=mode=send_frame:parity={order}:deint=all"]), Fraction(source_fps)
    if decision.scan == "progressive":
        return ",".join(first), Fraction(source_fps)
    raise ValueError(f"unknown scan type {decision.scan!r}")


def hybrid_chains(decision: ScanDecision, *, deinterlace_rate: str = "field") -> tuple[str, str]:
    """The two filter chains of a hybrid title, both fed the frames with pulldown honoured: film
    sections field-matched with each film picture once; video sections deinterlaced (one frame
    per field, or per frame).  Each chain keeps only its own sections' frames and their times on
    the source clock, so the two outputs interleave by timestamp."""
    order = decision.field_order or "tff"
    film = (f"fieldmatch=order={order}:combmatch=full,bwdif=mode=send_frame:parity={order}:deint=interlaced,"
            f"select='{_film_keep(decision.sections)}*({_in_sections(decision.sections, 'film')})'")
    per = 2 if deinterlace_rate == "field" else 1
    mode = "send_field" if per == 2 else "send_frame"
    video = (f"bwdif=mode={mode}:parity={order}:deint=all,"
             f"select='{_in_sections(decision.sections, 'video', per)}'")
    return film, video


def _in_sections(sections, kind: str, per: int = 1) -> str:
    """select expression: the frame (n counted `per` to a source frame) lies in a `kind` section."""
    n = "n" if per == 1 else f"floor(n/{per})"
    spans = [f"between({n},{s['start']},{s['end'] - 1})" for s in sections if s["kind"] == kind]
    return "+".join(spans) or "0"


def section_times(sections, *, source_fps: Fraction = NTSC_RATE, deinterlace_rate: str = "field") -> list[dict]:
    """Each section's frames after the front end and their real times: film pictures once, 4/5 of the
    source rate (23.976 on NTSC), video one frame per field (or per frame), every section starting
    when its first source frame did.  Frame k of a section is shown at ``start + k * step``."""
    rate = Fraction(source_fps)
    per = 2 if deinterlace_rate == "field" else 1
    out = []
    for s in sections:
        span = s["end"] - s["start"]
        begin = Fraction(s["start"]) / rate
        if s["kind"] == "video":
            frames, step = span * per, 1 / (rate * per)
        else:
            drops = sum(1 for i in range(s["start"], s["end"]) if s.get("phase") is not None and i % 5 == s["phase"])
            frames = span - drops
            # a run cut mid-cycle holds a picture more than 4/5 of its frames: squeeze, never overlap the next
            step = min(Fraction(5, 4) / rate, Fraction(span) / rate / max(frames, 1))
        out.append({"kind": s["kind"], "frames": frames, "start": f"{begin.numerator}/{begin.denominator}",
                    "step": f"{step.numerator}/{step.denominator}"})
    return out


def frame_times(timed_sections: list[dict], factor: int = 1) -> list[Fraction]:
    """Every frame's time from :func:`section_times`; ``factor`` frames per frame when interpolated
    (the new frames evenly between)."""
    times = []
    for s in timed_sections:
        start, step = Fraction(s["start"]), Fraction(s["step"]) / factor
        times += [start + k * step for k in range(s["frames"] * factor)]
    return times


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
