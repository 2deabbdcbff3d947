"""The cadence map of telecined and hybrid titles: which frames are film and which video, each film
run's pulldown phase, and the real time of every frame after the front end.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from ..run.records import TimedSection
from .measure import DECIMATE_LINE, FIELDMATCH_LINE, NTSC_RATE, PULLDOWN, SCENE_CHANGE, ffmpeg_log

if TYPE_CHECKING:  # scan imports this module
    from .scan import ScanDecision

# A frame after field matching is a pulldown repeat when it differs from its predecessor this many
# times less than the frames around it do.
DUPLICATE_RATIO = 0.2
# A film run shorter than one 3:2 cycle (5 frames) next to video is video: pulldown cannot show in so few
# frames (no repeat to find, no phase to keep), so such a run is the map's noise (a still or slow stretch
# of native video field matching leaves clean), and each would be a section of its own in the master.
# Video is the safe side: bwdif keeps every field of a film frame, field matching could drop a video field.
MIN_FILM_RUN = 5


def cadence_map(video: Path | str, *, ffmpeg: str = "ffmpeg", order: str = "tff",
                pulldown: bool = False) -> tuple[list[bool], list[int]]:
    """Per frame of the whole title (pulldown honoured): whether field matching leaves it combed,
    and decimate's difference to the frame before (a pulldown repeat's is near zero)."""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "debug", "-i", str(video), "-map",
           "0:v:0", "-vf", f"{PULLDOWN + ',' if pulldown else ''}fieldmatch=order={order}:combmatch=full,decimate",
           "-f", "null", "-"]
    combed: list[bool] = []
    diffs: list[int] = []
    for line in ffmpeg_log(cmd).splitlines():
        if "Parsed_fieldmatch" in line and (m := FIELDMATCH_LINE.search(line)):
            combed.append(m.group(2) == "YES")
        elif "Parsed_decimate" in line and (m := DECIMATE_LINE.search(line)):
            diffs.append(int(m.group(2), 16))
    # decimate reports only whole cycles; the tail's frames have no difference (treated as unknown)
    diffs += [SCENE_CHANGE] * (len(combed) - len(diffs))
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
    video = _without_short_film(video)
    dups = []
    for i in range(count):
        if video[i] or diffs[i] == SCENE_CHANGE:
            continue
        around = sorted(d for j, d in enumerate(diffs[max(0, i - 5):i + 6], start=max(0, i - 5))
                        if j != i and d != SCENE_CHANGE and not video[j])
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


def _without_short_film(video: list[bool]) -> list[bool]:
    """`video` with every film run shorter than MIN_FILM_RUN that touches video made video (a title all
    film, however short, stays film)."""
    if not any(video):
        return video
    out = list(video)
    start = 0
    for i in range(1, len(video) + 1):
        if i < len(video) and video[i] == video[start]:
            continue
        if not video[start] and i - start < MIN_FILM_RUN:
            out[start:i] = [True] * (i - start)
        start = i
    return out


def section_summary(sections: list[dict] | tuple, rate: Fraction = NTSC_RATE) -> list[str]:
    """One line per section for the log: kind, frames and times."""
    return [f"{s['kind']}: frames {s['start']}-{s['end'] - 1} ({float(s['start'] / rate):.3f}-"
            f"{float(s['end'] / rate):.3f} s)" + (f", pulldown repeats at cycle position {s['phase']}"
                                                 if s.get("phase") is not None else "") for s in sections]


def film_keep(sections) -> str:
    """select expression keeping every frame except each film run's pulldown repeats."""
    drops = [f"between(n,{s['start']},{s['end'] - 1})*eq(mod(n,5),{s['phase']})"
             for s in sections if s["kind"] == "film" and s.get("phase") is not None]
    return f"not({'+'.join(drops)})" if drops else "1"


def hybrid_chains(decision: ScanDecision, *, deinterlace_rate: str = "field") -> tuple[str, str]:
    """The two filter chains of a hybrid title, both fed the frames with pulldown honoured: film
    sections field-matched with each film picture once; video sections deinterlaced (one frame
    per field, or per frame).  Each chain keeps only its own sections' frames and their times on
    the source clock, so the two outputs interleave by timestamp."""
    order = decision.field_order or "tff"
    film = (f"fieldmatch=order={order}:combmatch=full,bwdif=mode=send_frame:parity={order}:deint=interlaced,"
            f"select='{film_keep(decision.sections)}*({in_sections(decision.sections, 'film')})'")
    per = 2 if deinterlace_rate == "field" else 1
    mode = "send_field" if per == 2 else "send_frame"
    video = (f"bwdif=mode={mode}:parity={order}:deint=all,"
             f"select='{in_sections(decision.sections, 'video', per)}'")
    return film, video


def in_sections(sections, kind: str, per: int = 1) -> str:
    """select expression: the frame (n counted `per` to a source frame) lies in a `kind` section."""
    n = "n" if per == 1 else f"floor(n/{per})"
    spans = [f"between({n},{s['start']},{s['end'] - 1})" for s in sections if s["kind"] == kind]
    return "+".join(spans) or "0"


def section_times(sections, *, source_fps: Fraction = NTSC_RATE,
                  deinterlace_rate: str = "field") -> list[TimedSection]:
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
        out.append(TimedSection(s["kind"], frames, f"{begin.numerator}/{begin.denominator}",
                                f"{step.numerator}/{step.denominator}"))
    return out


def frame_times(timed_sections, factor: int = 1) -> list[Fraction]:
    """Every frame's time from :func:`section_times`' sections; ``factor`` frames per frame when interpolated
    (the new frames evenly between)."""
    return [t for section in timed_sections for t in section.times(factor)]
