"""Muxing the master: the encoded shards joined by stream copy, every audio and subtitle track, the chapters,
and for a variable-rate master every frame's real time.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

from ..disc.probe import Probe
from ..frontend.plan import Plan
from ..run import media
from ..run.errors import RemasterError


def concat_list(shards: list[Path]) -> str:
    """The concat demuxer's list, quoting each path as its syntax requires."""
    lines = []
    for path in shards:
        quoted = str(Path(path).absolute()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def chapters_metadata(chapters: list[float], end: float) -> str:
    """An FFMETADATA file holding the chapters (start times in seconds), each ending where the next starts."""
    lines = [";FFMETADATA1"]
    bounds = [*chapters, max(end, chapters[-1] + 0.001)] if chapters else []
    for number, (begin, finish) in enumerate(zip(bounds, bounds[1:]), start=1):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(begin * 1000)}", f"END={round(finish * 1000)}",
                  f"title=Chapter {number:02d}"]
    return "\n".join(lines) + "\n"


def timestamps_v2(times: list[Fraction]) -> str:
    """mkvmerge's timestamp file (format v2): every frame's time in milliseconds, one a line."""
    return "# timestamp format v2\n" + "".join(f"{float(t * 1000):.6f}\n" for t in times)


def mkvmerge() -> str:
    """The mkvmerge executable (mkvtoolnix), needed to give a variable-rate master its frame times."""
    found = shutil.which("mkvmerge")
    if not found:
        raise RemasterError("mkvmerge not found: a variable-rate (hybrid) master needs mkvtoolnix; run ./setup.sh "
                            "or apt-get install mkvtoolnix, or set vfr: false")
    return found


def retime_commands(list_file: Path, joined: Path, times_file: Path, out: Path) -> list[list[str]]:
    """Join the encoded shards (stream copy), then give every frame its real time with mkvmerge
    (``--timestamps 0:file``): the shards are encoded at a nominal constant rate, the times come from
    the prepared title's sections."""
    join = media.ffmpeg_args("-f", "concat", "-safe", "0", "-i", media.input_path(list_file), "-map", "0:v:0",
                             "-c", "copy", "-f", "matroska", str(joined))
    retime = [mkvmerge(), "--quiet", "-o", str(out), "--timestamps", f"0:{times_file}", str(joined)]
    return [join, retime]


def mux_command(list_file: Path, out_tmp: Path, *, plan: Plan, offsets: dict[str, float],
                audio: Path | None, subtitles: Path | None, chapters: Path | None,
                video: Path | None = None) -> list[str]:
    """ffmpeg joining the encoded shards, every audio and subtitle track (stream copy) and the chapters.

    The master's clock is the source's, less the source's start time. ffmpeg starts every input at zero,
    so each input is delayed by when its first stream started in the source (`offsets`: video, audio,
    subtitles): a track that started 0.3 s after the picture still does. Audio is never re-encoded.
    `video`, when given, is the already joined and retimed video (a variable-rate master) read instead
    of the shard list.
    """
    if video is not None:
        args = ["-itsoffset", f"{offsets['video']:.6f}", "-i", media.input_path(video)]
    else:
        args = ["-itsoffset", f"{offsets['video']:.6f}", "-f", "concat", "-safe", "0", "-i",
                media.input_path(list_file)]
    maps = ["-map", "0:v:0"]
    metadata: list[str] = []
    inputs = 1
    if audio is not None:
        args += ["-itsoffset", f"{offsets['audio']:.6f}", "-i", media.input_path(audio)]
        maps += ["-map", f"{inputs}:a"]
        for n, track in enumerate(plan.audio):
            metadata += [f"-metadata:s:a:{n}", f"language={track.language or 'und'}"]
        inputs += 1
    if subtitles is not None:
        args += ["-itsoffset", f"{offsets['subtitles']:.6f}", "-i", media.input_path(subtitles)]
        maps += ["-map", f"{inputs}:s"]
        for n, track in enumerate(plan.subtitles):
            metadata += [f"-metadata:s:s:{n}", f"language={track.language or 'und'}"]
        inputs += 1
    if chapters is not None:
        args += ["-f", "ffmetadata", "-i", media.input_path(chapters)]
        maps += ["-map_chapters", str(inputs)]
        inputs += 1
    else:
        maps += ["-map_chapters", "-1"]
    if plan.title:
        metadata += ["-metadata", f"title={plan.title}"]
    return media.ffmpeg_args(*args, *maps, "-map_metadata", "-1", *metadata, "-c", "copy",
                             "-f", "matroska", str(out_tmp))


def track_offsets(probe: Probe, subtitle_start: float | None = None) -> dict[str, float]:
    """When each kind of track starts after the source's start (s): the master keeps the source's sync.

    `subtitle_start` is the extracted subtitle file's own start on the title's clock, when known: its first
    cue may be a closed caption that comes before any subpicture stream starts."""
    zero = probe.format.start_time
    offsets = {
        "video": max(probe.video.start_time - zero, 0.0),
        "audio": max(min((a.start_time for a in probe.audio), default=zero) - zero, 0.0),
        "subtitles": max(min((s.start_time for s in probe.subtitles), default=zero) - zero, 0.0),
    }
    if subtitle_start is not None:
        offsets["subtitles"] = max(subtitle_start - zero, 0.0)
    return offsets


def extra_subtitle_names(streams: list[dict], own: int) -> list[str]:
    """Metadata options naming the subtitle tracks extract_subtitles adds after the title's `own` ones
    (forced-only copies, closed captions) with the language and name it gave them."""
    named = []
    for n, track in enumerate(streams[own:], start=own):
        tags = track.get("tags") or {}
        named += [f"-metadata:s:s:{n}", f"language={tags.get('language') or 'und'}"]
        named += [f"-metadata:s:s:{n}", f"title={tags['title']}"] if tags.get("title") else []
    return named
