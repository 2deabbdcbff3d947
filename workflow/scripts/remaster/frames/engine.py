"""The streaming upscale of one shard: decode → model chain → encode, concurrently, never losing a frame.

Three threads and two ffmpeg processes run at once, so the model never waits on disk:

- the reader thread reads raw RGB frames from an ffmpeg decoder straight into a small pool of batch-sized
  host buffers (pinned on a GPU, so the host→GPU copy is asynchronous);
- the main thread copies a batch to the device as uint8, converts it there, runs the model chain, converts
  the float result to the shard's 10-bit 4:2:0 YUV there (`yuv.py`), and queues the copy back to pinned host memory on a separate stream
  of the job's own device, recording an event on that stream instead of waiting for it;
- the writer thread waits for that event and writes the buffer to an ffmpeg encoder without copying it.

The model's float output becomes the shard's 10-bit codes in one step, on the device: no 8-bit rounding in
between, so smooth gradients the model makes keep their in-between levels (docs/benchmarks.md measures it),
half rgb48's bytes through the pipe, and no swscale in the writer.

`Runner` is the one run path for a loaded chain: batch size and tile (from the config, or on a GPU from
free memory measured with a one-frame probe), and out-of-memory recovery — the batch, then the tile,
shrinks and the same frames are redone — around the conversions and the chain alike. The shard job,
preview and the benchmark all run frames through it. Frames are counted at every hand-off and the
finished file is counted again before it is renamed into place.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..models import fastpaths
from ..models.claims import job_device
from ..models.devices import Device, describe, is_out_of_memory
from ..models.loading import Chain, all_finite, load_chain_steps, run_tiled  # noqa: F401 - run_tiled: the engine API tests use
from ..run import media
from ..run.errors import RemasterError
from ..run.ffv1 import ffv1_args
from ..run.files import partial_path
from ..run.logs import Progress, duration
from ..run.pipes import read_into, stderr_tail, widen_pipe
from ..run.records import ShardResult
from ..run.settings import UpscaleSettings
from .shards import cut_input_args
from .temporal import for_shard as temporal_stage
from .yuv import frame_words, host_rgb_to_yuv420p10, rgb_to_yuv420p10

_END = object()
MOST_BATCH = 16  # beyond this a bigger batch buys no speed, only latency and memory
MEMORY_FRACTION = 0.8  # of the free GPU memory a batch may plan to use; the rest is headroom
OUTPUT_MAX = 65535  # 16-bit RGB frames (`to_frames`: the memory probe and tests)


def even(value: float) -> int:
    """Nearest even integer ≥ 2: 4:2:0 video needs even sizes."""
    return max(2, int(round(value / 2)) * 2)


def _threads(threads: int | None, *, position: str) -> list[str]:
    if not threads:
        return []
    return ["-filter_threads", str(threads)] if position == "global" else ["-threads", str(threads)]


def decoder_command(path: Path, matrix: str, threads: int | None = None, *, in_range: str = "tv",
                    cut: dict | None = None) -> list[str]:
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
#   to the lossless form (tests/test_engine.py measures it on a real model's output; docs/benchmarks.md);
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


def to_model(frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 NHWC frames → NCHW channels-last `dtype` in [0, 1], on the frames' device."""
    # NHWC permuted to NCHW is already channels-last in memory: the conversion copies nothing twice
    return frames.permute(0, 3, 1, 2).to(dtype).div_(255).contiguous(memory_format=torch.channels_last)


