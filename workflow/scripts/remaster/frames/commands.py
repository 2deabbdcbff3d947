"""The ffmpeg ends of a shard's upscale: the decoder's and the encoder's argument lists, the forms an
upscaled shard is stored in, and the threads each ffmpeg gets.

The decoder gives raw RGB24 frames converted from the source's matrix and range; the encoder takes the
10-bit 4:2:0 YUV the model's device made (`yuv.py`) and stores it without converting it again.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..run import media
from ..run.errors import RemasterError
from ..run.ffv1 import ffv1_args
from .shards import Cut, cut_input_args


def _threads(threads: int | None, *, position: str) -> list[str]:
    if not threads:
        return []
    return ["-filter_threads", str(threads)] if position == "global" else ["-threads", str(threads)]


def decoder_command(path: Path, matrix: str, threads: int | None = None, *, in_range: str = "tv",
                    cut: Cut | None = None) -> list[str]:
    """ffmpeg reading a shard as raw RGB24, converting from the source's YUV matrix and range explicitly.

    `in_range` is the plan's decision ("tv" limited, "pc" full: a full-range capture read as limited
    would clip its darks and lights). `threads` caps ffmpeg's threads (None: ffmpeg's choice); the
    output is the same either way. `cut` (`shards.plan_cut`) reads only one shard's frames of the file.
    """
    before, after, first = cut_input_args(cut)
    convert = (f"scale=in_color_matrix={matrix}:in_range={in_range}:flags=bicubic+accurate_rnd+full_chroma_int,"
               "format=rgb24")
    return media.ffmpeg_args(*_threads(threads, position="global"), *_threads(threads, position="input"),
                             *before, "-i", media.input_path(path), "-map", "0:v:0",
                             "-vf", ",".join(f for f in (first, convert) if f), *after,
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")


# How an upscaled shard is stored until it is encoded (the `upscaled_form` key):
# - "compact": x264 10-bit 4:2:0, CRF 4, preset superfast: about a quarter of FFV1's bytes, >= 50 dB PSNR
#   to the lossless form (tests/frames/test_engine.py measures it on a real model's output; docs/benchmarks.md);
#   x264's output depends on its thread count, so it runs on a fixed count (the same shard on a laptop, a
#   cluster node or a rerun is the same file).
# - "lossless": FFV1 10-bit 4:2:0, every 10-bit code the conversion on the device gave.
UPSCALED_FORMS = ("compact", "lossless")
COMPACT_THREADS = 4  # the upscale_shard rule's threads
COMPACT = ("-c:v", "libx264", "-preset", "superfast", "-crf", "4", "-x264-params", "log-level=error")


def encoder_command(path: Path, width: int, height: int, fps: str, threads: int | None = None, *,
                    form: str) -> list[str]:
    """ffmpeg storing raw 10-bit 4:2:0 BT.709 frames (yuv420p10le, converted on the model's device by
    `yuv.rgb_to_yuv420p10`) in Matroska, in `form`; no conversion in ffmpeg."""
    if form not in UPSCALED_FORMS:
        raise RemasterError(f"upscaled_form: {form!r} is not one of {', '.join(UPSCALED_FORMS)}")
    if form == "compact":
        codec, coder_threads = [*COMPACT, "-threads", str(threads or COMPACT_THREADS)], []
    else:
        codec, coder_threads = ffv1_args(16), _threads(threads or writer_threads(), position="output")
    return media.ffmpeg_args(
        # the tags describe the input: as output options FFmpeg >= 7 would convert untagged frames to them
        "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", f"{width}x{height}", "-framerate", fps,
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-i", "pipe:0",
        *codec, "-pix_fmt", "yuv420p10le", *coder_threads, "-f", "matroska", str(path),
    )


def writer_threads(jobs_per_device: int = 1) -> int:
    """Threads for a lossless shard writer: this job's share of the cores it may run on (FFV1 encodes its
    16 slices in parallel), leaving one core to the decoder and the model's feeding threads."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(16, cores // max(1, jobs_per_device) - 1))
