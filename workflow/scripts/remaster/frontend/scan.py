"""How a DVD title's pictures are scanned, decided from the pictures, and the filters that make them progressive.

DVDs lie: streams are flagged interlaced when they carry film. These functions decide progressive,
telecine (soft or hard), hybrid, phase-shifted or interlaced from FFmpeg's ``idet`` and
``fieldmatch``/``decimate`` statistics, and turn the decision into FFmpeg filter text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from statistics import median

from .cadence import cadence_map, cadence_sections, film_keep
from .measure import (
    COMBS_LINE,
    DECIMATE_LINE,
    FILM_RATE,
    FRAME_COUNT_LINE,
    NTSC_RATE,
    PULLDOWN,
    SCENE_CHANGE,
    duration,
    ffmpeg_log,
    frame_metadata,
    sample_windows,
    window_args,
)

# A 3:2 pulldown repeats one field in 2 of every 5 frames; clean video repeats none.
TELECINE_MIN_REPEATED = 0.15
# In 3:2 pulldown consecutive repeated fields are 2 or 3 frames apart.
TELECINE_MIN_CADENCE = 0.6
# Field matching must leave (almost) no combed frames for IVTC to be the right cure.
TELECINE_MAX_COMBED_AFTER_MATCH = 0.1
# Share of frames idet calls interlaced (TFF or BFF) above which the title is interlaced.
INTERLACED_MIN_FRACTION = 0.25
# fieldmatch's match numbers: p (previous field), c (own fields), n (next field), …
_MATCHES = {0: "p", 1: "c", 2: "n", 3: "b", 4: "u"}
# Share of extra frames the pulldown flags must add before they count (soft telecine adds 25 %).
PULLDOWN_MIN_FRACTION = 0.02


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


def _cadence(repeated: list[str]) -> tuple[float, int]:
    """Share of gaps between repeated-field frames that are 2 or 3 frames (3:2 pulldown),
    and the number of gaps seen."""
    hits = [i for i, r in enumerate(repeated) if r in ("top", "bottom")]
    gaps = [b - a for a, b in zip(hits, hits[1:])]
    return (sum(1 for g in gaps if g in (2, 3)) / len(gaps) if gaps else 0.0), len(gaps)


def _idet_window(video: Path | str, ffmpeg: str, start: float | None, length: float | None,
                 max_frames: int | None, prefix: str = "") -> list[dict[str, str]]:
    limit = ["-frames:v", str(max_frames)] if max_frames else []
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", *window_args(start, length),
           "-i", str(video), "-map", "0:v:0", *limit, "-vf", f"{prefix}idet,metadata=mode=print",
           "-f", "null", "-"]
    # the filter graph may run one frame past the output limit
    return frame_metadata(ffmpeg_log(cmd))[:max_frames]


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
               *window_args(start, length), "-i", str(video), "-map", "0:v:0", *limit,
               "-vf", f"{prefix}fieldmatch=order={order}:combmatch=full,decimate,idet,metadata=mode=print",
               "-f", "null", "-"]
        stderr = ffmpeg_log(cmd)
        output.update(f.get("idet.multiple.current_frame", "undetermined") for f in frame_metadata(stderr))
        cycle: list[int] = []
        for line in stderr.splitlines():
            if "Parsed_fieldmatch" in line and "combed=" in line:
                matched += 1
                combed += "combed=YES" in line
            elif m := DECIMATE_LINE.search(line):
                cycle.append(int(m.group(2), 16))
                if m.group(1) == "5":
                    # a scene change marks a frame with the maximal value; skip those
                    real = sorted(v for v in cycle if v != SCENE_CHANGE)
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
    cmd = [ffmpeg, "-hide_banner", "-nostdin", *window_args(*span), "-i", str(video), "-map", "0:v:0",
           *frames, *(["-vf", vf] if vf else []), "-f", "null", "-"]
    counts = FRAME_COUNT_LINE.findall(ffmpeg_log(cmd))
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
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "debug", *window_args(start, length),
               "-i", str(video), "-map", "0:v:0", *limit, "-vf",
               f"{prefix}fieldmatch=order={order}:combmatch=full", "-f", "null", "-"]
        for m in COMBS_LINE.finditer(ffmpeg_log(cmd)):
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
            keep = [f"select='{film_keep(decision.sections)}'", f"setpts=N/({rate.numerator}/{rate.denominator})/TB"]
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
