"""Encoding an upscaled shard with the user's codec: the delivery format, BT.709, shards that join by copy."""

from __future__ import annotations

from pathlib import Path

from ..frontend.colour import Colour
from ..run import media
from ..run.settings import EncoderSettings

BT709 = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"]


# x264's output depends on its thread count, which it takes from the CPUs it sees: a fixed count makes a
# shard encode to the same picture on a laptop, a cluster node or a rerun (the encode_shard rule's threads)
ENCODER_THREADS = 2


def encode_command(upscaled: Path, out_tmp: Path, encoder: EncoderSettings, colour: Colour) -> list[str]:
    """ffmpeg encoding one upscaled shard to the delivery codec, BT.709 throughout (`colour` is the source's,
    as the plan decided it); shards join by stream copy."""
    codec_args = ["-c:v", encoder.codec, "-pix_fmt", encoder.pix_fmt, "-threads", str(ENCODER_THREADS)]
    if encoder.codec in ("libx264", "libx265", "libsvtav1"):
        codec_args += ["-crf", str(encoder.crf), "-preset", str(encoder.preset)]
    if encoder.codec == "libx265":
        codec_args += ["-x265-params", "log-level=error"]
    filters = ",".join(f for f in (colour.to_bt709(), "setsar=1") if f)
    return media.ffmpeg_args(
        "-i", media.input_path(upscaled), "-map", "0:v:0", "-vf", filters,
        *codec_args, *BT709, *encoder.extra_args, "-an", "-sn", "-f", "matroska", str(out_tmp),
    )
