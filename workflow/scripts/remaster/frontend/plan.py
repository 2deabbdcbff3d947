"""The front end's decisions for one disc: scan, geometry, colour, rate, languages, chapters, title.

Every automatic decision is written with the evidence it came from and the config key that overrides
it, so the log can say what was decided, why, and how to change it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..disc.probe import DiscFacts, Probe
from ..run.errors import RemasterError
from ..run.records import Record, TimedSection
from ..run.settings import FrontEndSettings
from . import colour as colours
from .cadence import hybrid_chains, section_summary, section_times
from .cleanup import cleanup_filter
from .geometry import detect_crop, square_geometry
from .measure import duration, sample_windows
from .scan import PULLDOWN_MIN_FRACTION, ScanDecision, detect_scan, hybrid_decision, pulldown_fraction, scan_filters

# ISO 639-1 (as DVDs store languages) to the ISO 639-2/B codes Matroska uses
ISO639_2 = {
    "en": "eng", "fr": "fre", "de": "ger", "es": "spa", "it": "ita", "ja": "jpn", "ru": "rus", "zh": "chi",
    "nl": "dut", "pt": "por", "sv": "swe", "da": "dan", "fi": "fin", "no": "nor", "pl": "pol", "cs": "cze",
    "hu": "hun", "el": "gre", "tr": "tur", "he": "heb", "ar": "ara", "ko": "kor", "hi": "hin", "th": "tha",
    "uk": "ukr", "ro": "rum", "bg": "bul", "hr": "hrv", "sk": "slo", "sl": "slv", "sr": "srp", "ca": "cat",
    "is": "ice", "et": "est", "lv": "lav", "lt": "lit", "id": "ind", "ms": "may", "vi": "vie", "la": "lat",
}


def language_code(code: str | None) -> str | None:
    """A Matroska (ISO 639-2) language code from a disc's two-letter or a three-letter code."""
    if not code:
        return None
    code = code.strip().lower()
    return ISO639_2.get(code, code if len(code) == 3 else None)


def _ratio(text: str) -> Fraction:
    left, _, right = text.replace("/", ":").partition(":")
    return Fraction(left) / Fraction(right or 1)


@dataclass(frozen=True)
class Decision(Record):
    """One front-end decision: its value, who made it (auto, config, tags), why, and the key that overrides it."""

    value: Any
    source: str
    evidence: str
    override: str


@dataclass(frozen=True)
class AudioTrack(Record):
    index: int  # the stream's index in the title file
    codec: str
    language: str | None  # ISO 639-2, as Matroska stores it
    language_source: str  # stream, ifo, config or unknown
    offset: float  # seconds from the video's first frame to the track's first sample


@dataclass(frozen=True)
class SubtitleTrack(Record):
    index: int
    codec: str
    language: str | None


@dataclass(frozen=True)
class Cadence(Record):
    """A title mapped frame by frame: its film and video sections, their times, a hybrid's two filter chains."""

    pulldown: bool
    sections: tuple[dict, ...]
    timed: tuple[TimedSection, ...]
    film: str | None = None  # hybrid titles: the film sections' chain, and the video sections'
    video: str | None = None


@dataclass(frozen=True)
class Plan(Record):
    """Every front-end decision for one title, with its evidence: what prepare, upscale, encode, mux, verify,
    preview and the report read (plan.json), never deciding again."""

    what = "plan"

    scan: str
    field_order: str | None
    pulldown: bool
    vfr: bool  # hybrid titles: True = real per-frame timestamps (cadence.timed), fps is then the nominal rate
    cadence: Cadence | None
    filters: str  # the ffmpeg filter chain to progressive, square-pixel model input ("" for none)
    source_fps: str
    fps: str
    crop: tuple[int, ...] | None
    model_input: tuple[int, int]
    display_aspect: str
    colour: colours.Colour
    audio: tuple[AudioTrack, ...]
    subtitles: tuple[SubtitleTrack, ...]
    chapters: tuple[float, ...]
    title: str
    decisions: dict[str, Decision]
    scan_evidence: dict = field(default_factory=dict)

    @property
    def hybrid(self) -> bool:
        return self.scan == "hybrid" and self.cadence is not None


def _decision(value, source: str, evidence: str, key: str) -> Decision:
    return Decision(value, source, evidence, key)


def _scan(settings: FrontEndSettings, detected: ScanDecision | None) -> tuple[str, str | None, dict]:
    if settings.scan == "hybrid":
        # the frame map (hybrid_decision) says which runs are film: without it there is no split
        if detected is None or not (detected.sections or detected.scan != "hybrid"):
            raise RemasterError("scan: hybrid needs the title's frame map (hybrid_decision)")
        return detected.scan, detected.field_order, _decision(detected.scan, "config", detected.reason, "scan")
    if settings.scan != "auto":
        scan = settings.scan
        order = None if scan == "progressive" else (
            settings.field_order if settings.field_order != "auto" else (detected.field_order if detected else None) or "tff")
        return scan, order, _decision(scan, "config", f"scan: {scan} in the config", "scan")
    assert detected is not None
    order = detected.field_order
    source = "auto"
    if detected.scan != "progressive" and settings.field_order != "auto":
        order, source = settings.field_order, "auto (field order from config)"
    return detected.scan, order, _decision(detected.scan, source, detected.reason, "scan")


