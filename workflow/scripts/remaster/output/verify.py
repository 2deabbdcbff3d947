"""Verifying a finished master against its source, property by property.

What a user would check by hand before deleting the disc image: the frame count and duration, every
audio track bit for bit, languages, subtitles, chapters, the display aspect, and that the video decodes
cleanly. What to expect comes from the probe, refined by the front end's plan (its rate, aspect, languages
and chapters) and the prepared title's facts (its frame count) when the workflow made them.
The decode pass also measures flicker (remaster.flicker), so the master is read only once.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..disc.probe import Probe
from ..frontend.plan import Plan
from ..run import media
from ..run.errors import RemasterError
from ..run.records import Prepared, Record, TimedSection
from .flicker import FlickerMeter, ShardFlicker, summary

DAR_TOLERANCE = 0.01  # relative
CHAPTER_TOLERANCE = 0.002  # seconds, besides one frame: chapter times are stored to the millisecond


@dataclass(frozen=True)
class Check(Record):
    """One property: what the source says, what the master has, and whether they agree."""

    what = "verification check"

    name: str
    ok: bool
    expected: object
    found: object
    message: str


@dataclass(frozen=True)
class LostPictures(Record):
    """Pictures the front end logged as lost to source damage: expected, named, never a failure."""

    what = "lost pictures"

    start: float | None  # the range prepare_title filled with the last good picture (None: not in the timeline)
    end: float | None
    pictures: int


@dataclass(frozen=True)
class Flicker(Record):
    """The flicker measure: the whole title's numbers (`flicker.summary`) and each shard's."""

    what = "flicker"

    overall: dict
    shards: tuple[ShardFlicker, ...] = ()

    @classmethod
    def of(cls, shards: list[ShardFlicker] | tuple[ShardFlicker, ...]) -> Flicker:
        return cls(summary(list(shards)), tuple(shards))


@dataclass(frozen=True)
class Verification(Record):
    """What verify_master found (`verify_master/verify.json`): every check, the source's lost pictures and
    the flicker measure; `ok` is written too, for whoever reads the file without remaster."""

    what = "verification"

    master: str
    checks: tuple[Check, ...] = ()
    source_damage: tuple[LostPictures, ...] = ()
    flicker: Flicker = field(default_factory=lambda: Flicker({}))  # none measured

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def failure_line(self) -> str:
        """One line naming every property that failed and by how much."""
        return f"{self.master}: verification failed: " + "; ".join(c.message for c in self.failures)

    def damage_line(self) -> str:
        """One line naming where the source lost pictures and how many ('' when it lost none)."""
        if not self.source_damage:
            return ""
        where = ", ".join(f"{d.pictures} at {d.start:.2f}-{d.end:.2f} s (the last good one repeated)"
                          if d.start is not None else f"{d.pictures} not in the master's timeline"
                          for d in self.source_damage)
        total = sum(d.pictures for d in self.source_damage)
        return (f"{self.master}: {total} pictures lost to source damage, as prepare_title logged (expected, "
                f"not a failure): {where}")

    def as_dict(self) -> dict:
        fields = super().as_dict()
        return {"master": fields.pop("master"), "ok": self.ok, **fields}

    def as_text(self) -> str:
        """The record as verify.json holds it, for a log."""
        return json.dumps(self.as_dict(), indent=2)


@dataclass(frozen=True)
class Expected:
    """What the master must be, in one place."""

    frames: int
    fps: Fraction
    duration: float
    display_aspect: Fraction
    audio_languages: list[str | None]
    subtitle_languages: list[str | None]
    chapters: list[float]
    width: int  # the frames the models were given (flicker is measured at this size)
    height: int
    # pictures lost to source damage that the master cannot hold (at the title's edges, or overlapping
    # times dropped): the source's span is that much longer than the master's real timeline
    lost_frames: int = 0
    damage: tuple[tuple[float, float], ...] = ()


def expectations(probe: Probe, plan: Plan, prepared: Prepared, *, retimed: bool = False,
                 interpolation_factor: int = 1) -> Expected:
    """The master's expected properties.

    Frame count and rate: the prepared title's. Duration: the source video's (a rate change by IVTC or
    deinterlacing keeps it), or frames ÷ rate when the config retimed the frames on purpose, or a variable-rate
    title's sections' times. Aspect, languages and chapters: the plan's. Frame interpolation multiplies frames
    and rate by its factor, and keeps the duration.
    """
    video = probe.video
    frames, fps = prepared.frame_count, Fraction(prepared.fps)
    duration = float(frames / fps) if retimed else float(video.duration or frames / fps)
    if prepared.vfr:
        # a variable-rate master lasts as long as its sections' frame times say (the source's length)
        duration = prepared.duration
    frames, fps = frames * interpolation_factor, fps * interpolation_factor
    aspect = media.fraction(plan.display_aspect)
    video_offset = max(video.start_time - probe.format.start_time, 0.0)
    chapters = [float(c) + video_offset for c in plan.chapters]
    audio = [track.language for track in plan.audio]
    subtitles = [track.language for track in plan.subtitles]
    width, height = plan.model_input
    damage = prepared.damaged
    lost = 0
    if (damage or prepared.dropped_frames) and not retimed and not prepared.vfr:
        # the source's span promises these pictures; the front end logged them as lost, not the master
        lost = max(int(round(duration * float(fps))) - frames, 0)
        duration -= lost / float(fps)
    return Expected(frames, fps, duration, aspect, audio, subtitles, chapters, int(width), int(height), lost, damage)


# the muxer writing the decoded frames to the pipe; its complaints are about its own output, not the master
PIPE_MUXER = "rawvideo"
_PIPE_MUXER_LINE = re.compile(rf"^\[{PIPE_MUXER} @ 0x[0-9a-f]+\]")


def _gray_decoder(path: Path, width: int, height: int, errors_to) -> subprocess.Popen:
    """ffmpeg decoding every frame of the first video stream (none dropped or repeated) to 8-bit luma.

    Every message is its own line (`repeat`), each prefixed with the component that said it, so that
    :func:`decoder_errors` can drop the pipe muxer's."""
    cmd = [media.tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "repeat+error", "-i",
           media.input_path(path), "-map", "0:v:0", "-fps_mode", "passthrough",
           "-vf", f"scale={width}:{height}:flags=area,format=gray", "-f", PIPE_MUXER, "-pix_fmt", "gray", "pipe:1"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors_to)


