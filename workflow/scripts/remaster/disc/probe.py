"""The probe: what the title holds (streams, frame count and times, geometry, languages, chapters).

`probe_title` returns it as a `Probe` record; probe_source adds the title's disc facts and dumps it to
probe.json (the keys below are its keys), and every later step reads it back with `Probe.load`. A field
with a default is one ffprobe may not give (a tag, a count); the readers fell back to the same values before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..run import media
from ..run.errors import RemasterError
from ..run.records import Record
from .reader import Disc
from .subtitles import count_forced, has_closed_captions


@dataclass(frozen=True, kw_only=True)
class ProbeFormat(Record):
    """The container as ffprobe describes it; its start time is the clock every track's offset counts from."""

    name: str | None = None
    start_time: float = 0.0
    duration: float = 0.0
    size: int = 0
    title: str | None = None  # the container's title tag, the master's title when nothing better names it


@dataclass(frozen=True, kw_only=True)
class ProbeVideo(Record):
    """The title's video stream: stored size, rate, aspect flags, colour tags (ffprobe's names) and its
    decoded timeline (start and span of the frames' times)."""

    index: int = 0  # the stream's index in the title file
    codec: str | None = None
    width: int
    height: int
    pix_fmt: str | None = None
    fps: str  # "30000/1001"
    sar: str  # "8:9"
    dar: str  # "4:3"
    field_order: str = "unknown"  # the stream's flag, not a measurement (the plan measures)
    color_space: str | None = None
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_range: str | None = None
    closed_captions: bool = False  # EIA-608 captions in the picture user data
    start_time: float = 0.0
    duration: float = 0.0  # the span of the frames' times (0: unknown)


@dataclass(frozen=True, kw_only=True)
class ProbeAudio(Record):
    """One audio stream, copied into the master bit for bit (LPCM as FLAC)."""

    index: int
    codec: str | None = None
    channels: int | None = None
    sample_rate: str | None = None  # as ffprobe writes them: strings
    bit_rate: str | None = None
    language: str | None = None  # the stream's tag; None for none or "und"
    id: str | None = None  # the MPEG stream id ffprobe shows ("0x80"): the key of the disc's audio languages
    start_time: float = 0.0
    duration: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ProbeSubtitle(Record):
    """One subtitle stream; a DVD subpicture stream also counts its subpictures and the forced ones."""

    index: int
    codec: str | None = None
    language: str | None = None
    id: str | None = None  # "0x20": the key of the disc's subtitle languages
    start_time: float = 0.0
    subpictures: int | None = None  # counted for dvd_subtitle streams only (None: not counted)
    forced: int | None = None

    @property
    def mixed(self) -> bool:
        """Some subpictures forced, some not: the master gets a forced-only copy of this track."""
        return 0 < (self.forced or 0) < (self.subpictures or 0)

    def as_dict(self) -> dict:
        # probe.json names the counts only for the streams they were counted for
        return {key: value for key, value in super().as_dict().items()
                if value is not None or key not in ("subpictures", "forced")}


@dataclass(frozen=True, kw_only=True)
class ProbeChapter(Record):
    start: float  # seconds on the title's clock (not from the video's first frame)
    end: float
    title: str | None = None


@dataclass(frozen=True, kw_only=True)
class DiscFacts(Record):
    """What the disc's IFOs say about the title read_title chose and read, as plan_disc reads it."""

    name: str | None = None  # the disc's folder or image name
    read_from: str | None = None  # where the title's facts came from: ifo, bup or vob-size
    title_number: int | None = None
    vts: int | None = None
    duration: float | None = None
    aspect: str | None = None
    system: str | None = None
    chapters: tuple[float, ...] = ()  # from the video's first frame
    # keyed by the id ffprobe shows (0x80 AC3, 0x1c0 MPEG audio), from the PGC's control table
    audio_languages: dict[str, str] = field(default_factory=dict)
    subtitle_languages: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Probe(Record):
    """What the title holds (probe.json): written once by probe_source, read by every later step."""

    what = "probe"

    title_file: str
    format: ProbeFormat
    video: ProbeVideo
    frame_count: int  # every picture the decoder shows
    audio: tuple[ProbeAudio, ...] = ()
    subtitles: tuple[ProbeSubtitle, ...] = ()
    chapters: tuple[ProbeChapter, ...] = ()
    source_parts: tuple[str, ...] = ()  # the files the title was read from (filled in by probe_source)
    disc: DiscFacts | None = None  # None for a source that is not a disc (filled in by probe_source)


