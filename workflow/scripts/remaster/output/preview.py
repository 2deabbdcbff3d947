"""Before/after previews: the model chain on a handful of frames spread over the title, in minutes.

Each still puts the source scaled to the output size with plain bicubic (what a player would show) beside
remaster's result, pixel for pixel (no resampling to the display aspect, so detail is compared as made).
An animated PNG flips between the two over a crop of every still; browsers and the report animate it.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..disc.probe import Probe
from ..frontend.plan import Plan
from ..run import media
from ..run.errors import RemasterError
from ..run.files import atomic_output
from ..run.settings import UpscaleSettings

FLIP_SIZE = (480, 360)  # the animation's crop, in output pixels
FLIP_STILLS = 3  # stills in the animation: it stays small enough to embed in the report
FLIP_MS = 900
GAP = 8  # pixels between before and after


def preview_frames(frame_count: int, stills: int) -> list[int]:
    """Frame numbers spread evenly over the title, in the middle of each of `stills` equal stretches."""
    if frame_count < 1:
        raise RemasterError("the title has no frames to preview")
    return [min(frame_count - 1, int((k + 0.5) * frame_count / stills)) for k in range(stills)]


SEEK_BACK = 5.0  # seconds: seek this far before the frame, then decode up to it (seeking lands on keyframes)


def read_frame(title: Path, timestamp: float, probe: Probe, plan: Plan) -> np.ndarray:
    """The frame shown at `timestamp` (a probe timestamp) as RGB24, as the models get it: through the plan's
    filters (field matching or deinterlacing, crop, square pixels), read with the plan's colour.

    Seeks a few seconds before the frame and selects it by its timestamp, so a preview of a long film takes
    seconds per frame; if the seek overshoots (some program streams seek badly), decodes from the start.
    """
    fps = media.fraction(probe.video.fps)
    # a quarter frame early, so rounding never skips the frame itself
    wanted = timestamp - float(1 / fps) / 4
    colour = plan.colour
    convert = (f"scale=in_color_matrix={colour.decoder_matrix}:in_range={colour.range}:"
               "flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24")
    select = f"select=gte(t\\,{wanted:.6f})"
    filters = ",".join(f for f in (plan.filters, select, convert) if f)
    width, height = frame_size(plan)
    size = width * height * 3
    seek = timestamp - probe.format.start_time - SEEK_BACK
    last = "no frame decoded"
    for start in ([seek, 0.0] if seek > 0 else [0.0]):
        # -copyts: the select sees the title's own timestamps, the ones frames.txt holds
        cmd = media.ffmpeg_args("-copyts", "-noaccurate_seek", *(["-ss", f"{start:.6f}"] if start else []),
                                "-i", media.input_path(title), "-map", "0:v:0", "-vf", filters, "-frames:v", "1",
                                "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
        result = subprocess.run(cmd, capture_output=True)
        if result.returncode == 0 and len(result.stdout) == size:
            return np.frombuffer(result.stdout, np.uint8).reshape(height, width, 3)
        last = (result.stderr.decode(errors="replace").strip().splitlines() or [last])[-1]
    raise RemasterError(f"{title}: cannot decode the frame at {timestamp:.3f} s as {width}x{height} ({last})")


def frame_size(plan: Plan) -> tuple[int, int]:
    """The size of the frames the models get: the plan's model input."""
    width, height = plan.model_input
    return int(width), int(height)