def decoder_errors(log: str) -> str:
    """ffmpeg's error lines about reading and decoding the master, without the pipe muxer's own complaints
    (Matroska's millisecond times make it say "non monotonically increasing dts" about frames that
    decoded perfectly: the source prints the same)."""
    return "\n".join(line for line in log.splitlines() if line.strip() and not _PIPE_MUXER_LINE.match(line))


def _frames(proc: subprocess.Popen, size: int):
    while True:
        data = proc.stdout.read(size)
        if len(data) < size:
            return
        yield data


def decode_and_measure(master: Path, source: Path | None, width: int, height: int,
                       bounds: list[tuple[str, int, int]]) -> tuple[int, str, list[ShardFlicker]]:
    """Decode the master (and the source, if given) once, side by side, as luma at width×height.

    Returns the master's decoded frame count, ffmpeg's error output for the master, and per-shard flicker
    (empty without a source).
    """
    meter = FlickerMeter(bounds)
    frame_size = width * height
    with tempfile.TemporaryFile() as master_errors, tempfile.TemporaryFile() as source_errors:
        # errors go to files, not pipes: a decoder with much to say must never block on a full pipe
        master_proc = _gray_decoder(master, width, height, master_errors)
        source_proc = _gray_decoder(source, width, height, source_errors) if source else None
        master_iter = _frames(master_proc, frame_size)
        source_iter = _frames(source_proc, frame_size) if source_proc else iter(())
        try:
            while True:
                m, s = next(master_iter, None), next(source_iter, None)
                if m is None and s is None:
                    break
                meter.add(None if s is None else np.frombuffer(s, np.uint8).reshape(height, width),
                          None if m is None else np.frombuffer(m, np.uint8).reshape(height, width))
        finally:
            for proc in (master_proc, source_proc):
                if proc:
                    proc.stdout.close()
                    proc.wait()
        master_errors.seek(0)
        errors = decoder_errors(master_errors.read().decode(errors="replace")).strip()
        if master_proc.returncode != 0 and not errors:
            errors = f"ffmpeg exited with status {master_proc.returncode}"
    return meter.master_frames, errors, meter.result() if source else []