def run_chain(chain, batch: torch.Tensor, size: tuple[int, int], tile: int, overlap: int) -> torch.Tensor:
    """The chain over a float batch (its tileable steps tiled when `tile`), resized to `size` (h, w) if the
    chain overshoots."""
    result = chain(batch, tile=tile, overlap=overlap)
    if tuple(result.shape[-2:]) != size:
        # the chain overshoots the asked scale (a ×4 model on a ×2 job): resize once, with antialiasing
        result = F.interpolate(result.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
    return result


def to_frames(result: torch.Tensor) -> torch.Tensor:
    """NCHW float in [0, 1] → 16-bit NHWC frames (rounded half to even), on the result's device."""
    values = result.float() if result.dtype != torch.float32 else result
    return values.clamp(0, 1).mul_(OUTPUT_MAX).round_().to(torch.uint16).permute(0, 2, 3, 1).contiguous()


def to_frames8(result: torch.Tensor) -> torch.Tensor:
    """NCHW float in [0, 1] → uint8 NHWC frames, for pictures (previews), not for the master."""
    values = result.float() if result.dtype != torch.float32 else result
    return values.clamp(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def process(chain, frames: torch.Tensor, size: tuple[int, int], tile: int, overlap: int) -> torch.Tensor:
    """uint8 NHWC frames in, 16-bit NHWC frames of `size` (h, w) out, on the chain's device."""
    return to_frames(run_chain(chain, to_model(frames, chain.dtype), size, tile, overlap))


# On the CPU the conversions run in numpy in the reader and writer threads: single-threaded, beside the
# model, instead of as small parallel regions between its layers (each a stall when cores are contended).
def host_to_model(frames: np.ndarray) -> torch.Tensor:
    """uint8 NHWC frames → float32 NCHW channels-last in [0, 1] (what `to_model` gives, in numpy)."""
    return torch.from_numpy(np.divide(frames, np.float32(255), dtype=np.float32)).permute(0, 3, 1, 2)


def host_to_yuv(result: torch.Tensor) -> np.ndarray:
    """CPU NCHW float in [0, 1] → yuv420p10le words, the values `rgb_to_yuv420p10` gives on a device (numpy,
    single-threaded: torch's parallel regions here would stall on the cores the model holds)."""
    return host_rgb_to_yuv420p10(result.float().numpy())


class CompiledChain:
    """A chain whose forward runs through `torch.compile`; same attributes, same outputs to fp tolerance."""

    compiled = True

    def __init__(self, chain: Chain):
        self.chain = chain
        # the checks stay outside the compiled graph: a data-dependent branch would break it; static shapes:
        # one graph for the shard's one batch shape (the memory probe runs the plain chain, not this)
        self.forward = torch.compile(chain.forward, dynamic=False)

    steps = property(lambda self: self.chain.steps)
    device = property(lambda self: self.chain.device)
    dtype = property(lambda self: self.chain.dtype)
    scale = property(lambda self: self.chain.scale)
    min_size = property(lambda self: self.chain.min_size)

    def __call__(self, batch: torch.Tensor, tile: int = 0, overlap: int = 16) -> torch.Tensor:
        out = self.forward(batch, tile=tile, overlap=overlap)
        # inf/NaN: the batch again through the plain chain, a failing half step at fp32 (Chain.recover)
        return out if all_finite(out) else self.chain.recover(batch, tile, overlap)


# what torch.compile's errors say when the machine cannot build its kernels (no C++ compiler for the CPU's,
# no Triton or no CUDA compiler for the GPU's)
_NO_COMPILER = ("InvalidCxxCompiler", "No working C++ compiler", "Cannot find a working triton", "CppCompileError",
                "ptxas", "No module named 'triton'", "Python.h: No such file")


def compiler_missing(error: BaseException) -> str | None:
    """The one-line reason when `error` is torch.compile failing to build kernels on this machine, else None."""
    text = f"{type(error).__name__}: {error}"
    if not any(mark in text for mark in _NO_COMPILER):
        return None
    first = next((line.strip() for line in str(error).splitlines() if any(m in line for m in _NO_COMPILER)),
                 text.splitlines()[0])
    return " ".join(first.split())[:200]


def _user_compile_cache() -> str | None:
    """$TORCHINDUCTOR_CACHE_DIR as the user set it (Inductor writes its own default there once it runs)."""
    value = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # a torch without this layout: any value counts as the user's
        return value
    return value if value and os.path.abspath(value) != os.path.abspath(default_cache_dir()) else None


@contextmanager
def compile_cache(folder: Path | None):
    """torch.compile's kernels (Inductor's FX graph cache, Triton's binaries) kept in `folder`, so the next
    shard's job, a new process, loads them instead of compiling again (Inductor's default, a folder in /tmp,
    is private to one node, often to one cluster job). A $TORCHINDUCTOR_CACHE_DIR of the user's wins."""
    if folder is None or _user_compile_cache():
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(folder).absolute())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def chain_name(chain) -> str:
    return " → ".join(str(getattr(getattr(step, "architecture", None), "name", type(step).__name__))
                      for step in chain.steps)


def prepare_chain(chain, *, compile: bool, log: logging.Logger):
    """The chain as the engine runs it: known slow paths patched (in place), compiled if asked.

    Calling it again on its own result changes nothing, so a caller may prepare a chain once and reuse it.
    """
    for patch in fastpaths.apply(chain):
        log.info("fast path: %s", patch)
    if compile and not getattr(chain, "compiled", False):
        return CompiledChain(chain)
    return chain


def batch_for_memory(free_bytes: int, frame_bytes: int, *, most: int = MOST_BATCH) -> int:
    """Frames per batch that fit in MEMORY_FRACTION of `free_bytes` when one frame needs `frame_bytes`."""
    return max(1, min(most, int(free_bytes * MEMORY_FRACTION // max(frame_bytes, 1))))


def tile_for_memory(free_bytes: int, pixel_bytes: float, overlap: int, *, least: int = 32) -> int:
    """The largest tile (a multiple of 16 source pixels) whose overlapped square fits in the free memory."""
    side = int(math.sqrt(free_bytes * MEMORY_FRACTION / max(pixel_bytes, 1e-9))) - 2 * overlap
    return max(least, side // 16 * 16)


class Runner:
    """The one run path for a loaded chain: batching, tiling and out-of-memory recovery on one device.

    `run` takes a batch of frames (uint8 NHWC on the device, or float NCHW already converted on the host)
    and gives converted results batch by batch; an out-of-memory anywhere in the conversion, the chain or
    the conversion back (torch's own or a cuDNN/cuBLAS allocation failure) halves the batch, then the tile,
    and redoes the same frames, never skipping one. Any other failure of a step is a one-line error.
    """

    def __init__(self, chain, size: tuple[int, int], *, batch_size: int, tile: int, overlap: int,
                 log: logging.Logger, label: str, finish=None, pad_to_batch: bool = False):
        self.chain, self.size = chain, size
        self.batch_size, self.tile, self.overlap = batch_size, tile, overlap
        self.log, self.label = log, label
        self.kit = Device(chain.device)
        self.finish = finish  # float result → what the caller keeps (None: the float result itself)
        self.pad_to_batch = pad_to_batch  # a compiled chain sees one batch shape only

    def _once(self, part: torch.Tensor, take: int) -> torch.Tensor:
        batch = part if part.is_floating_point() else to_model(part, self.chain.dtype)
        if batch.dtype != self.chain.dtype:
            batch = batch.to(self.chain.dtype)
        if self.pad_to_batch:
            batch = _padded(batch, self.batch_size)
        result = run_chain(self.chain, batch, self.size, self.tile, self.overlap)[:take]
        return self.finish(result) if self.finish is not None else result

    def _shrink(self, height: int, width: int, reason: str) -> None:
        self.kit.empty_cache()
        if self.batch_size > 1:
            self.batch_size //= 2
        elif (self.tile or max(width, height)) // 2 >= max(self.chain.min_size, 32):
            self.tile = (self.tile or max(width, height)) // 2
        else:
            raise RemasterError(f"{self.label}: out of GPU memory on {self.kit} even at batch 1 and tile "
                                f"{self.tile} ({reason}); free GPU memory or set a smaller tile")
        self.log.warning("%s: out of memory; retrying at batch %d, tile %d", self.label, self.batch_size, self.tile)

    def run(self, frames: torch.Tensor, count: int):
        """Yield (result, frames in it) for the first `count` frames, in order, each frame exactly once."""
        height, width = (frames.shape[1:3] if not frames.is_floating_point() else frames.shape[2:4])
        done = 0
        while done < count:
            take = min(self.batch_size, count - done)
            reason = None
            try:
                out = self._once(frames[done:done + take], take)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else "out of memory"
            if reason is not None:  # outside the handler: the failed attempt's tensors are freed by now
                self._shrink(height, width, reason)
                continue
            yield out, take
            done += take


def _peak_bytes(chain, kit: Device, shape: tuple[int, int], size: tuple[int, int], tile: int, overlap: int) -> int:
    """Device memory one frame takes through `process` (inputs, activations, outputs), measured."""
    kit.synchronize()
    kit.reset_peak()
    base = kit.allocated()
    frames = torch.zeros((1, *shape, 3), dtype=torch.uint8, device=chain.device)
    process(chain, frames, size, tile, overlap)
    del frames
    kit.synchronize()
    return max(kit.peak() - base, 1)


def _measure(chain, kit: Device, shape, size, tile: int, overlap: int) -> int | None:
    """`_peak_bytes`, or None when the probe itself runs out of memory (its tensors freed before return)."""
    failed = False
    try:
        return _peak_bytes(chain, kit, shape, size, tile, overlap)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        failed = True
    if failed:  # outside the handler, so the traceback no longer holds the failed probe's activations
        kit.empty_cache()
    return None


def plan_memory(chain, shape: tuple[int, int], size: tuple[int, int], settings: UpscaleSettings,
                log: logging.Logger) -> tuple[int, int]:
    """(batch size, tile) for a GPU: the config's when given, else what the free memory holds."""
    batch, tile, overlap = settings.batch_size, settings.tile, settings.tile_overlap
    kit = Device(chain.device)
    if batch is not None or not kit.can_measure():
        return batch or default_batch(chain), tile
    free, total = kit.memory()
    frame_bytes = _measure(chain, kit, shape, size, tile, overlap)
    if frame_bytes is None:
        # a whole frame does not fit: measure a small tile and take the biggest tile the memory holds
        probe = max(64, chain.min_size)
        probe_bytes = _measure(chain, kit, shape, size, probe, overlap)
        if probe_bytes is None:
            raise RemasterError(f"out of GPU memory on {kit} even for one {probe}-pixel tile of {chain_name(chain)} "
                                f"({free / 2**30:.1f} GiB free); free GPU memory or use a smaller model")
        pixel_bytes = probe_bytes / (probe + 2 * overlap) ** 2
        tile = tile_for_memory(free, pixel_bytes, overlap, least=max(32, chain.min_size))
        frame_bytes = int(pixel_bytes * (tile + 2 * overlap) ** 2)
    kit.empty_cache()
    batch = batch_for_memory(free, frame_bytes)
    log.info("GPU memory on %s: %.1f of %.1f GiB free, %.0f MiB per frame → batch %d, tile %s", kit, free / 2**30,
             total / 2**30, frame_bytes / 2**20, batch, tile or "none")
    return batch, tile


def _reader(proc: subprocess.Popen, frame_bytes: int, free: queue.Queue, inbox: queue.Queue, errors: list,
            read: list, convert: bool) -> None:
    """Fill free host buffers with whole frames from the decoder; (frames, count) go to the inbox.

    With `convert` (the CPU) the frames go as float batches and the buffer is refilled at once; else the
    uint8 buffer itself goes, and comes back through `free` with the event after which it may be refilled.
    """
    try:
        while (slot := free.get()) is not None:
            buffer, reusable = slot
            if reusable is not None:
                reusable.synchronize()  # the previous host→GPU copy out of this buffer has finished
            got = read_into(proc.stdout, memoryview(buffer.numpy()).cast("B"))
            if got % frame_bytes:
                raise RemasterError(f"decoder gave a partial frame ({got % frame_bytes} of {frame_bytes} bytes)")
            count = got // frame_bytes
            if count:
                read[0] += count
                inbox.put((host_to_model(buffer[:count].numpy()), count) if convert else (buffer, count))
            if convert:
                free.put((buffer, None))
            if got < buffer.numel():
                break
    except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
        errors.append(error)
    finally:
        inbox.put(_END)


def _writer(proc: subprocess.Popen, outbox: queue.Queue, errors: list, written: list) -> None:
    """Write (frames, count, ready event, pool) items to the encoder; hand pooled buffers back."""
    failed = False
    while (item := outbox.get()) is not _END:
        frames, count, ready, pool = item
        try:
            if not failed:
                if ready is not None:
                    ready.synchronize()  # the GPU→host copy into this pinned buffer has landed
                data = frames[:count].numpy() if frames.dtype == torch.uint16 else host_to_yuv(frames[:count])
                proc.stdin.write(memoryview(data).cast("B"))
                written[0] += count
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
            errors.append(error)
            failed = True  # keep draining, so the main thread never blocks on a full queue
        finally:
            if pool is not None:
                pool.put(frames)
    try:
        proc.stdin.close()
    except OSError:
        pass


class _Sender:
    """Hands the runner's results to the writer: on the CPU as float (the writer converts them), on a
    device with streams as yuv420p10le frames copied into pinned buffers on a copy stream of that device,
    on one without (MPS) as yuv420p10le frames copied to the host at once."""

    def __init__(self, kit: Device, shape: tuple[int, ...], slots: int, outbox: queue.Queue):
        self.kit, self.outbox = kit, outbox
        if kit.has_streams:
            self.stream = kit.new_stream()
            self.pool: queue.Queue = queue.Queue()
            for _ in range(slots):
                self.pool.put(torch.empty(shape, dtype=torch.uint16, pin_memory=True))

    def send(self, frames: torch.Tensor, count: int) -> None:
        """`frames`: the runner's output (float on the CPU, (N, words) yuv420p10le on a device)."""
        if self.kit.kind == "cpu":
            self.outbox.put((frames, count, None, None))
            return
        if not self.kit.has_streams:
            self.outbox.put((frames.cpu(), count, None, None))
            return
        host = self.pool.get()  # waits while the writer is behind: the GPU runs at most `slots` ahead
        self.stream.wait_stream(self.kit.current_stream())
        with self.kit.stream_context(self.stream):
            host[:count].copy_(frames, non_blocking=True)
        ready = self.kit.record(self.stream)  # on the copy stream of this job's device
        frames.record_stream(self.stream)  # its memory is not reused before the copy has read it
        self.outbox.put((host, count, ready, self.pool))


def default_batch(chain) -> int:
    return 1 if chain.device.type == "cpu" else 4


def _padded(frames: torch.Tensor, size: int) -> torch.Tensor:
    """The batch repeated at its last frame up to `size`, so a compiled model sees one shape only."""
    missing = size - len(frames)
    return torch.cat([frames, frames[-1:].expand(missing, *frames.shape[1:])]) if missing > 0 else frames


def check_disk_space(out_path: Path, pixels: int, label: str) -> None:
    """Refuse to start a shard the disk cannot hold (FFV1 10-bit 4:2:0 stores ~0.6 byte/pixel; 1 counted).

    $REMASTER_MIN_FREE_BYTES, when set, replaces the estimate as the free space a shard needs.
    """
    needed = int(os.environ.get("REMASTER_MIN_FREE_BYTES") or pixels)
    folder = Path(out_path).absolute().parent
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise RemasterError(f"{folder}: not enough disk space for {label} ({free / 1e9:.1f} GB free, about "
                            f"{needed / 1e9:.1f} GB needed); free some space and run the same command again")


def upscale_file(in_path: Path, out_path: Path, *, expected_frames: int, fps: str, matrix: str,
                 settings: UpscaleSettings, label: str, log: logging.Logger, threads: int = 1,
                 chain=None, in_range: str = "tv", cut: dict | None = None,
                 compile_cache_dir: Path | None = None) -> ShardResult:
    """Upscale every frame of `in_path` (or, with `cut`, one shard's frames of it: `shards.plan_cut`) into
    `out_path` (written under a temporary name, renamed when whole).

    `chain` is an already loaded (or prepared) chain to use instead of loading `settings.models`; without
    one, the job claims a GPU of its own (device: auto on a machine with several) for its lifetime.
    Raises RemasterError, leaving no file at `out_path`, if any frame is missing or extra, or with one line
    naming the model, step, device and what to change if a step fails. With `compile`, the compiled kernels
    are kept in `compile_cache_dir` (the shards of a title share it: results/<disc>/upscale_shard/compile_cache).
    """
    if threads > 0:
        torch.set_num_threads(threads)
    with compile_cache(compile_cache_dir if settings.compile else None):
        return _upscale_file(in_path, out_path, expected_frames, fps, matrix, settings, label, log, chain, in_range,
                             cut)


def _upscale_file(in_path, out_path, expected_frames, fps, matrix, settings, label, log, chain, in_range, cut):
    if chain is not None:
        return _upscale(in_path, out_path, expected_frames, fps, matrix, settings, label, log, chain, in_range, cut)
    with job_device(settings.device, log, settings.jobs_per_device) as device:
        Device(device).activate()
        # the steps themselves, so each step's own precision/tile options reach the loader
        loaded = load_chain_steps(list(settings.models), device=device, precision=settings.precision,
                                  tile=settings.tile, tile_overlap=settings.tile_overlap, log=log)
        return _upscale(in_path, out_path, expected_frames, fps, matrix, settings, label, log, loaded, in_range,
                        cut)



def _device_failure(error: BaseException, chain, label: str) -> RemasterError:
    """One line for a device error that no step could be blamed for (a CUDA error in a conversion), or for
    torch.compile finding no compiler on this machine."""
    missing = compiler_missing(error)
    if missing is not None:
        return RemasterError(f"{label}: compile: true, but torch.compile cannot build kernels on this machine "
                             f"({missing}); install a C++ compiler (and Triton for a GPU) or set compile: false")
    text = str(error).strip().splitlines()[0][:240] if str(error).strip() else type(error).__name__
    return RemasterError(f"{label}: {chain_name(chain)} on {describe(chain.device)} failed: {text}; "
                         "check the device (nvidia-smi) and run again, or use device: cpu")


def _upscale(in_path: Path, out_path: Path, expected_frames: int, fps: str, matrix: str, settings: UpscaleSettings,
             label: str, log: logging.Logger, chain, in_range: str = "tv", cut: dict | None = None) -> ShardResult:
    stream = media.ffprobe_json(in_path, "-select_streams", "v:0")["streams"][0]
    width, height = int(stream["width"]), int(stream["height"])
    chain = prepare_chain(chain, compile=settings.compile, log=log)
    device = chain.device
    kit = Device(device)
    kit.activate()  # library calls without a device argument (cuDNN handles, events) land on this one
    on_cpu = device.type == "cpu"
    scale = settings.scale or chain.scale
    out_w, out_h = even(width * scale), even(height * scale)
    precisions = ", ".join(sorted({str(run.dtype).removeprefix("torch.") for run in getattr(chain, "runs", [])}
                                  or {str(chain.dtype).removeprefix("torch.")}))
    log.info("%s: %d frames %dx%d → %dx%d, chain ×%d (%s) on %s at %s%s", label, expected_frames, width, height,
             out_w, out_h, chain.scale, chain_name(chain), describe(device), precisions,
             ", compiled" if getattr(chain, "compiled", False) else "")

    check_disk_space(out_path, expected_frames * out_w * out_h, label)

    warm_start = time.monotonic()
    try:
        with torch.inference_mode():
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True  # one frame size per shard: autotuned kernels pay off
            if on_cpu:
                batch_size, tile = settings.batch_size or default_batch(chain), settings.tile
            else:
                # the plain chain measures memory: the compiled one would compile at batch 1, then again at N
                batch_size, tile = plan_memory(getattr(chain, "chain", chain), (height, width), (out_h, out_w),
                                               settings, log)
            batch_size = max(1, min(batch_size, expected_frames or 1))
            static = getattr(chain, "compiled", False)
            if static:
                warm = Runner(chain, (out_h, out_w), batch_size=batch_size, tile=tile, overlap=settings.tile_overlap,
                              log=log, label=label, pad_to_batch=True)
                zeros = torch.zeros((batch_size, height, width, 3), dtype=torch.uint8, device=device)
                for _ in warm.run(zeros, batch_size):
                    pass
                batch_size, tile = warm.batch_size, warm.tile
                kit.synchronize()
                log.info("%s: torch.compile warm-up %.1f s (batch %d)", label, time.monotonic() - warm_start,
                         batch_size)
    except (RemasterError, KeyboardInterrupt):
        raise
    except Exception as error:
        raise _device_failure(error, chain, label) from error
    warmup = time.monotonic() - warm_start

    # the temporal stage (frames/temporal.py; None when off) takes the chain's float frames, its context included
    stage = temporal_stage(settings, cut, expected_frames, chain, (out_h, out_w), log, label,
                           finish=None if on_cpu else rgb_to_yuv420p10)
    tmp = partial_path(out_path)
    tmp.unlink(missing_ok=True)
    start = time.monotonic()
    # on the CPU the model has every core: single-threaded ffmpeg stalls fewer of its threads at a time
    coder_threads = 1 if on_cpu else None
    # stderr to temporary files, not pipes read at exit: a stream of decode warnings would fill a pipe's
    # 64 KiB and block ffmpeg (and so the whole shard) mid-file
    decoder_log, encoder_log = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    decoder = subprocess.Popen(decoder_command(in_path, matrix, coder_threads, in_range=in_range, cut=cut),
                               stdout=subprocess.PIPE, stderr=decoder_log)
    if not on_cpu and settings.form == "lossless":  # this job's share of the cores, beside the others on its GPU
        coder_threads = writer_threads(settings.jobs_per_device)
    encoder = subprocess.Popen(encoder_command(tmp, out_w, out_h, fps, coder_threads, form=settings.form),
                               stdin=subprocess.PIPE, stderr=encoder_log)
    widen_pipe(decoder.stdout)
    widen_pipe(encoder.stdin)
    errors: list = []
    read, written = [0], [0]
    slots = max(2, -(-settings.queue_frames // batch_size)) + 1
    free: queue.Queue = queue.Queue()
    for _ in range(slots):
        free.put((torch.empty((batch_size, height, width, 3), dtype=torch.uint8, pin_memory=kit.pinned), None))
    inbox: queue.Queue = queue.Queue(maxsize=slots)
    outbox: queue.Queue = queue.Queue(maxsize=slots)
    sender = _Sender(kit, (batch_size, frame_words(out_w, out_h)), slots, outbox)
    reader = threading.Thread(target=_reader, args=(decoder, width * height * 3, free, inbox, errors, read, on_cpu),
                              daemon=True)
    writer = threading.Thread(target=_writer, args=(encoder, outbox, errors, written), daemon=True)
    reader.start()
    writer.start()

    runner = Runner(chain, (out_h, out_w), batch_size=batch_size, tile=tile, overlap=settings.tile_overlap, log=log,
                    label=f"{label}: {in_path}", finish=None if on_cpu or stage else rgb_to_yuv420p10,
                    pad_to_batch=getattr(chain, "compiled", False))
    progress = Progress(label, expected_frames, log)
    processed = 0
    completed = False
    try:
        with torch.inference_mode():
            while (item := inbox.get()) is not _END:
                frames, count = item
                if not on_cpu:  # uint8 over the bus, converted on the device inside the runner
                    batch = frames[:count].to(device, non_blocking=kit.pinned)
                    # recorded on this device's stream: the reader refills the buffer only after the copy
                    free.put((frames, kit.record()))
                else:  # already float, converted by the reader
                    batch = frames
                for upscaled, count_up in runner.run(batch, count):
                    for result, take in stage.feed(upscaled, count_up) if stage else [(upscaled, count_up)]:
                        sender.send(result, take)
                        processed += take
                        progress.advance(take)
                if errors:
                    raise errors[0]
            for result, take in stage.flush() if stage else []:  # the shard's last frames, after the context
                sender.send(result, take)
                processed += take
                progress.advance(take)
        completed = True
    except (RemasterError, KeyboardInterrupt, OSError):
        raise  # OSError: a pipe to ffmpeg broke; the decoder's or encoder's own message is checked below
    except Exception as error:
        # a device error (a CUDA error surfaces at the next sync: the copy, an event in the writer thread)
        raise _device_failure(error, chain, label) from error
    finally:
        if not completed:
            decoder.kill()
        free.put(None)  # wakes the reader if it waits for a buffer
        while reader.is_alive():  # or for room in the inbox
            try:
                inbox.get(timeout=0.1)
            except queue.Empty:
                pass
        outbox.put(_END)
        writer.join()
        decoder.stdout.close()
        decoder_rc = decoder.wait()
        encoder_rc = encoder.wait()
        if not completed:
            tmp.unlink(missing_ok=True)
    batch_size, tile = runner.batch_size, runner.tile
    if errors:
        tmp.unlink(missing_ok=True)
        if not isinstance(errors[0], (RemasterError, OSError)):
            raise _device_failure(errors[0], chain, label) from errors[0]
        if not isinstance(errors[0], OSError) or (decoder_rc == 0 and encoder_rc == 0):
            raise errors[0]
    if decoder_rc != 0:
        raise RemasterError(f"{in_path}: decoding failed: {stderr_tail(decoder_log)}")
    if encoder_rc != 0:
        raise RemasterError(f"{out_path}: encoding failed: {stderr_tail(encoder_log)}")
    decoder_log.close()
    encoder_log.close()
    stored = media.count_packets(tmp)
    if not (read[0] - (stage.context if stage else 0) == processed == written[0] == stored == expected_frames):
        tmp.unlink(missing_ok=True)
        raise RemasterError(f"{in_path}: frame count mismatch (expected {expected_frames}, read {read[0]}, "
                            f"upscaled {processed}, written {written[0]}, stored {stored}); the shard was not kept")
    os.replace(tmp, out_path)
    seconds = time.monotonic() - start
    result = ShardResult(expected_frames, seconds, out_w, out_h, str(device), str(chain.dtype).removeprefix("torch."),
                         batch_size, tile, warmup)
    log.info("%s: done, %d frames in %s (%.2f fps, batch %d, tile %s)", label, result.frames, duration(seconds),
             result.fps, batch_size, tile or "none")
    return result
