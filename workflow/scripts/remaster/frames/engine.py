"""The streaming upscale of one shard: decode → model chain → encode, concurrently, never losing a frame.

Three threads and two ffmpeg processes run at once, so the model never waits on disk:

- the reader thread reads raw RGB frames from an ffmpeg decoder straight into a small pool of batch-sized
  host buffers (pinned on a GPU, so the host→GPU copy is asynchronous);
- the main thread copies a batch to the device as uint8, converts it there, runs the model chain, converts
  the float result to the shard's 10-bit 4:2:0 YUV there (`yuv.py`), and queues the copy back to pinned
  host memory on a separate stream of the job's own device, recording an event on that stream instead of
  waiting for it;
- the writer thread waits for that event and writes the buffer to an ffmpeg encoder without copying it.

The model's float output becomes the shard's 10-bit codes in one step, on the device: no 8-bit rounding in
between, so smooth gradients the model makes keep their in-between levels (docs/benchmarks.md measures it),
half rgb48's bytes through the pipe, and no swscale in the writer.

The pieces it runs live beside it: `commands` (the decoder's and encoder's ffmpeg arguments), `budget`
(batch size and tile from the config, or on a GPU from free memory measured with a one-frame probe; the
disk a shard needs), `runner` (the one run path for a loaded chain, with its out-of-memory recovery: the
batch, then the tile, shrinks and the same frames are redone), `convert` (frames to the model and back),
`chains` (fast paths and torch.compile). Frames are counted at every hand-off and the finished file is
counted again before it is renamed into place.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import torch

from ..models.claims import job_device
from ..models.devices import Device, describe
from ..models.loading import load_chain_steps
from ..run import media
from ..run.errors import RemasterError, first_line
from ..run.files import partial_path
from ..run.logs import Progress, duration
from ..run.pipes import read_into, stderr_tail, widen_pipe
from ..run.records import ShardResult
from ..run.settings import UpscaleSettings
from .budget import check_disk_space, default_batch, plan_memory
from .chains import chain_name, compile_cache, compiler_missing, prepare_chain
from .commands import decoder_command, encoder_command, writer_threads
from .convert import host_to_model, host_to_yuv
from .runner import Runner
from .shards import Cut
from .temporal import for_shard as temporal_stage
from .yuv import even, frame_words, rgb_to_yuv420p10

_END = object()


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


def upscale_file(in_path: Path, out_path: Path, *, expected_frames: int, fps: str, matrix: str,
                 settings: UpscaleSettings, label: str, log: logging.Logger, threads: int = 1,
                 chain=None, in_range: str = "tv", cut: Cut | None = None,
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
    return RemasterError(f"{label}: {chain_name(chain)} on {describe(chain.device)} failed: {first_line(error)}; "
                         "check the device (nvidia-smi) and run again, or use device: cpu")


def _upscale(in_path: Path, out_path: Path, expected_frames: int, fps: str, matrix: str, settings: UpscaleSettings,
             label: str, log: logging.Logger, chain, in_range: str = "tv", cut: Cut | None = None) -> ShardResult:
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