def _video_span(path: Path) -> float:
    """Seconds from the first video frame's start to the last one's end, from the packets."""
    cmd = [media.tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries",
           "packet=pts_time,duration_time", "-of", "csv=p=0", media.input_path(path)]
    out = media.run(cmd, what=f"{path}: reading packet times").stdout
    starts, ends = [], []
    for line in out.splitlines():
        parts = [p for p in line.strip().split(",") if p]
        if not parts or parts[0] == "N/A":
            continue
        pts = float(parts[0])
        duration = float(parts[1]) if len(parts) > 1 and parts[1] != "N/A" else 0.0
        starts.append(pts)
        ends.append(pts + duration)
    return max(ends) - min(starts) if starts else 0.0


def audio_hash(path: Path, track: int, codec: str | None = None) -> str | None:
    """md5 of one audio track's packet payloads, stream-copied (timestamps and container play no part).

    AAC is hashed without ADTS headers: MPEG-TS and ADTS files carry a header on every packet, Matroska
    and MP4 store the same payload bare (the bitstream filter passes bare packets through unchanged)."""
    probe_args = getattr(media, "PROBE_ARGS", ())
    bare = ["-bsf:a", "aac_adtstoasc"] if codec == "aac" else []
    cmd = media.ffmpeg_args(*probe_args, "-i", media.input_path(path), "-map", f"0:a:{track}", "-c", "copy",
                            *bare, "-f", "streamhash", "-hash", "md5", "pipe:1")
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        if "MD5=" in line:
            return line.split("MD5=", 1)[1].strip()
    return None


def _dar(stream: dict) -> Fraction:
    width, height = int(stream["width"]), int(stream["height"])
    sar = media.fraction(stream.get("sample_aspect_ratio") or "1:1") or Fraction(1)
    return Fraction(width, height) * sar


def _fmt(value: Fraction) -> str:
    return f"{float(value):.4f}"


def _tag_language(stream: dict) -> str | None:
    found = (stream.get("tags") or {}).get("language") or None
    return None if found == "und" else found


def _tracks(kind: str, source: list, master: list, languages: list[str | None]) -> list[Check]:
    checks = [Check(f"{kind}_tracks", len(master) == len(source), len(source), len(master),
                    f"{kind}_tracks: the master has {len(master)} {kind} tracks, the source {len(source)} "
                    f"({len(master) - len(source):+d})")]
    for n, language in enumerate(languages):
        if n >= len(master) or language is None:
            continue
        found = _tag_language(master[n])
        checks.append(Check(f"{kind}_{n}_language", found == language, language, found,
                            f"{kind}_{n}_language: track {n} is tagged {found or 'without a language'}, "
                            f"expected {language}"))
    return checks


def _video_times(path: Path) -> list[float]:
    cmd = [media.tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
           "-of", "csv=p=0", media.input_path(path)]
    out = media.run(cmd, what=f"{path}: reading packet times").stdout
    return sorted(float(line.strip().strip(",")) for line in out.splitlines() if line.strip().strip(",") not in ("", "N/A"))


# Matroska stores times in milliseconds: a frame may sit up to half a millisecond off, plus rounding
TIMESTAMP_TOLERANCE = 0.0015