def make_plan(probe: Probe, settings: FrontEndSettings, *, title: Path, disc_info: DiscFacts | None = None,
              detected: ScanDecision | None = None, crop_found: tuple[int, int, int, int] | None = None,
              scale: float = 1, fallback_title: str = "", pulldown: bool | None = None) -> Plan:
    """Decide how the title becomes progressive, square-pixel frames for the models, and what the master carries.

    `pulldown` says whether the stream has repeat-first-field flags when no `detected` decision holds
    that fact (a scan named in the config); the flags are honoured whatever the scan.
    """
    video = probe.video
    width, height = video.width, video.height
    source_fps = _ratio(settings.fps) if settings.fps != "auto" else _ratio(video.fps)
    scan, field_order, scan_decision = _scan(settings, detected)
    if detected is not None and detected.scan == scan:
        decided = dataclasses.replace(detected, field_order=field_order)
    else:
        # pulldown flags are a fact of the stream, honoured whatever scan the config names
        flags = detected.pulldown if detected is not None else bool(pulldown)
        decided = ScanDecision(scan, field_order, pulldown=flags)
    scan_filter, out_fps = scan_filters(decided, source_fps=source_fps,
                                                deinterlace_rate=settings.deinterlace_rate)
    cadence = None
    if decided.sections:
        film_chain = video_chain = None
        if scan == "hybrid":
            film_chain, video_chain = hybrid_chains(decided, deinterlace_rate=settings.deinterlace_rate)
        cadence = Cadence(decided.pulldown, tuple(dict(s) for s in decided.sections),
                          tuple(section_times(decided.sections, source_fps=source_fps,
                                              deinterlace_rate=settings.deinterlace_rate)),
                          film_chain, video_chain)
    vfr = scan == "hybrid" and settings.vfr

    if settings.crop == "none":
        crop = None
        crop_decision = _decision("none", "default", "bars found: " + (
            "{}x{} at {},{}".format(*crop_found) if crop_found else "none"), "crop")
    elif settings.crop == "auto":
        crop = crop_found
        crop_decision = _decision(list(crop) if crop else "none", "auto",
                                  "cropdetect over windows spread across the title", "crop")
    else:
        crop = tuple(int(v) for v in settings.crop.split(":"))
        crop_decision = _decision(list(crop), "config", f"crop: {settings.crop} in the config", "crop")
    if crop and (crop[0] + crop[2] > width or crop[1] + crop[3] > height):
        raise RemasterError(f"crop: {settings.crop} does not fit in the {width}x{height} frame")

    stored_w, stored_h = (crop[0], crop[1]) if crop else (width, height)
    sar = _ratio(video.sar) or Fraction(1)
    if settings.display_aspect != "auto":
        # the override is the shape of the whole frame; a crop keeps its share of it
        frame_dar = _ratio(settings.display_aspect)
        aspect = frame_dar * Fraction(stored_w, width) / Fraction(stored_h, height)
        aspect_decision = _decision(settings.display_aspect, "config",
                                    f"display_aspect: {settings.display_aspect} overrules the disc's {video.dar}",
                                    "display_aspect")
    else:
        aspect = Fraction(stored_w) * sar / stored_h
        aspect_decision = _decision(video.dar, "auto", f"stream flags: SAR {video.sar}, DAR {video.dar}",
                                    "display_aspect")
    model_w, model_h = square_geometry(stored_w, stored_h, Fraction(1), display_aspect=aspect,
                                               target_height=settings.target_height, scale=max(int(scale), 1))
    filters = [f for f in (scan_filter, cleanup_filter(settings.cleanup)) if f]
    if crop:
        filters.append("crop={}:{}:{}:{}".format(*crop))
    if (model_w, model_h) != (stored_w, stored_h):
        filters.append(f"scale={model_w}:{model_h}:flags=lanczos+accurate_rnd+full_chroma_int")
    filters.append("setsar=1")

    colour = colours.decide(video)

    disc_info = disc_info or DiscFacts()  # not a disc: no IFO languages, chapters or name
    audio = []
    for n, track in enumerate(probe.audio):
        language, source = language_code(track.language), "stream"
        if n < len(settings.audio_languages):
            language, source = settings.audio_languages[n], "config"
        elif disc_info.audio_languages.get(str(track.id)):
            language, source = language_code(disc_info.audio_languages[str(track.id)]), "ifo"
        audio.append(AudioTrack(track.index, track.codec, language, source if language else "unknown",
                                round(track.start_time - video.start_time, 6)))
    subtitles = []
    for n, track in enumerate(probe.subtitles):
        language = language_code(track.language)
        if n < len(settings.subtitle_languages):
            language = settings.subtitle_languages[n]
        elif disc_info.subtitle_languages.get(str(track.id)):
            language = language_code(disc_info.subtitle_languages[str(track.id)])
        subtitles.append(SubtitleTrack(track.index, track.codec, language))
    chapters = disc_info.chapters or [c.start - probe.format.start_time for c in probe.chapters]
    name = settings.title or disc_info.name or probe.format.title or fallback_title

    return Plan(
        scan=scan,
        field_order=field_order,
        pulldown=decided.pulldown,
        vfr=vfr,
        cadence=cadence,
        filters=",".join(filters),
        source_fps=f"{source_fps.numerator}/{source_fps.denominator}",
        fps=f"{out_fps.numerator}/{out_fps.denominator}",
        crop=tuple(crop) if crop else None,
        model_input=(model_w, model_h),
        display_aspect=f"{aspect.numerator}:{aspect.denominator}",
        colour=colour,
        audio=tuple(audio),
        subtitles=tuple(subtitles),
        chapters=tuple(round(c, 3) for c in chapters),
        title=name,
        decisions={
            "scan": scan_decision,
            "field_order": _decision(field_order, "config" if settings.field_order != "auto" else "auto",
                                     "idet's majority of combed frames" if field_order else "progressive: no fields",
                                     "field_order"),
            "fps": _decision(f"{out_fps.numerator}/{out_fps.denominator}", "config" if settings.fps != "auto" else "auto",
                             f"stream rate {video.fps}, scan {scan}, deinterlace_rate {settings.deinterlace_rate}"
                             + (", pulldown flags honoured" if decided.pulldown else "")
                             + ("; variable rate: film sections at 24000/1001, this rate is the video sections'"
                                if vfr else "; constant rate: film pictures repeated 3:2" if scan == "hybrid" else ""),
                             "vfr" if scan == "hybrid" else "fps"),
            "display_aspect": aspect_decision,
            "crop": crop_decision,
            "geometry": _decision([model_w, model_h], "config" if settings.target_height else "auto",
                                  f"{stored_w}x{stored_h} at {float(aspect):.4f}:1 as square pixels",
                                  "target_height"),
            "colour": _decision({k: v for k, v in colour.as_dict().items() if k not in ("system", "from_tags")},
                                "tags" if colour.from_tags else "auto", colour.evidence(height), "(none)"),
        },
        scan_evidence=detected.evidence if detected else {},
    )


