"""Benchmark the temporal-stability stage (TemporalFix) against a known truth, and time it.

The truth: photographs (workflow/resources/demo/photos) moved the way a camera pans (eased, sub-pixel), at the
photograph's own resolution; `--speeds` of 0 is a locked-off shot, where any change is error. The DVD-like
input: each truth frame downscaled ×1/2 (area: an HD master is 2-2.7× a DVD's size), stored as MPEG-2 4:2:0
at a fixed DVD-like quantiser (GOP 15, B-frames) and decoded. Then, each scored against the truth at its size:

- bicubic: what a player does; and bicubic of the half-size frames without MPEG-2: no codec noise and no
  model, so its temporal error is the part no upscale of the half-size frames removes (detail they lack);
- model: the bundled Real-ESRGAN Compact ×4 video model, frame by frame, resized to ×2 as a job with
  `scale: 2` does (remaster's loader and `convert.run_chain`, on the CPU);
- model + TemporalFix at each strength, run as the shard job runs it (`frames.temporal.TemporalStage` over the
  engine's Runner, the clip's ends mirrored).

Scores: VMAF (libvmaf in the pinned FFmpeg 8, yuv420p BT.709), luma PSNR, and the temporal error: the mean
absolute difference, in 8-bit luma levels, between the output's frame-to-frame change and the truth's. Also
the stage's CPU speed (frames per second of the network alone, on `--threads` threads).

    .venv/bin/python tests/bench/bench_temporal.py                  # 3 clips × 16 frames × speeds 0 1
    .venv/bin/python tests/bench/bench_temporal.py --frames 8 --strengths 2 --photos coffee.png
    .venv/bin/python tests/bench/bench_temporal.py --time 1440x1152 --device cuda --frames 100   # speed only
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from remaster.frames.convert import run_chain  # noqa: E402
from remaster.frames.temporal import TemporalChain, TemporalStage  # noqa: E402
from remaster.models.loading import load_chain  # noqa: E402
from remaster.models.temporalfix import load_temporalfix  # noqa: E402
from remaster.run import media  # noqa: E402

PHOTOS = REPO / "workflow" / "resources" / "demo" / "photos"
MODEL = REPO / "resources" / "models" / "realesr-animevideov3-x4.safetensors"
WEIGHTS = REPO / "resources" / "models" / "temporalfix"
SCALE = 2  # the truth's size over the DVD-like input's
LOG = logging.getLogger("bench_temporal")


def pan(photo: Path, frames: int, size: tuple[int, int], speed: float) -> np.ndarray:
    """(frames, h, w, 3) uint8: a `size` window eased across the photograph at `speed` truth pixels a frame on
    average (and a third of that down), sub-pixel."""
    image = Image.open(photo).convert("RGB")
    width, height = size
    travel_x = min(image.width - width - 2, speed * (frames - 1))
    travel_y = min(image.height - height - 2, travel_x / 3)
    out = []
    for index in range(frames):
        step = 0.5 - 0.5 * math.cos(math.pi * index / max(frames - 1, 1))  # starts and stops as a camera does
        left, top = 1 + travel_x * step, 1 + travel_y * step
        out.append(np.asarray(image.resize(size, Image.BICUBIC, box=(left, top, left + width, top + height))))
    return np.stack(out)


def dvd_like(truth: np.ndarray, work: Path) -> np.ndarray:
    """The truth ×1/2 (area), through MPEG-2 4:2:0 at quantiser 5 (GOP 15, 2 B-frames) and back to RGB."""
    frames, height, width, _ = truth.shape
    small = F.interpolate(torch.from_numpy(truth).permute(0, 3, 1, 2).float(), scale_factor=1 / SCALE, mode="area")
    small = small.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    lw, lh = width // SCALE, height // SCALE
    m2v = work / "input.m2v"
    m2v.unlink(missing_ok=True)  # ffmpeg would keep the last clip's
    subprocess.run(media.ffmpeg_args("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{lw}x{lh}", "-framerate", "25",
                                     "-i", "pipe:0", "-vf", "scale=out_color_matrix=bt601:out_range=tv,format=yuv420p",
                                     "-c:v", "mpeg2video", "-qscale:v", "5", "-g", "15", "-bf", "2", "-y", str(m2v)),
                   input=small.tobytes(), check=True, capture_output=True)
    raw = subprocess.run(media.ffmpeg_args("-i", str(m2v), "-vf", "scale=in_color_matrix=bt601:in_range=tv:"
                                           "flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24",
                                           "-f", "rawvideo", "pipe:1"), capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(frames, lh, lw, 3)


def to_float(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames.copy()).permute(0, 3, 1, 2).float() / 255


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    return (frames.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def luma(frames: np.ndarray) -> np.ndarray:
    rgb = frames.astype(np.float64)
    return 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]


def temporal_error(out: np.ndarray, truth: np.ndarray) -> float:
    """Mean |Δout − Δtruth| over consecutive frames, luma in 8-bit levels."""
    return float(np.abs(np.diff(luma(out), axis=0) - np.diff(luma(truth), axis=0)).mean())


def psnr(out: np.ndarray, truth: np.ndarray) -> float:
    mse = float(((luma(out) - luma(truth)) ** 2).mean())
    return 10 * math.log10(255 ** 2 / mse) if mse else float("inf")


def vmaf(out: np.ndarray, truth: np.ndarray, work: Path) -> float:
    """libvmaf's mean VMAF of `out` against `truth` (both yuv420p BT.709 from RGB)."""
    _, height, width, _ = truth.shape
    paths = []
    for name, frames in (("distorted", out), ("reference", truth)):
        path = work / f"{name}.rgb"
        path.write_bytes(frames.tobytes())
        paths.append(path)
    log = work / "vmaf.json"
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", "25", "-i"]
    to_yuv = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
    subprocess.run(media.ffmpeg_args(*raw, str(paths[0]), *raw, str(paths[1]), "-lavfi",
                                     f"[0:v]{to_yuv}[d];[1:v]{to_yuv}[r];[d][r]libvmaf=log_fmt=json:"
                                     f"log_path={log}:n_threads=2", "-f", "null", "-"),
                   check=True, capture_output=True)
    return float(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"])


def run_stage(network: TemporalChain, frames: torch.Tensor) -> tuple[torch.Tensor, float]:
    """TemporalFix over the whole clip as one shard job runs it (ends mirrored); (frames, seconds)."""
    stage = TemporalStage(network, tuple(frames.shape[-2:]), before=0, after=0, frames=len(frames), log=LOG,
                          label="bench")
    start = time.perf_counter()
    out = [frame for frame, _ in stage.feed(frames, len(frames))] + [frame for frame, _ in stage.flush()]
    return torch.cat(out), time.perf_counter() - start


def time_stage(size: str, device: str, frames: int, strength: float) -> None:
    """Frames per second of the stage alone (TemporalStage over the Runner) at `size` on `device`, at the
    precision `auto` proves there; the first window (loading, proving, cuDNN tuning) is not counted."""
    from types import SimpleNamespace

    from remaster.frames.temporal import load_stage_network
    from remaster.models.devices import Device, resolve
    from remaster.run.settings import TemporalSettings

    width, height = map(int, size.split("x"))
    where = resolve(device)
    kit = Device(where)
    settings = SimpleNamespace(temporal=TemporalSettings(strength=strength, weights=WEIGHTS), precision="auto")
    network = load_stage_network(settings, where, LOG)
    upscaled = torch.rand((frames + 6, 3, height, width), generator=torch.Generator().manual_seed(0)).to(where)
    stage = TemporalStage(network, (height, width), before=3, after=3, frames=frames, log=LOG, label="bench")
    done, start = 0, None
    with torch.inference_mode():
        for n in range(len(upscaled)):
            for _ in stage.feed(upscaled[n:n + 1], 1):
                done += 1
                if done == 1:
                    kit.synchronize()
                    start = time.perf_counter()
        for _ in stage.flush():
            done += 1
    kit.synchronize()
    seconds = time.perf_counter() - start
    print(f"TemporalFix {strength:g} at {width}x{height} on {kit} ({str(network.dtype).removeprefix('torch.')}, "
          f"tile {stage.runner.tile or 'none'}): {(done - 1) / seconds:.2f} fps over {done - 1} frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", default="384x256", help="the truth's size (multiples of 8)")
    parser.add_argument("--photos", nargs="*", default=["coffee.png", "rocket.jpg", "astronaut.png"])
    parser.add_argument("--strengths", nargs="*", type=float, default=[1.0, 2.0])
    parser.add_argument("--speeds", nargs="*", type=float, default=[0.0, 1.0], help="mean pans, truth pixels a frame")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time", metavar="WxH", help="only time the stage at this size (random frames)")
    parser.add_argument("--device", default="cpu", help="for --time: cpu, cuda, auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.time:
        time_stage(args.time, args.device, args.frames, (args.strengths or [1.0])[0])
        return
    width, height = map(int, args.size.split("x"))
    chain = load_chain([MODEL], device="cpu", precision="fp32")
    networks = {s: TemporalChain(load_temporalfix(WEIGHTS, s), torch.device("cpu"), torch.float32)
                for s in args.strengths}
    rows: dict[tuple[float, str], list[tuple[float, float, float]]] = {}
    stage_seconds, stage_frames = 0.0, 0
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        work = Path(folder)
        for speed in args.speeds:
            for photo in args.photos:
                truth = pan(PHOTOS / photo, args.frames, (width, height), speed)
                small = to_float(dvd_like(truth, work))
                outputs = {"bicubic (player)": F.interpolate(small, scale_factor=SCALE, mode="bicubic",
                                                             align_corners=False)}
                # no codec, no model: what is left of the temporal error is detail the half-size frames lack
                clean = F.interpolate(to_float(truth), scale_factor=1 / SCALE, mode="area")
                outputs["bicubic, no MPEG-2 (floor)"] = F.interpolate(clean, scale_factor=SCALE, mode="bicubic",
                                                                      align_corners=False)
                upscaled = torch.cat([run_chain(chain, small[n:n + 1], (height, width), 0, 16)
                                      for n in range(len(small))]).clamp(0, 1)
                outputs["model (Compact ×4 → ×2)"] = upscaled
                for strength, network in networks.items():
                    outputs[f"model + TemporalFix {strength:g}"], seconds = run_stage(network, upscaled)
                    stage_seconds, stage_frames = stage_seconds + seconds, stage_frames + len(upscaled)
                for name, frames in outputs.items():
                    out = to_uint8(frames)
                    score = (vmaf(out, truth, work), psnr(out, truth), temporal_error(out, truth))
                    rows.setdefault((speed, name), []).append(score)
                    print(f"{speed:g} px/frame {photo:14s} {name:26s} VMAF {score[0]:6.2f}  PSNR {score[1]:5.2f} dB  "
                          f"temporal error {score[2]:.3f}", flush=True)
    print(f"\nmeans of {len(args.photos)} clips × {args.frames} frames, truth {width}x{height}, input ×1/2 "
          "MPEG-2 q5:")
    for (speed, name), scores in rows.items():
        base = np.mean(rows[(speed, "model (Compact ×4 → ×2)")], axis=0)
        mean = np.mean(scores, axis=0)
        change = "" if not name.startswith("model +") else \
            f"  vs model: VMAF {mean[0] - base[0]:+.2f}, temporal error {100 * (mean[2] / base[2] - 1):+.1f}%"
        print(f"pan {speed:g} px/frame  {name:26s} VMAF {mean[0]:6.2f}  PSNR {mean[1]:5.2f} dB  "
              f"temporal error {mean[2]:.3f}{change}")
    if stage_frames:
        print(f"TemporalFix CPU speed at {width}x{height}: {stage_frames / stage_seconds:.2f} fps "
              f"({args.threads} threads, fp32, {stage_frames} frames)")


if __name__ == "__main__":
    main()
