"""Frame interpolation of one upscaled shard: RIFE between neighbouring frames, `factor` × the frame rate.

The shard's frames are read as they are stored (10-bit 4:2:0, BT.709 matrix, limited range) and each
original frame is written back byte for byte; only the new in-between frames go through RGB and the model.
Output frame m of a shard of n frames sits at time m / factor (in source frames): m = k·factor is source
frame k unchanged; the others are RIFE at the fraction between the two frames around them. The job also
reads the first frame of the next shard, so the pairs across a shard boundary are interpolated too; the
last shard's last frame is held (repeated) for its factor − 1 slots. Every shard therefore yields exactly
factor × n frames and the master keeps the source's duration.

- Scene cuts: where the luma histograms of a pair differ by more than `scene_threshold` (total variation
  distance, 0..1), nothing is blended: the earlier frame is repeated up to the cut.
- drop_duplicates: frames (nearly) equal to the last kept frame (mean absolute luma difference below
  `duplicate_threshold`) are dropped, and the output grid is filled by interpolating between the kept
  frames at their own times: 16 fps film stored at 23.976 with repeated frames moves evenly, and the
  duration (so the sync with the audio) is unchanged.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..run import media
from ..run.errors import RemasterError
from ..run.ffv1 import ffv1_args
from ..run.files import partial_path
from ..run.logs import Progress, duration
from ..run.pipes import read_into, stderr_tail
from ..run.settings import InterpolateSettings

# BT.709 luma weights; the upscaled shards hold BT.709-matrix limited-range 10-bit YUV (commands.encoder_command)
KR, KB = 0.2126, 0.0722
KG = 1 - KR - KB
HISTOGRAM_BINS = 64


@dataclass(frozen=True)
class InterpolateResult:
    frames_in: int
    frames_out: int
    interpolated: int
    cuts: int
    dropped: int
    seconds: float
    device: str
    dtype: str

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------------------------------------------------
# raw 10-bit 4:2:0 frames (numpy uint16, planar, as ffmpeg's yuv420p10le)

def frame_words(width: int, height: int) -> int:
    return width * height * 3 // 2


def luma(frame: np.ndarray, width: int, height: int, step: int = 2) -> np.ndarray:
    """The Y plane, every `step`-th pixel, as float32 in [0, 1] of the limited range."""
    plane = frame[:width * height].reshape(height, width)[::step, ::step]
    return (plane.astype(np.float32) - 64) / 876


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance (0 same, 1 disjoint) between two luma histograms."""
    ha = np.histogram(a, bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0].astype(np.float64)
    hb = np.histogram(b, bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0].astype(np.float64)
    return float(0.5 * np.abs(ha / max(ha.sum(), 1) - hb / max(hb.sum(), 1)).sum())


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def yuv_to_rgb(frames: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(N, words) uint16 yuv420p10le → (N, 3, H, W) RGB in [0, 1], chroma upsampled bilinearly."""
    count = frames.shape[0]
    values = frames.to(torch.float32)
    y = (values[:, :width * height].reshape(count, 1, height, width) - 64) / 876
    chroma = values[:, width * height:].reshape(count, 2, height // 2, width // 2)
    chroma = F.interpolate((chroma - 512) / 896, scale_factor=2, mode="bilinear", align_corners=False)
    cb, cr = chroma[:, :1], chroma[:, 1:]
    red = y + 2 * (1 - KR) * cr
    blue = y + 2 * (1 - KB) * cb
    green = (y - KR * red - KB * blue) / KG
    return torch.cat((red, green, blue), 1).clamp_(0, 1)


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] → (N, words) uint16 yuv420p10le (chroma averaged over 2×2), on rgb's device."""
    rgb = rgb.to(torch.float32).clamp(0, 1)
    count = rgb.shape[0]
    red, green, blue = rgb[:, :1], rgb[:, 1:2], rgb[:, 2:3]
    y = KR * red + KG * green + KB * blue
    cb = F.avg_pool2d((blue - y) / (2 * (1 - KB)), 2)
    cr = F.avg_pool2d((red - y) / (2 * (1 - KR)), 2)
    y10 = (y * 876 + 64).round_().clamp_(0, 1023)
    c10 = (torch.cat((cb, cr), 1) * 896 + 512).round_().clamp_(0, 1023)
    return torch.cat((y10.reshape(count, -1), c10.reshape(count, -1)), 1).to(torch.int32).to(torch.uint16)


# ---------------------------------------------------------------------------------------------------------
# the output schedule

@dataclass(frozen=True)
class Slot:
    """One output frame: a source frame as it is (`t` == 0), or RIFE between `first` and `second` at `t`."""

    first: int  # index of the source frame (in the shard, the overlap frame being n)
    second: int | None = None
    t: float = 0.0

    @property
    def copied(self) -> bool:
        return self.second is None or self.t == 0


def slots_between(first: int, second: int | None, factor: int, *, cut: bool = False) -> list[Slot]:
    """The output frames for times [first, second) (a single frame's slots when `second` is None)."""
    if second is None or cut:
        return [Slot(first)] * (factor * ((second or first + 1) - first))
    span = second - first
    out = []
    for m in range(first * factor, second * factor):
        t = Fraction(m, factor) - first
        out.append(Slot(first) if t == 0 else Slot(first, second, float(t / span)))
    return out


# ---------------------------------------------------------------------------------------------------------
# ffmpeg

def decoder_command(path: Path, frames: int | None = None) -> list[str]:
    """ffmpeg giving the shard's frames as stored (yuv420p10le, no conversion), optionally only the first few."""
    limit = ["-frames:v", str(frames)] if frames else []
    return media.ffmpeg_args("-i", media.input_path(path), "-map", "0:v:0", *limit, "-fps_mode", "passthrough",
                             "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "pipe:1")


def encoder_command(path: Path, width: int, height: int, fps: str, threads: int | None = None) -> list[str]:
    """ffmpeg storing raw yuv420p10le frames losslessly (FFV1, like the upscaled shards) at `fps`."""
    thread_args = ["-threads", str(threads)] if threads else []
    return media.ffmpeg_args(
        # the tags describe the input: as output options FFmpeg ≥ 7 would convert untagged frames to them
        "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", f"{width}x{height}", "-framerate", fps,
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-i", "pipe:0", *ffv1_args(16),
        *thread_args, "-f", "matroska", str(path),
    )


def output_fps(fps: str, factor: int) -> str:
    """The interpolated rate as ffmpeg writes it: 24000/1001 × 2 = 48000/1001."""
    rate = Fraction(fps) * factor
    return f"{rate.numerator}/{rate.denominator}"


def _frames(path: Path, words: int, limit: int | None = None):
    """Yield the frames of `path` as uint16 arrays; raises if ffmpeg fails or leaves a partial frame."""
    errors = tempfile.TemporaryFile()  # not a pipe read at exit: 64 KiB of warnings would block ffmpeg
    proc = subprocess.Popen(decoder_command(path, limit), stdout=subprocess.PIPE, stderr=errors)
    try:
        while True:
            frame = np.empty(words, dtype=np.uint16)
            got = read_into(proc.stdout, memoryview(frame).cast("B"))
            if got == 0:
                break
            if got != words * 2:
                raise RemasterError(f"{path}: decoder gave a partial frame ({got} of {words * 2} bytes)")
            yield frame
    finally:
        proc.stdout.close()
        rc = proc.wait()
    if rc != 0:
        raise RemasterError(f"{path}: decoding failed: {stderr_tail(errors)}")
    errors.close()


# ---------------------------------------------------------------------------------------------------------
# the model side

class Interpolator:
    """The RIFE model on its device, fed batches of (first, second, t) frame triples.

    Run as the upscale's chain is: the job's device activated; `auto` precision only where it was seen to
    run a test pair like fp32 does (fp16, bf16, then fp32, as the device allows); every batch checked for
    inf/NaN and redone at fp32 if it holds any (logged); out of memory halves the batch and redoes the same
    frames, the failed attempt's memory freed outside the handler.
    """

    def __init__(self, settings: InterpolateSettings, model=None, log: logging.Logger | None = None):
        from ..models.devices import Device
        from ..models.loading import choose_device
        from ..models.rife import load_ifnet

        self.device = choose_device(settings.device)
        self.kit = Device(self.device)
        self.kit.activate()  # cuDNN handles and cache flushes land on the job's own GPU, not cuda:0
        self.log = log or logging.getLogger("remaster")
        if model is None:
            model = load_ifnet(settings.model)
        self.reference = model.eval().requires_grad_(False).to(device="cpu", dtype=torch.float32)
        self.scale = settings.scale
        self.dtype = self._prove(settings.precision, str(settings.model or "interpolate.model"))
        self.model = (self.reference.to(self.device) if self.dtype == torch.float32
                      else copy.deepcopy(self.reference).to(device=self.device, dtype=self.dtype))
        self.wide = None  # the fp32 model on the device, made when a batch first needs it
        self.recovered = 0
        self.batch_size = settings.batch_size or (1 if self.device.type == "cpu" else 4)

    def _prove(self, precision: str, name: str) -> torch.dtype:
        """The precision to run: `auto`'s first that gives a test pair like fp32 does, or the one asked for."""
        from ..models.precision import first_that_matches, network_candidates, prove_frame

        candidates = network_candidates(self.device, precision)
        first = prove_frame(None, self.device)
        second = first.roll(3, -1)
        model = copy.deepcopy(self.reference).to(self.device)

        def run(dtype: torch.dtype) -> torch.Tensor:
            with torch.inference_mode():
                model.to(dtype)
                half = torch.full((1,), 0.5, device=self.device, dtype=dtype)
                return model(first.to(dtype), second.to(dtype), half, self.scale)

        return first_that_matches(run, candidates, what=f"{name}: RIFE does not run on {self.kit}", log=self.log,
                                  explicit=precision != "auto", key="interpolate.precision")

    def _wide(self):
        if self.wide is None:
            self.wide = copy.deepcopy(self.reference).to(self.device)
        return self.wide

    def _run(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One batch through the model; redone at fp32 (TF32 allowed) if the output holds inf or NaN."""
        from ..models.loading import all_finite, tf32_matmuls

        out = self.model(a.to(self.dtype), b.to(self.dtype), t.to(self.dtype), self.scale)
        if all_finite(out):
            return out.float()
        if self.dtype == torch.float32:
            raise RemasterError(f"RIFE gives inf or NaN at fp32 on {self.kit}; the model cannot run these frames")
        self.recovered += 1
        self.log.warning("RIFE gave inf or NaN at %s on a batch of %d frames; redoing it at fp32",
                         str(self.dtype).removeprefix("torch."), len(t))
        with tf32_matmuls(self.device, True):
            out = self._wide()(a.float(), b.float(), t.float(), self.scale)
        if not all_finite(out):
            raise RemasterError(f"RIFE gives inf or NaN on {self.kit} even at fp32; the model cannot run these frames")
        return out

    def __call__(self, firsts: list[np.ndarray], seconds: list[np.ndarray], times: list[float], width: int,
                 height: int) -> np.ndarray:
        """(N, words) uint16 in-between frames."""
        from ..models.devices import is_out_of_memory

        with torch.inference_mode():
            a = yuv_to_rgb(torch.from_numpy(np.stack(firsts)).to(self.device), width, height)
            b = yuv_to_rgb(torch.from_numpy(np.stack(seconds)).to(self.device), width, height)
            t = torch.tensor(times, device=self.device, dtype=torch.float32)
            done, parts = 0, []
            while done < len(t):
                take = self.batch_size
                failed = False
                try:
                    parts.append(self._run(a[done:done + take], b[done:done + take], t[done:done + take]))
                except Exception as error:
                    if not is_out_of_memory(error):
                        raise
                    failed = True
                if failed:  # outside the handler: the failed attempt's activations are freed by now
                    self.kit.empty_cache()
                    if self.batch_size == 1:
                        raise RemasterError(f"out of GPU memory on {self.kit} interpolating even one frame pair; "
                                            "free GPU memory or set interpolate.scale: 0.5")
                    self.batch_size //= 2  # the same frames again, never skipping one
                    continue
                done += take
            return rgb_to_yuv(torch.cat(parts)).cpu().numpy()


# ---------------------------------------------------------------------------------------------------------
# one shard

def interpolate_file(in_path: Path, out_path: Path, *, following: Path | None, expected_frames: int, fps: str,
                     settings: InterpolateSettings, label: str, log: logging.Logger, threads: int = 1,
                     model=None) -> InterpolateResult:
    """Write `in_path`'s frames and the in-between ones (factor × expected_frames) to `out_path`.

    `following` is the next shard (its first frame closes the last pair), None for the title's last shard.
    The file is written under a temporary name and renamed only when every frame is counted. On a machine
    with several GPUs the job claims one of its own for its lifetime (remaster.models.claims).
    """
    from dataclasses import replace

    from ..models.claims import job_device

    with job_device(settings.device, log, settings.jobs_per_device) as device:
        return _interpolate_file(in_path, out_path, following=following, expected_frames=expected_frames, fps=fps,
                                 settings=replace(settings, device=str(device)), label=label, log=log,
                                 threads=threads, model=model)


def _interpolate_file(in_path: Path, out_path: Path, *, following: Path | None, expected_frames: int, fps: str,
                      settings: InterpolateSettings, label: str, log: logging.Logger, threads: int = 1,
                      model=None) -> InterpolateResult:
    if threads > 0:
        torch.set_num_threads(threads)
    factor = settings.factor
    stream = media.ffprobe_json(in_path, "-select_streams", "v:0")["streams"][0]
    width, height = int(stream["width"]), int(stream["height"])
    if stream.get("pix_fmt") != "yuv420p10le":
        raise RemasterError(f"{in_path}: holds {stream.get('pix_fmt')}, not the upscaled shards' yuv420p10le")
    words = frame_words(width, height)
    interpolator = Interpolator(settings, model, log)
    rate = output_fps(fps, factor)
    log.info("%s: %d frames %dx%d at %s fps → ×%d at %s fps, RIFE on %s at %s%s", label, expected_frames, width,
             height, fps, factor, rate, interpolator.device, str(interpolator.dtype).removeprefix("torch."),
             ", duplicates dropped" if settings.drop_duplicates else "")

    tmp = partial_path(out_path)
    tmp.unlink(missing_ok=True)
    start = time.monotonic()
    cuda = interpolator.device.type == "cuda"
    encoder_log = tempfile.TemporaryFile()  # as the decoder's: a file, never a pipe that could fill
    encoder = subprocess.Popen(encoder_command(tmp, width, height, rate, None if cuda else 1), stdin=subprocess.PIPE,
                               stderr=encoder_log)
    counts = {"read": 0, "written": 0, "interpolated": 0, "cuts": 0, "dropped": 0}
    progress = Progress(label, expected_frames * factor, log)
    pending: list[Slot] = []
    frames: dict[int, np.ndarray] = {}

    def flush() -> None:
        """Write the pending slots in order, the in-between ones computed in one batch."""
        wanted = [slot for slot in pending if not slot.copied]
        made = iter(interpolator([frames[s.first] for s in wanted], [frames[s.second] for s in wanted],
                                 [s.t for s in wanted], width, height)) if wanted else iter(())
        for slot in pending:
            data = frames[slot.first] if slot.copied else next(made)
            encoder.stdin.write(memoryview(np.ascontiguousarray(data)).cast("B"))
            counts["written"] += 1
        counts["interpolated"] += len(wanted)
        progress.advance(len(pending))
        pending.clear()
        keep = {s for s in frames if s >= last_key}
        for index in list(frames):
            if index not in keep:
                del frames[index]

    def source():
        for frame in _frames(in_path, words):
            yield frame, False
        if following is not None:
            got = list(_frames(following, words, limit=1))
            if len(got) != 1:
                raise RemasterError(f"{following}: has no first frame to close the shard's last pair")
            yield got[0], True

    completed = False
    last_key = 0
    try:
        key_luma = None
        for frame, overlap in source():
            index = counts["read"]
            if not overlap:
                counts["read"] += 1
            current = luma(frame, width, height)
            if key_luma is None:
                frames[index], key_luma, last_key = frame, current, index
                continue
            if (settings.drop_duplicates and not overlap
                    and mean_difference(current, key_luma) < settings.duplicate_threshold):
                counts["dropped"] += 1
                continue
            cut = histogram_distance(key_luma, current) > settings.scene_threshold
            counts["cuts"] += cut
            frames[index] = frame
            pending.extend(slots_between(last_key, index, factor, cut=cut))
            last_key, key_luma = index, current
            if sum(not s.copied for s in pending) >= interpolator.batch_size or len(pending) >= 64:
                flush()
        if following is None and frames:
            pending.extend(slots_between(last_key, counts["read"], factor, cut=True))  # the last frame held
        if pending:
            flush()
        completed = True
    finally:
        try:
            encoder.stdin.close()
        except OSError:
            pass
        encoder_rc = encoder.wait()
        if not completed:
            tmp.unlink(missing_ok=True)
    if encoder_rc != 0:
        tmp.unlink(missing_ok=True)
        raise RemasterError(f"{out_path}: encoding failed: {stderr_tail(encoder_log)}")
    encoder_log.close()
    stored = media.count_packets(tmp)
    want = expected_frames * factor
    if not (counts["read"] == expected_frames and counts["written"] == stored == want):
        tmp.unlink(missing_ok=True)
        raise RemasterError(f"{in_path}: frame count mismatch (expected {expected_frames} in, {want} out; read "
                            f"{counts['read']}, written {counts['written']}, stored {stored}); the shard was not kept")
    os.replace(tmp, out_path)
    seconds = time.monotonic() - start
    result = InterpolateResult(expected_frames, want, counts["interpolated"], counts["cuts"], counts["dropped"],
                               seconds, str(interpolator.device), str(interpolator.dtype).removeprefix("torch."))
    log.info("%s: done, %d → %d frames (%d interpolated, %d scene cuts held, %d duplicates dropped) in %s "
             "(%.2f output fps)", label, expected_frames, want, result.interpolated, result.cuts, result.dropped,
             duration(seconds), result.fps)
    return result
