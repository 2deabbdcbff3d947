"""Pictures scored against a known truth: VMAF, PSNR, SSIM and a temporal error, at the truth's size.

Every score compares RGB frames (uint8, N×H×W×3) of an output with the truth's, both read in the truth's
colour space: each output is decoded to RGB with the matrix it is tagged with (:func:`decode_rgb`), and the
truth is RGB already. VMAF, PSNR (luma) and SSIM (luma) come from libvmaf in the pinned FFmpeg 8, fed both
sequences converted to BT.709 limited-range 4:4:4 the same way, so the conversion cancels out. The temporal
error is computed here: how much the output's frame-to-frame change differs from the truth's, the shimmer a
per-frame upscaler adds (0 for a perfect output, also for one that is wrong the same way in every frame).

Used by tests/bench/bench_quality.py and reusable wherever an output has a truth (a reference release).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..run import media
from ..run.errors import RemasterError

# BT.709 luma weights: the truth's space (sRGB photographs, HD masters)
LUMA = np.array([0.2126, 0.7152, 0.0722])


@dataclass(frozen=True)
class Scores:
    """One output's scores against its truth (frames: how many were compared)."""

    vmaf: float
    psnr: float  # luma, dB (libvmaf caps it at 60)
    ssim: float  # luma
    temporal: float  # mean |Δoutput − Δtruth| of luma between neighbouring frames, 8-bit levels
    frames: int
    offset: int = 0  # truth frame of the output's first frame

    def as_dict(self) -> dict:
        return asdict(self)


def luma(frames: np.ndarray) -> np.ndarray:
    """BT.709 luma (float, 0-255) of RGB frames (…×H×W×3)."""
    return np.asarray(frames, dtype=np.float64) @ LUMA


def psnr(output: np.ndarray, truth: np.ndarray) -> float:
    """Luma PSNR (dB) over all frames together; 100 for identical frames."""
    mse = float(np.mean((luma(output) - luma(truth)) ** 2))
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def temporal_error(output: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute difference (8-bit luma levels) between the output's and the truth's frame-to-frame change.

    A static error (the same in every frame) scores 0; shimmer, flicker and judder score above it."""
    if len(output) != len(truth):
        raise ValueError(f"temporal error needs as many output frames as truth frames ({len(output)} vs {len(truth)})")
    if len(output) < 2:
        raise ValueError("temporal error needs at least two frames")
    out, ref = luma(output), luma(truth)
    return float(np.mean(np.abs(np.diff(out, axis=0) - np.diff(ref, axis=0))))


def best_offset(output: np.ndarray, truth: np.ndarray, search: int = 3) -> int:
    """The truth frame (0…`search`) that the output's first frame shows, by luma error over a few frames.

    An output can start a frame or two late (a deinterlacer's first field, a decimated first film frame)."""
    count = min(4, len(output))
    errors = {}
    for offset in range(0, search + 1):
        if offset + count > len(truth):
            break
        errors[offset] = float(np.mean((luma(output[:count]) - luma(truth[offset:offset + count])) ** 2))
    if not errors:
        raise ValueError(f"{len(truth)} truth frames are too few to align {len(output)} output frames")
    return min(errors, key=errors.get)


def _write_raw(path: Path, frames: np.ndarray) -> None:
    path.write_bytes(np.ascontiguousarray(frames, dtype=np.uint8).tobytes())


def libvmaf_scores(output: np.ndarray, truth: np.ndarray, work: Path | None = None) -> tuple[float, float, float]:
    """(VMAF, luma PSNR, luma SSIM) means of libvmaf (model vmaf_v0.6.1) over equal-length RGB sequences."""
    if output.shape != truth.shape:
        raise ValueError(f"output frames {output.shape} and truth frames {truth.shape} differ in shape")
    frames, height, width, _ = truth.shape
    with tempfile.TemporaryDirectory(dir=work) as folder:
        folder = Path(folder)
        dist, ref, log = folder / "output.rgb", folder / "truth.rgb", folder / "vmaf.json"
        _write_raw(dist, output)
        _write_raw(ref, truth)
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", "25"]
        to_yuv = "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int,format=yuv444p"
        graph = (f"[0:v]{to_yuv}[d];[1:v]{to_yuv}[r];[d][r]libvmaf=log_fmt=json:log_path={log.name}"
                 ":n_threads=2:feature=name=psnr|name=float_ssim")
        cmd = [media.tool("ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", *raw, "-i", dist.name,
               *raw, "-i", ref.name, "-lavfi", graph, "-f", "null", "-"]
        result = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
        if result.returncode != 0:
            raise RemasterError(f"libvmaf: {result.stderr.strip()[-400:] or 'ffmpeg failed'}")
        pooled = json.loads(log.read_text())["pooled_metrics"]
    return pooled["vmaf"]["mean"], pooled["psnr_y"]["mean"], pooled["float_ssim"]["mean"]


def score(output: np.ndarray, truth: np.ndarray, *, search: int = 3, work: Path | None = None) -> Scores:
    """Scores of an output's frames against the truth's, after finding which truth frame it starts on.

    Both are RGB at the truth's size; the output may be shorter than the truth (the scores cover the output)."""
    if output.shape[1:] != truth.shape[1:]:
        raise ValueError(f"output frames are {output.shape[2]}x{output.shape[1]}, the truth's "
                         f"{truth.shape[2]}x{truth.shape[1]}: scale the output to the truth's size first")
    offset = best_offset(output, truth, search)
    count = min(len(output), len(truth) - offset)
    out, ref = output[:count], truth[offset:offset + count]
    vmaf, psnr_y, ssim_y = libvmaf_scores(out, ref, work)
    return Scores(vmaf=vmaf, psnr=psnr_y, ssim=ssim_y, temporal=temporal_error(out, ref), frames=count, offset=offset)


def decode_rgb(path: Path, size: tuple[int, int], *, pre: str = "", matrix: str | None = None,
               flags: str = "lanczos", frames: int | None = None) -> np.ndarray:
    """A video's frames as RGB at `size` (w, h): `pre` filters first (crop, deinterlace), then one scale
    converts with `matrix` (else the file's tag) and resizes with `flags`. Frames pass as decoded (none
    repeated for a rate: soft pulldown's pictures come once each)."""
    width, height = size
    colour = f":in_color_matrix={matrix}" if matrix else ""
    scale = f"scale={width}:{height}{colour}:flags={flags}+accurate_rnd+full_chroma_int,format=rgb24"
    graph = ",".join(f for f in (pre, scale) if f)
    cmd = [media.tool("ffmpeg"), "-hide_banner", "-nostdin", "-v", "error", "-i", media.input_path(path),
           "-map", "0:v:0", "-vf", graph, "-fps_mode", "passthrough", *(["-frames:v", str(frames)] if frames else []),
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode != 0:
        raise RemasterError(f"{path}: could not be decoded for scoring: {result.stderr.decode(errors='replace')[-300:]}")
    frame_bytes = width * height * 3
    count = len(result.stdout) // frame_bytes
    return np.frombuffer(result.stdout[:count * frame_bytes], np.uint8).reshape(count, height, width, 3)