def _label(image: Image.Image, text: str) -> None:
    """White text on a black box in the top-left corner, sized to the picture."""
    try:
        font = ImageFont.load_default(size=max(12, image.height // 40))
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((6, 4), text, font=font)
    draw.rectangle((0, 0, box[2] + 6, box[3] + 6), fill=(0, 0, 0))
    draw.text((6, 4), text, fill=(255, 255, 255), font=font)


def side_by_side(before: Image.Image, after: Image.Image, caption: str) -> Image.Image:
    """Before (left) and after (right), labelled, with a dark gap between them."""
    width, height = after.size
    sheet = Image.new("RGB", (width * 2 + GAP, height), (32, 32, 32))
    left, right = before.copy(), after.copy()
    _label(left, f"before: bicubic  {caption}")
    _label(right, f"after: remaster  {caption}")
    sheet.paste(left, (0, 0))
    sheet.paste(right, (width + GAP, 0))
    return sheet


def centre_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    width, height = min(size[0], image.width), min(size[1], image.height)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def write_flip(pairs: list[tuple[Image.Image, Image.Image]], path: Path) -> None:
    """An animated PNG: for a few stills spread over the set, a crop of before then after, looping."""
    step = max(1, -(-len(pairs) // FLIP_STILLS))
    frames = []
    for before, after in pairs[step // 2::step][:FLIP_STILLS]:
        for image, text in ((before, "before"), (after, "after")):
            crop = centre_crop(image, FLIP_SIZE)
            _label(crop, text)
            frames.append(crop)
    with atomic_output(path) as tmp:
        frames[0].save(tmp, format="PNG", save_all=True, append_images=frames[1:], duration=FLIP_MS, loop=0)


def make_preview(title: Path, probe: Probe, timestamps: list[float], settings: UpscaleSettings,
                 stills: list[Path], flip: Path, log: logging.Logger, *, plan: Plan,
                 threads: int = 1) -> list[dict]:
    """Write one before/after still per path in `stills` and the flip animation; return what each shows.

    The chain is loaded and run through the same run path as the shard job (per-step precision and tile,
    fast paths, proven precisions, out-of-memory recovery, a GPU claimed for the job).
    """
    import torch

    from ..models.claims import job_device
    from ..models.devices import Device
    from ..models.loading import load_chain_steps

    if threads > 0:
        torch.set_num_threads(threads)
    started = time.monotonic()
    with job_device(settings.device, log) as device:
        Device(device).activate()
        chain = load_chain_steps(list(settings.models), device=device, precision=settings.precision,
                                 tile=settings.tile, tile_overlap=settings.tile_overlap, log=log)
        return _stills(chain, title, probe, timestamps, settings, stills, flip, log, plan, started)


def still_runner(chain, size: tuple[int, int], settings: UpscaleSettings, log: logging.Logger):
    """The run path's Runner for stills: one frame at a time, 8-bit out (a picture, not the master)."""
    from ..frames.convert import to_frames8
    from ..frames.runner import Runner

    return Runner(chain, size, batch_size=1, tile=settings.tile, overlap=settings.tile_overlap, log=log,
                  label="preview", finish=to_frames8)


def upscale_still(runner, frame: np.ndarray) -> np.ndarray:
    """One RGB24 frame (h, w, 3) through the runner: the upscaled RGB24 frame."""
    import torch

    with torch.inference_mode():
        tensor = torch.from_numpy(np.ascontiguousarray(frame)).unsqueeze(0).to(runner.chain.device)
        ((result, _),) = runner.run(tensor, 1)
    return result[0].cpu().numpy()


def _stills(chain, title: Path, probe: Probe, timestamps: list[float], settings: UpscaleSettings, stills: list[Path],
            flip: Path, log: logging.Logger, plan: Plan, started: float) -> list[dict]:
    from ..frames.yuv import even

    width, height = frame_size(plan)
    scale = settings.scale or chain.scale
    out_w, out_h = even(width * scale), even(height * scale)
    fps = media.fraction(probe.video.fps)
    chosen = preview_frames(len(timestamps), len(stills))
    log.info("preview: %d frames of %d, %dx%d → %dx%d on %s", len(chosen), len(timestamps), width, height,
             out_w, out_h, chain.device)
    runner = still_runner(chain, (out_h, out_w), settings, log)
    pairs, shown = [], []
    for path, index in zip(stills, chosen):
        frame = read_frame(title, timestamps[index], probe, plan)
        after = Image.fromarray(upscale_still(runner, frame))
        before = Image.fromarray(frame).resize((out_w, out_h), Image.BICUBIC)
        seconds = float(index / fps)
        caption = f"frame {index} ({int(seconds // 60)}:{seconds % 60:05.2f})"
        with atomic_output(Path(path)) as tmp:
            side_by_side(before, after, caption).save(tmp, format="PNG")
        pairs.append((before, after))
        shown.append({"still": Path(path).name, "frame": index, "time": round(seconds, 3)})
        log.info("preview: %s is frame %d at %.2f s", Path(path).name, index, seconds)
    write_flip(pairs, Path(flip))
    log.info("preview: done in %.1f s", time.monotonic() - started)
    return shown