def _float(value, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _language(stream: dict) -> str | None:
    language = (stream.get("tags") or {}).get("language")
    return None if language in (None, "", "und") else language


def decoded_frame_times(title: Path, index: int, fps: Fraction) -> list[float]:
    """Every picture the decoder shows, at its time (s), in display order: the real timeline.

    A picture the decoder gives without a time (the last of a packed-B-frame AVI, as DivX and Xvid write
    them: its packet holds a placeholder) is still shown: it takes the next frame slot after the last
    timed picture, as ffmpeg's constant-rate output places it."""
    cmd = [media.tool("ffprobe"), "-v", "error", *media.PROBE_ARGS, "-select_streams", str(index),
           "-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0", media.input_path(title)]
    values = [line.strip().rstrip(",") for line in media.run(cmd, what=f"{title}: decoding the frames").stdout.splitlines()]
    timed = sorted(float(v) for v in values if v and v != "N/A")
    untimed = sum(1 for v in values if v == "N/A")
    if not timed:
        raise RemasterError(f"{title}: the video stream has no decodable frames")
    step = float(1 / fps)
    return timed + [timed[-1] + step * k for k in range(1, untimed + 1)]


def probe_title(title: Path) -> tuple[Probe, list[float]]:
    """Describe the title file; return its Probe (no disc facts yet: probe_source adds them) and every video
    frame's timestamp."""
    info = media.ffprobe_json(title)
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")]
    if not video:
        raise RemasterError(f"{title}: no video stream found; is this a video file?")
    v = video[0]
    fps = media.fraction(v.get("avg_frame_rate", "0/0")) or media.fraction(v.get("r_frame_rate", "0/0"))
    if not fps:
        raise RemasterError(f"{title}: the frame rate is unknown")
    timestamps = decoded_frame_times(title, v["index"], fps)
    width, height = int(v["width"]), int(v["height"])
    sar = media.fraction(v.get("sample_aspect_ratio", "1:1")) or Fraction(1)
    dar = media.fraction(v.get("display_aspect_ratio", "0:1")) or Fraction(width, height) * sar
    fmt = info.get("format", {})
    subtitle_streams = [s for s in streams if s.get("codec_type") == "subtitle"]
    forced = count_forced(title, [n for n, s in enumerate(subtitle_streams) if s.get("codec_name") == "dvd_subtitle"])
    probe = Probe(
        title_file=str(title),
        format=ProbeFormat(
            name=fmt.get("format_name"),
            start_time=_float(fmt.get("start_time")),
            duration=_float(fmt.get("duration")),
            size=int(fmt.get("size", 0) or 0),
            title=(fmt.get("tags") or {}).get("title"),
        ),
        video=ProbeVideo(
            index=v["index"],
            codec=v.get("codec_name"),
            width=width,
            height=height,
            pix_fmt=v.get("pix_fmt"),
            fps=f"{fps.numerator}/{fps.denominator}",
            sar=f"{sar.numerator}:{sar.denominator}",
            dar=f"{dar.numerator}:{dar.denominator}",
            field_order=v.get("field_order", "unknown"),
            color_space=v.get("color_space"),
            color_primaries=v.get("color_primaries"),
            color_transfer=v.get("color_transfer"),
            color_range=v.get("color_range"),
            # EIA-608 captions in the picture user data: extract_subtitles keeps them as a text track
            closed_captions=bool(v.get("closed_captions")) or (v.get("codec_name") in ("mpeg2video", "mpeg1video")
                                                               and has_closed_captions(title)),
            start_time=timestamps[0],
            # the span of the frames' times: frames a damaged disc lost still take their time in the master
            duration=max(float(len(timestamps) / fps), timestamps[-1] - timestamps[0] + float(1 / fps)),
        ),
        frame_count=len(timestamps),
        audio=tuple(
            ProbeAudio(
                index=s["index"],
                codec=s.get("codec_name"),
                channels=s.get("channels"),
                sample_rate=s.get("sample_rate"),
                bit_rate=s.get("bit_rate"),
                language=_language(s),
                id=s.get("id"),
                start_time=_float(s.get("start_time")),
                duration=_float(s.get("duration")),
            )
            for s in streams
            if s.get("codec_type") == "audio"
        ),
        subtitles=tuple(
            ProbeSubtitle(index=s["index"], codec=s.get("codec_name"), language=_language(s), id=s.get("id"),
                          start_time=_float(s.get("start_time")),
                          # forced subpictures (a forced track when all are; a forced-only copy when some are)
                          **({"subpictures": forced[n].total, "forced": forced[n].forced} if n in forced else {}))
            for n, s in enumerate(subtitle_streams)
        ),
        chapters=tuple(
            ProbeChapter(start=_float(c.get("start_time")), end=_float(c.get("end_time")),
                         title=(c.get("tags") or {}).get("title"))
            for c in info.get("chapters", [])
        ),
    )
    return probe, timestamps


def disc_facts(disc: Disc | None) -> DiscFacts | None:
    """What the disc's IFOs say about the title read_title chose and read (languages by stream id, chapters,
    name), as plan_disc reads it; None for a source that is not a disc (read_title did not run, or VOB files)."""
    if disc is None or disc.title is None:
        return None
    title = disc.title
    return DiscFacts(
        name=disc.name,
        read_from=title.source,
        title_number=title.number,
        vts=title.vts,
        duration=title.duration,
        aspect=title.aspect,
        system=title.system,
        chapters=tuple(title.chapters),
        # keyed by the id ffprobe shows (0x80 AC3, 0x1c0 MPEG audio), from the PGC's control table
        audio_languages={a.probe_id: a.language for a in title.audio if a.language},
        subtitle_languages={f"0x{s.stream_id:x}": s.language for s in title.subtitles if s.language},
    )
