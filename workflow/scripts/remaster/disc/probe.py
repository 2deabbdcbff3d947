"""The probe: what the title holds (streams, frame count and times, geometry, languages, chapters)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ..run import media
from ..run.errors import RemasterError
from .reader import Disc
from .subtitles import count_forced, has_closed_captions


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


def probe_title(title: Path) -> tuple[dict, list[float]]:
    """Describe the title file; return the description and every video frame's timestamp."""
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
    description = {
        "title_file": str(title),
        "format": {
            "name": fmt.get("format_name"),
            "start_time": _float(fmt.get("start_time")),
            "duration": _float(fmt.get("duration")),
            "size": int(fmt.get("size", 0) or 0),
            "title": (fmt.get("tags") or {}).get("title"),
        },
        "video": {
            "index": v["index"],
            "codec": v.get("codec_name"),
            "width": width,
            "height": height,
            "pix_fmt": v.get("pix_fmt"),
            "fps": f"{fps.numerator}/{fps.denominator}",
            "sar": f"{sar.numerator}:{sar.denominator}",
            "dar": f"{dar.numerator}:{dar.denominator}",
            "field_order": v.get("field_order", "unknown"),
            "color_space": v.get("color_space"),
            "color_primaries": v.get("color_primaries"),
            "color_transfer": v.get("color_transfer"),
            "color_range": v.get("color_range"),
            # EIA-608 captions in the picture user data: extract_subtitles keeps them as a text track
            "closed_captions": bool(v.get("closed_captions")) or (v.get("codec_name") in ("mpeg2video", "mpeg1video")
                                                                  and has_closed_captions(title)),
            "start_time": timestamps[0],
            # the span of the frames' times: frames a damaged disc lost still take their time in the master
            "duration": max(float(len(timestamps) / fps), timestamps[-1] - timestamps[0] + float(1 / fps)),
        },
        "frame_count": len(timestamps),
        "audio": [
            {
                "index": s["index"],
                "codec": s.get("codec_name"),
                "channels": s.get("channels"),
                "sample_rate": s.get("sample_rate"),
                "bit_rate": s.get("bit_rate"),
                "language": _language(s),
                "id": s.get("id"),
                "start_time": _float(s.get("start_time")),
                "duration": _float(s.get("duration")),
            }
            for s in streams
            if s.get("codec_type") == "audio"
        ],
        "subtitles": [
            {"index": s["index"], "codec": s.get("codec_name"), "language": _language(s), "id": s.get("id"),
             "start_time": _float(s.get("start_time")),
             # forced subpictures (a forced track when all are; a forced-only copy when some are)
             **({"subpictures": forced[n].total, "forced": forced[n].forced} if n in forced else {})}
            for n, s in enumerate(subtitle_streams)
        ],
        "chapters": [
            {"start": _float(c.get("start_time")), "end": _float(c.get("end_time")),
             "title": (c.get("tags") or {}).get("title")}
            for c in info.get("chapters", [])
        ],
    }
    return description, timestamps


def disc_facts(disc: Disc | None) -> dict:
    """What the disc's IFOs say about the title read_title chose and read (languages by stream id, chapters,
    name), as plan_disc reads it; {} for a source that is not a disc (read_title did not run, or VOB files)."""
    if disc is None or disc.title is None:
        return {}
    title = disc.title
    return {
        "name": disc.name,
        "read_from": title.source,
        "title_number": title.number,
        "vts": title.vts,
        "duration": title.duration,
        "aspect": title.aspect,
        "system": title.system,
        "chapters": list(title.chapters),
        # keyed by the id ffprobe shows (0x80 AC3, 0x1c0 MPEG audio), from the PGC's control table
        "audio_languages": {a.probe_id: a.language for a in title.audio if a.language},
        "subtitle_languages": {f"0x{s.stream_id:x}": s.language for s in title.subtitles if s.language},
    }
