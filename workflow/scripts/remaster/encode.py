"""Encoding upscaled shards with the user's codec, and muxing the master."""

from __future__ import annotations

from pathlib import Path

from . import media
from .settings import EncoderSettings

BT709 = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"]


def encode_command(upscaled: Path, out_tmp: Path, encoder: EncoderSettings, sar: str) -> list[str]:
    """ffmpeg encoding one lossless upscaled shard to the delivery codec; shards join by stream copy."""
    codec_args = ["-c:v", encoder.codec, "-pix_fmt", encoder.pix_fmt]
    if encoder.codec in ("libx264", "libx265", "libsvtav1"):
        codec_args += ["-crf", str(encoder.crf), "-preset", str(encoder.preset)]
    if encoder.codec == "libx265":
        codec_args += ["-x265-params", "log-level=error"]
    return media.ffmpeg_args(
        "-i", media.input_path(upscaled), "-map", "0:v:0", "-vf", f"setsar={sar.replace(':', '/')}",
        *codec_args, *BT709, *encoder.extra_args, "-an", "-sn", "-f", "matroska", str(out_tmp),
    )


def concat_list(shards: list[Path]) -> str:
    """The concat demuxer's list, quoting each path as its syntax requires."""
    lines = []
    for path in shards:
        quoted = str(Path(path).absolute()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def mux_command(list_file: Path, out_tmp: Path, *, video_offset: float, audio: Path | None, probe: dict,
                chapters_from: Path | None, title: str | None) -> list[str]:
    """ffmpeg joining the encoded shards, every audio track (stream copy) and the chapters into one MKV.

    The video is delayed by its start offset in the source, so audio keeps its original sync.
    """
    args = ["-itsoffset", f"{video_offset:.6f}", "-f", "concat", "-safe", "0", "-i", media.input_path(list_file)]
    maps = ["-map", "0:v:0"]
    metadata: list[str] = []
    inputs = 1
    if audio is not None:
        args += ["-i", media.input_path(audio)]
        maps += ["-map", f"{inputs}:a"]
        for n, track in enumerate(probe["audio"]):
            if track.get("language"):
                metadata += [f"-metadata:s:a:{n}", f"language={track['language']}"]
        inputs += 1
    if chapters_from is not None:
        args += ["-i", media.input_path(chapters_from)]
        maps += ["-map_chapters", str(inputs)]
        inputs += 1
    else:
        maps += ["-map_chapters", "-1"]
    if title:
        metadata += ["-metadata", f"title={title}"]
    return media.ffmpeg_args(*args, *maps, "-map_metadata", "-1", *metadata, "-c", "copy",
                             "-f", "matroska", str(out_tmp))
