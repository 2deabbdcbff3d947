"""Encoding an upscaled shard with the user's codec: the delivery format, BT.709, shards that join by copy."""

from __future__ import annotations

from pathlib import Path

from ..run import media
from ..run.settings import EncoderSettings

BT709 = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"]


def colour_filter(colour_in: dict) -> str | None:
    """The upscaled shards hold BT.709-matrix YUV in the source's primaries and transfer: convert those once.

    None when the source already is BT.709 (an HD source); SD sources get SMPTE-170M or BT.470BG → BT.709.
    """
    primaries, trc = colour_in.get("color_primaries", "bt709"), colour_in.get("color_trc", "bt709")
    if primaries == "bt709" and trc == "bt709":
        return None
    return (f"colorspace=space=bt709:primaries=bt709:trc=bt709:range=tv:ispace=bt709:iprimaries={primaries}"
            f":itrc={trc}:irange=tv")


# x264's output depends on its thread count, which it takes from the CPUs it sees: a fixed count makes a
# shard encode to the same picture on a laptop, a cluster node or a rerun (the encode_shard rule's threads)
ENCODER_THREADS = 2


def encode_command(upscaled: Path, out_tmp: Path, encoder: EncoderSettings, colour_in: dict) -> list[str]:
    """ffmpeg encoding one lossless upscaled shard to the delivery codec; shards join by stream copy."""
    codec_args = ["-c:v", encoder.codec, "-pix_fmt", encoder.pix_fmt, "-threads", str(ENCODER_THREADS)]
    if encoder.codec in ("libx264", "libx265", "libsvtav1"):
        codec_args += ["-crf", str(encoder.crf), "-preset", str(encoder.preset)]
    if encoder.codec == "libx265":
        codec_args += ["-x265-params", "log-level=error"]
    filters = ",".join(f for f in (colour_filter(colour_in), "setsar=1") if f)
    return media.ffmpeg_args(
        "-i", media.input_path(upscaled), "-map", "0:v:0", "-vf", filters,
        *codec_args, *BT709, *encoder.extra_args, "-an", "-sn", "-f", "matroska", str(out_tmp),
    )