def plan_title(title: Path, probe: Probe, settings: FrontEndSettings, *, ffmpeg: str, scale: float = 2,
               fallback_title: str = "", log: logging.Logger) -> Plan:
    """Measure what the settings leave to the front end, then decide: the detectors the plan needs, run here.

    `scan: auto` measures the fields (idet over windows of the title); `scan: hybrid` maps every frame; a scan
    named in the config still reads the pulldown flags (soft telecine is honoured whatever the scan). Bars are
    looked for unless the config names a crop (with `crop: none` they are only reported)."""
    detected = pulldown = None
    if settings.scan == "auto":
        log.info("measuring fields with idet over the title …")
        detected = detect_scan(title, ffmpeg=ffmpeg)
    elif settings.scan == "hybrid":
        log.info("scan: hybrid: mapping film and video frames over the whole title …")
        detected = hybrid_decision(title, ffmpeg=ffmpeg,
                                   order=None if settings.field_order == "auto" else settings.field_order)
    else:
        spans = sample_windows(duration(title, ffmpeg=ffmpeg), windows=6, seconds=20.0)
        pulldown = pulldown_fraction(title, ffmpeg=ffmpeg, spans=spans) > PULLDOWN_MIN_FRACTION
    crop_found = detect_crop(title, ffmpeg=ffmpeg) if settings.crop in ("auto", "none") else None
    return make_plan(probe, settings, title=title, disc_info=probe.disc, detected=detected,
                     crop_found=crop_found, scale=scale, fallback_title=fallback_title, pulldown=pulldown)


def summary(plan: Plan) -> list[str]:
    """The plan in a few lines a person reads: each decision, its evidence, and the key that overrides it."""
    width, height = plan.model_input
    lines = [f"picture: {plan.scan}" + (f" ({plan.field_order})" if plan.field_order else "")
             + f" → {plan.fps} fps, {width}x{height} square pixels into the models, shown at {plan.display_aspect}"]
    for name, decision in plan.decisions.items():
        lines.append(f"{name}: {decision.value} [{decision.source}] because {decision.evidence}"
                     f" (override: {decision.override})")
    if plan.cadence:
        lines += [f"section {line}" for line in section_summary(list(plan.cadence.sections), Fraction(plan.source_fps))]
    languages = ", ".join(f"{a.codec} {a.language or 'und'}" for a in plan.audio) or "none"
    lines.append(f"audio: {languages}; subtitles: {len(plan.subtitles)}; chapters: {len(plan.chapters)};"
                 f" title: {plan.title!r}")
    return lines
