"""The streaming upscale of one shard: decode → model chain → encode, concurrently, never losing a frame.

A reader thread pulls raw RGB frames from an ffmpeg decoder into a bounded queue, the main thread runs
the model chain on batches, and a writer thread feeds an ffmpeg encoder, so the model never waits on
disk. Frames are counted at every hand-off and the finished file is counted again before it is renamed
into place.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import media
from .errors import RemasterError
from .models import Chain, load_chain
from .settings import UpscaleSettings
from .shards import partial_path

_END = object()


@dataclass(frozen=True)
class ShardResult:
    frames: int
    seconds: float
    width: int
    height: int
    device: str
    dtype: str

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class Progress:
    """Logs frames done / total, fps and ETA at most every `interval` seconds."""

    def __init__(self, label: str, total: int, log: logging.Logger, interval: float = 5.0):
        self.label, self.total, self.log, self.interval = label, total, log, interval
        self.start = self.last = time.monotonic()
        self.done = 0

    def advance(self, frames: int) -> None:
        self.done += frames
        now = time.monotonic()
        if now - self.last >= self.interval or self.done == self.total:
            self.last = now
            elapsed = now - self.start
            fps = self.done / elapsed if elapsed else 0.0
            eta = (self.total - self.done) / fps if fps else float("inf")
            self.log.info(
                "%s: %d/%d frames, %.2f fps, ETA %s", self.label, self.done, self.total, fps, _duration(eta)
            )


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


def even(value: float) -> int:
    """Nearest even integer ≥ 2: 4:2:0 video needs even sizes."""
    return max(2, int(round(value / 2)) * 2)


def decoder_command(path: Path, matrix: str) -> list[str]:
    """ffmpeg reading a shard as raw RGB24, converting from the source's YUV matrix explicitly."""
    convert = f"scale=in_color_matrix={matrix}:in_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24"
    return media.ffmpeg_args("-i", media.input_path(path), "-map", "0:v:0", "-vf", convert,
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")


def encoder_command(path: Path, width: int, height: int, fps: str) -> list[str]:
    """ffmpeg storing raw RGB24 frames losslessly (FFV1, 10-bit 4:2:0, BT.709) in a Matroska shard."""
    convert = "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,format=yuv420p10le"
    return media.ffmpeg_args(
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", fps, "-i", "pipe:0",
        "-vf", convert, "-c:v", "ffv1", "-level", "3", "-g", "1", "-slices", "16", "-slicecrc", "1",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-f", "matroska", str(path),
    )


def _tiles(length: int, tile: int) -> list[int]:
    return list(range(0, max(length - tile, 0) + 1, tile)) + ([length - tile] if length > tile and length % tile else [])


def run_tiled(chain: Chain, batch: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """Run the chain over overlapping tiles and keep each tile's centre, so seams never show."""
    _, channels, height, width = batch.shape
    scale = chain.scale
    out = None
    tile_h, tile_w = min(tile, height), min(tile, width)
    for top in _tiles(height, tile_h):
        for left in _tiles(width, tile_w):
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1, x1 = min(top + tile_h + overlap, height), min(left + tile_w + overlap, width)
            result = chain(batch[:, :, y0:y1, x0:x1])
            if out is None:
                out = torch.empty((batch.shape[0], result.shape[1], height * scale, width * scale),
                                  dtype=result.dtype, device=result.device)
            inner_y, inner_x = (top - y0) * scale, (left - x0) * scale
            out[:, :, top * scale:(top + tile_h) * scale, left * scale:(left + tile_w) * scale] = result[
                :, :, inner_y:inner_y + tile_h * scale, inner_x:inner_x + tile_w * scale]
    return out


def process(chain: Chain, frames: torch.Tensor, size: tuple[int, int], tile: int, overlap: int) -> torch.Tensor:
    """uint8 NHWC frames in, uint8 NHWC frames of `size` (h, w) out, on the chain's device."""
    batch = frames.permute(0, 3, 1, 2).to(chain.dtype).div_(255).contiguous(memory_format=torch.channels_last)
    result = run_tiled(chain, batch, tile, overlap) if tile else chain(batch)
    if tuple(result.shape[-2:]) != size:
        # the chain overshoots the asked scale (a ×4 model on a ×2 job): resize once, with antialiasing
        result = F.interpolate(result.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
    return result.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _reader(proc: subprocess.Popen, frame_bytes: int, shape: tuple[int, int, int], out: queue.Queue,
            pin: bool, errors: list) -> None:
    try:
        while True:
            data = proc.stdout.read(frame_bytes)
            if not data:
                break
            if len(data) != frame_bytes:
                raise RemasterError(f"decoder gave a partial frame ({len(data)} of {frame_bytes} bytes)")
            frame = torch.from_numpy(np.frombuffer(data, dtype=np.uint8).reshape(shape))
            out.put(frame.pin_memory() if pin else frame)
    except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
        errors.append(error)
    finally:
        out.put(_END)


def _writer(proc: subprocess.Popen, frames: queue.Queue, errors: list, written: list) -> None:
    try:
        while (item := frames.get()) is not _END:
            proc.stdin.write(item.numpy().tobytes())
            written[0] += 1
    except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
        errors.append(error)
        while frames.get() is not _END:  # keep draining so the producer never blocks
            pass
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass


def default_batch(chain: Chain) -> int:
    return 1 if chain.device.type == "cpu" else 4


def upscale_file(in_path: Path, out_path: Path, *, expected_frames: int, fps: str, matrix: str,
                 settings: UpscaleSettings, label: str, log: logging.Logger, threads: int = 1) -> ShardResult:
    """Upscale every frame of `in_path` into `out_path` (written under a temporary name, renamed when whole).

    Raises RemasterError, leaving no file at `out_path`, if any frame is missing or extra.
    """
    if threads > 0:
        torch.set_num_threads(threads)
    stream = media.ffprobe_json(in_path, "-select_streams", "v:0")["streams"][0]
    width, height = int(stream["width"]), int(stream["height"])
    chain = load_chain([step.path for step in settings.models], device=settings.device, precision=settings.precision)
    scale = settings.scale or chain.scale
    out_w, out_h = even(width * scale), even(height * scale)
    log.info("%s: %d frames %dx%d → %dx%d, chain ×%d (%s) on %s at %s", label, expected_frames, width, height,
             out_w, out_h, chain.scale, " → ".join(s.architecture.name for s in chain.steps), chain.device,
             str(chain.dtype).removeprefix("torch."))

    tmp = partial_path(out_path)
    tmp.unlink(missing_ok=True)
    decoder = subprocess.Popen(decoder_command(in_path, matrix), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    encoder = subprocess.Popen(encoder_command(tmp, out_w, out_h, fps), stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    errors: list = []
    written = [0]
    inbox: queue.Queue = queue.Queue(maxsize=settings.queue_frames)
    outbox: queue.Queue = queue.Queue(maxsize=settings.queue_frames)
    pin = chain.device.type == "cuda"
    reader = threading.Thread(target=_reader, args=(decoder, width * height * 3, (height, width, 3), inbox, pin, errors), daemon=True)
    writer = threading.Thread(target=_writer, args=(encoder, outbox, errors, written), daemon=True)
    reader.start()
    writer.start()

    batch_size = settings.batch_size or default_batch(chain)
    tile = settings.tile
    progress = Progress(label, expected_frames, log)
    read = 0
    start = time.monotonic()
    pending: list[torch.Tensor] = []
    finished = False
    try:
        with torch.inference_mode():
            while not finished or pending:
                while not finished and len(pending) < batch_size:
                    item = inbox.get()
                    if item is _END:
                        finished = True
                    else:
                        pending.append(item)
                        read += 1
                if errors:
                    raise errors[0]
                if not pending:
                    break
                frames = torch.stack(pending[:batch_size]).to(chain.device, non_blocking=True)
                try:
                    result = process(chain, frames, (out_h, out_w), tile, settings.tile_overlap)
                except torch.OutOfMemoryError:
                    # shrink the batch, then the tile, and redo the same frames: never skip one
                    del frames
                    torch.cuda.empty_cache()
                    if batch_size > 1:
                        batch_size //= 2
                    elif (tile or max(width, height)) // 2 >= max(chain.min_size, 32):
                        tile = (tile or max(width, height)) // 2
                    else:
                        raise RemasterError(f"{in_path}: out of GPU memory even at batch 1 and tile {tile}") from None
                    log.warning("%s: out of memory; retrying at batch %d, tile %d", label, batch_size, tile)
                    continue
                host = result.cpu()
                for frame in host:
                    outbox.put(frame)
                done = len(host)
                del pending[:done]
                progress.advance(done)
    finally:
        outbox.put(_END)
        writer.join()
        decoder.stdout.close()
        decoder_rc = decoder.wait()
        encoder_rc = encoder.wait()
        reader.join(timeout=5)
    if errors:
        raise errors[0]
    if decoder_rc != 0:
        raise RemasterError(f"{in_path}: decoding failed: {decoder.stderr.read().decode(errors='replace').strip()[-300:]}")
    if encoder_rc != 0:
        raise RemasterError(f"{out_path}: encoding failed: {encoder.stderr.read().decode(errors='replace').strip()[-300:]}")
    stored = media.count_packets(tmp)
    if not (read == written[0] == stored == expected_frames):
        tmp.unlink(missing_ok=True)
        raise RemasterError(f"{in_path}: frame count mismatch (expected {expected_frames}, read {read}, "
                            f"written {written[0]}, stored {stored}); the shard was not kept")
    os.replace(tmp, out_path)
    seconds = time.monotonic() - start
    result = ShardResult(expected_frames, seconds, out_w, out_h, str(chain.device), str(chain.dtype).removeprefix("torch."))
    log.info("%s: done, %d frames in %s (%.2f fps)", label, result.frames, _duration(seconds), result.fps)
    return result