def check_timestamps(master: Path, timed: Sequence[TimedSection], factor: int = 1) -> Check:
    """A variable-rate master: every frame at the time its section gives it (relative to the first frame),
    the times strictly increasing."""
    from ..frontend.cadence import frame_times  # verify stays importable without the analysis constants

    want = [float(t) for t in frame_times(timed, factor)]
    got = _video_times(master)
    if len(got) != len(want):
        return Check("timestamps", False, len(want), len(got),
                     f"timestamps: the master has {len(got)} video timestamps, its sections give {len(want)}")
    worst = max((abs((g - got[0]) - (w - want[0])) for g, w in zip(got, want)), default=0.0)
    rising = all(b > a for a, b in zip(got, got[1:]))
    return Check("timestamps", worst <= TIMESTAMP_TOLERANCE and rising, "per-section frame times",
                 round(worst, 6), f"timestamps: a frame is {worst * 1000:.1f} ms from its section's time"
                 + ("" if rising else ", and the times do not strictly increase"))


SYNC_TOLERANCE = 0.002  # seconds besides one frame: Matroska's millisecond times, rounded twice


def _start(stream: dict) -> float | None:
    try:
        return float(stream["start_time"])
    except (KeyError, TypeError, ValueError):
        return None


def _sync_checks(probe: Probe, info: dict, master: Path, audio: list[dict], frame: float) -> list[Check]:
    """Each audio track starts as far from the picture as in the source (within a frame): the lip sync."""
    source_video = probe.video.start_time
    if not audio:
        return []
    times = _video_times(master)
    if not times:
        return []
    checks = []
    for n, track in enumerate(probe.audio):
        if n >= len(audio) or _start(audio[n]) is None:
            continue
        want = track.start_time - source_video
        got = _start(audio[n]) - times[0]
        off = got - want
        checks.append(Check(f"audio_{n}_sync", abs(off) <= frame + SYNC_TOLERANCE, round(want, 4), round(got, 4),
                            f"audio_{n}_sync: track {n} starts {got:+.3f} s from the picture, in the source "
                            f"{want:+.3f} s ({off * 1000:+.0f} ms, {off / frame:+.1f} frames out of sync; "
                            "at most 1 frame allowed)"))
    return checks


def check_container(master: Path, probe: Probe, expected: Expected, title: Path | None) -> list[Check]:
    """Every property that needs no decoding: duration, audio, languages, subtitles, chapters, aspect."""
    info = media.ffprobe_json(master)
    streams = info.get("streams", [])
    checks: list[Check] = []
    frame = float(1 / expected.fps)

    video = [s for s in streams if s.get("codec_type") == "video"]
    span = _video_span(master) if video else 0.0
    off = span - expected.duration
    checks.append(Check("duration", abs(off) <= frame + 1e-6, round(expected.duration, 6), round(span, 6),
                        f"duration is {span:.3f} s, expected {expected.duration:.3f} s "
                        f"({off:+.3f} s, {off / frame:+.1f} frames; at most 1 frame allowed)"
                        + (f"; {expected.lost_frames} pictures lost to source damage already counted"
                           if expected.lost_frames else "")))

    audio = [s for s in streams if s.get("codec_type") == "audio"]
    source_audio = probe.audio
    checks += _tracks("audio", source_audio, audio, expected.audio_languages)
    for n, track in enumerate(source_audio):
        if n >= len(audio):
            checks.append(Check(f"audio_{n}", False, track.codec, None,
                                f"audio_{n}: source audio track {n} ({track.codec}) is missing"))
        elif title is not None:
            want, got = audio_hash(title, n, track.codec), audio_hash(master, n, track.codec)
            checks.append(Check(f"audio_{n}", want is not None and want == got, want, got,
                                f"audio_{n}: track {n} is not bit-identical to the source's "
                                f"(md5 of its packets {got}, the source's {want})"))

    checks += _sync_checks(probe, info, master, audio, frame)

    subtitles = [s for s in streams if s.get("codec_type") == "subtitle"]
    # a forced-only copy of each track mixing forced and ordinary subpictures, then the closed captions (text)
    mixed = [t for t in probe.subtitles if t.mixed]
    source_subtitles = [*probe.subtitles, *mixed, *(["closed captions"] if probe.video.closed_captions else [])]
    checks += _tracks("subtitle", source_subtitles, subtitles, expected.subtitle_languages)

    starts = [float(c.get("start_time", 0)) for c in info.get("chapters", [])]
    want = expected.chapters
    if len(starts) != len(want):
        checks.append(Check("chapters", False, len(want), len(starts),
                            f"chapters: the master has {len(starts)} chapters, the source {len(want)} "
                            f"({len(starts) - len(want):+d})"))
    else:
        worst = max((abs(a - b) for a, b in zip(starts, want)), default=0.0)
        checks.append(Check("chapters", worst <= frame + CHAPTER_TOLERANCE, [round(c, 3) for c in want],
                            [round(c, 3) for c in starts],
                            f"chapters: a chapter starts {worst:.3f} s away from the source's "
                            f"(at most 1 frame allowed)"))

    if video:
        dar = _dar(video[0])
        off = float(dar / expected.display_aspect) - 1
        checks.append(Check("display_aspect", abs(off) <= DAR_TOLERANCE, _fmt(expected.display_aspect), _fmt(dar),
                            f"display_aspect is {_fmt(dar)} ({dar.numerator}:{dar.denominator}), expected "
                            f"{_fmt(expected.display_aspect)} ({off:+.1%}; at most {DAR_TOLERANCE:.0%} allowed)"))
    else:
        checks.append(Check("display_aspect", False, _fmt(expected.display_aspect), None,
                            "display_aspect: the master has no video stream"))
    return checks


