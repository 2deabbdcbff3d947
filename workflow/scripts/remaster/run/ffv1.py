"""The lossless intermediate's encoder options, in one place (prepared title, cut shards, upscaled shards).

FFV1 level 3, every frame a keyframe (`-g 1`: a shard is cut from any frame by stream copy), sliced for
threads, with a CRC per slice so a damaged file is noticed on decode. Built with ffmpeg-python, which
turns keyword options into an argument list (never a shell string).
"""

from __future__ import annotations

import ffmpeg

_INPUT, _OUTPUT = "pipe:0", "pipe:1"


def ffv1_args(slices: int, *, crc: bool = True) -> list[str]:
    """`-c:v ffv1 -g 1 -level 3 -slices N [-slicecrc 1]`: the options, without input or output."""
    options = {"c:v": "ffv1", "level": 3, "g": 1, "slices": slices}
    if crc:
        options["slicecrc"] = 1
    args = ffmpeg.input(_INPUT).output(_OUTPUT, **options).get_args()
    # get_args() is [-i, input, options..., output]: keep the options only
    return args[2:-1]