def _damage(expected: Expected) -> tuple[LostPictures, ...]:
    """Where the source lost pictures and how many: each range prepare_title logged (filled there with the
    last good picture), and the pictures its span promised that no range holds (`lost_frames`)."""
    rate = float(expected.fps)
    found = [LostPictures(a, b, max(int(round((b - a) * rate)), 1)) for a, b in expected.damage]
    if expected.lost_frames:  # not filled: the master's timeline is that much shorter than the source's span
        found.append(LostPictures(None, None, expected.lost_frames))
    return tuple(found)


def verify_master(master: Path, probe: Probe, title: Path | None = None, *, plan: Plan, prepared: Prepared,
                  prepared_file: Path | None = None, retimed: bool = False,
                  interpolation_factor: int = 1) -> Verification:
    """Check the master against its source and return every check (a differing property never raises).

    `title` (the source title file) enables the bit-identity check of the audio; flicker is measured per
    shard of the prepared title's shard table against `prepared_file` (the frames the models were given)
    if given, else against `title`.
    """
    master = Path(master)
    if not master.is_file():
        raise RemasterError(f"{master}: the master does not exist; run the workflow first")
    expected = expectations(probe, plan, prepared, retimed=retimed, interpolation_factor=interpolation_factor)
    checks = check_container(master, probe, expected, title)
    if prepared.vfr:
        checks.append(check_timestamps(master, prepared.timed, interpolation_factor))

    # the shard table fixed at prepare time, each shard's frames multiplied by the interpolation
    bounds = [(shard.name, shard.start * interpolation_factor, shard.end * interpolation_factor)
              for shard in prepared.shards]
    source = prepared_file or title
    decoded, errors, flicker = decode_and_measure(master, source, expected.width, expected.height, bounds)
    checks.insert(0, Check("frame_count", decoded == expected.frames, expected.frames, decoded,
                           f"frame_count is {decoded}, expected {expected.frames} "
                           f"({decoded - expected.frames:+d} frames)"))
    first_error = errors.splitlines()[0] if errors else ""
    checks.insert(1, Check("decodes_cleanly", not errors, "", errors[-2000:],
                           f"decodes_cleanly: ffmpeg reports errors decoding the video: {first_error}"))
    return Verification(str(master), tuple(checks), _damage(expected), Flicker.of(flicker))
