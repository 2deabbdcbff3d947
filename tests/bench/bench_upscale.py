"""Benchmark remaster's upscale engine against the seed article's loop and against the model alone.

On the same frames and the same model (random weights, built with spandrel's architecture classes), in one
process, it times:

- seed_loop: a faithful copy of the loop from the article remaster started from (shared/seeds/000_*.txt):
  PIL reads a PNG per frame, ToTensor, fp32 batches of 2, ToPILImage, a JPEG at quality 100 per frame;
- pipeline: remaster's upscale job, `engine.upscale_file`, on an FFV1 shard made from the same frames;
- forward_only: the model alone at the pipeline's precision and batch, on frames already on the device.

The last two lines are `pipeline_vs_forward_only: <ratio>` and `pipeline_vs_seed_loop: <ratio>x`.

    .venv/bin/python tests/bench/bench_upscale.py --arch compact --size 320x240 --frames 20
    .venv/bin/python tests/bench/bench_upscale.py --arch swinir --size 640x480 --frames 200 --device cuda
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from remaster.demo import pan_frames  # noqa: E402
from remaster.frames import chains, convert, engine  # noqa: E402
from remaster.models.devices import describe  # noqa: E402
from remaster.models.loading import load_chain  # noqa: E402
from remaster.run.records import ShardResult  # noqa: E402
from remaster.run.settings import ModelStep, UpscaleSettings  # noqa: E402

FPS = "24000/1001"
MATRIX = "bt601"


def build_tiny_model(arch: str, scale: int) -> torch.nn.Module:
    """The architecture at a toy size (the same code paths, seconds on a CPU): for checking the script runs."""
    torch.manual_seed(0)
    if arch == "compact":
        from spandrel.architectures.Compact import Compact

        return Compact(num_feat=8, num_conv=2, upscale=scale)
    if arch == "span":
        from spandrel.architectures.SPAN import SPAN

        return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=scale)
    if arch == "esrgan":
        from spandrel.architectures.ESRGAN import ESRGAN

        return ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    if arch == "swinir":
        from spandrel.architectures.SwinIR import SwinIR

        return SwinIR(upscale=scale, img_size=16, window_size=8, embed_dim=12, depths=[2], num_heads=[2], mlp_ratio=1,
                      upsampler="nearest+conv", resi_connection="1conv")
    raise SystemExit(f"--arch {arch}: choose compact, span, esrgan or swinir")


def build_model(arch: str, scale: int) -> torch.nn.Module:
    """The architecture at its usual published size, with seeded random weights."""
    torch.manual_seed(0)
    if arch == "compact":  # realesr-animevideov3's shape
        from spandrel.architectures.Compact import Compact

        return Compact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=scale)
    if arch == "span":
        from spandrel.architectures.SPAN import SPAN

        return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=scale)
    if arch == "esrgan":  # RRDBNet, 23 blocks of 64 features
        from spandrel.architectures.ESRGAN import ESRGAN

        return ESRGAN(in_nc=3, out_nc=3, num_filters=64, num_blocks=23, scale=scale)
    if arch == "swinir":  # SwinIR-M, as in 003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x2_GAN
        from spandrel.architectures.SwinIR import SwinIR

        return SwinIR(upscale=scale, in_chans=3, img_size=64, window_size=8, img_range=1.0, depths=[6] * 6,
                      embed_dim=180, num_heads=[6] * 6, mlp_ratio=2, upsampler="nearest+conv",
                      resi_connection="1conv")
    raise SystemExit(f"--arch {arch}: choose compact, span, esrgan or swinir")


def make_inputs(workdir: Path, frames: int, size: tuple[int, int]) -> tuple[Path, Path]:
    """PNG frames (the seed's input) and an FFV1 shard of the same frames (the pipeline's input)."""
    png_dir = workdir / "frames_in"
    png_dir.mkdir()
    for index, image in enumerate(pan_frames(frames, size)):
        image.save(png_dir / f"file_{index:06d}.png")
    shard = workdir / "shard.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-framerate", FPS, "-i", str(png_dir / "file_%06d.png"),
                    "-vf", f"scale=out_color_matrix={MATRIX}:out_range=tv,format=yuv420p", "-c:v", "ffv1",
                    "-level", "3", "-g", "1", "-f", "matroska", str(shard)], check=True)
    return png_dir, shard


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0


def seed_loop(model_path: Path, images_path: Path, output_dir: Path, device: torch.device) -> float:
    """The article's script, unchanged but for the device (`.cuda()` → `.to(device)`); returns seconds."""
    from PIL import Image
    from spandrel import ImageModelDescriptor, ModelLoader
    from torchvision import transforms

    os.makedirs(output_dir, exist_ok=True)
    batch_size = 2
    batch_images = []
    output_format = "JPG"
    all_files = sorted([f for f in os.listdir(images_path) if os.path.isfile(os.path.join(images_path, f))])
    all_files_count = len(all_files)
    clean_cache = 0
    model = ModelLoader().load_from_file(str(model_path))
    assert isinstance(model, ImageModelDescriptor)
    model.to(device).eval()
    with torch.no_grad():  # warm-up outside the timing, as for the other two measurements
        model(torch.zeros(batch_size, 3, 64, 64, device=device))
    sync(device)

    def save_image(image_name, output_tensor):
        output_image = transforms.ToPILImage()(output_tensor.cpu().clamp(0, 1))
        output_path = os.path.join(output_dir, f"{image_name}.{output_format.lower()}")
        fmt = output_format.upper()
        if fmt == "PNG":
            output_image.save(output_path, format="PNG")
        elif fmt == "JPG":
            output_image.save(output_path, format="JPEG", quality=100)
        else:
            raise ValueError(f"format: {output_format!r}")

    start = time.monotonic()
    for idx, image_in in enumerate(all_files):
        image_path = os.path.join(images_path, image_in)
        image_name = os.path.splitext(image_in)[0]
        image = Image.open(image_path).convert("RGB")
        input_tensor = transforms.ToTensor()(image).unsqueeze(0).to(device)
        batch_images.append({"image_name": image_name, "input_tensor": input_tensor})
        if len(batch_images) == batch_size or idx == all_files_count - 1:
            try:
                if clean_cache:
                    torch.cuda.empty_cache()
                if device.type == "cuda":  # the article's memory check (CUDA only)
                    required_memory = sum(item["input_tensor"].element_size() * item["input_tensor"].nelement()
                                          for item in batch_images)
                    free_memory = torch.cuda.memory_reserved(0) - torch.cuda.memory_allocated(0)
                    if free_memory < required_memory:
                        raise RuntimeError("CUDA out of memory")
                batch_tensor = torch.cat([item["input_tensor"] for item in batch_images], dim=0)
                with torch.no_grad():
                    output_tensor = model(batch_tensor)
                for i, item in enumerate(batch_images):
                    save_image(item["image_name"], output_tensor[i])
            except RuntimeError as e:
                if "CUDA out of memory" in str(e):
                    for item in batch_images:
                        with torch.no_grad():
                            output_tensor = model(item["input_tensor"])
                        save_image(item["image_name"], output_tensor[0])
                else:
                    raise
            finally:
                batch_images.clear()
    sync(device)
    seconds = time.monotonic() - start
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds


def pipeline(chain, shard: Path, out: Path, frames: int, settings: UpscaleSettings, threads: int,
             log: logging.Logger) -> tuple[float, ShardResult]:
    """remaster's upscale job on the shard; returns (seconds without the warm-up, the job's result)."""
    out.unlink(missing_ok=True)
    start = time.monotonic()
    result = engine.upscale_file(shard, out, expected_frames=frames, fps=FPS, matrix=MATRIX, settings=settings,
                                 label="bench", log=log, threads=threads, chain=chain)
    return time.monotonic() - start - result.warmup_seconds, result


def forward_only(chain, png_dir: Path, batch_size: int, pad: bool) -> float:
    """Seconds the chain alone takes over the same frames, in the pipeline's batches, inputs on the device."""
    from PIL import Image

    images = [torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).copy())
              for p in sorted(png_dir.iterdir())]
    batches = []
    for first in range(0, len(images), batch_size):
        frames = torch.stack(images[first:first + batch_size])
        if pad and len(frames) < batch_size:
            frames = torch.cat([frames, frames[-1:].expand(batch_size - len(frames), *frames.shape[1:])])
        batch = frames.to(chain.device).permute(0, 3, 1, 2).to(chain.dtype).div_(255)
        batches.append(batch.contiguous(memory_format=torch.channels_last))
    with torch.inference_mode():
        chain(batches[0])  # warm-up
        sync(chain.device)
        start = time.monotonic()
        for batch in batches:
            chain(batch)
        sync(chain.device)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="compact", choices=["compact", "span", "esrgan", "swinir"])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--size", default="320x240", help="source frame size WxH (default 320x240)")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--batch", default="auto", help="pipeline batch size (auto: the engine's choice)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the chain (config compile: true)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time the three parts this many times, interleaved; report medians")
    parser.add_argument("--verbose", action="store_true", help="show the engine's log")
    parser.add_argument("--tiny-model", action="store_true",
                        help="the architecture at a toy size (checks the script, measures nothing worth keeping)")
    parser.add_argument("--skip-seed", action="store_true",
                        help="do not time the seed loop (SwinIR unpatched takes many minutes on a GPU)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s",
                        stream=sys.stderr)
    log = logging.getLogger("bench")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench_upscale_") as tmp:
        workdir = Path(tmp)
        model_path = workdir / f"{args.arch}_x{args.scale}.safetensors"
        build = build_tiny_model if args.tiny_model else build_model
        save_file({k: v.contiguous() for k, v in build(args.arch, args.scale).state_dict().items()},
                  str(model_path))
        png_dir, shard = make_inputs(workdir, args.frames, (width, height))
        settings = UpscaleSettings(models=(ModelStep(model_path),), device=args.device, precision=args.precision,
                                   batch_size=None if args.batch == "auto" else int(args.batch),
                                   compile=args.compile)
        chain = load_chain([model_path], device=args.device, precision=args.precision, log=log)  # the run path's loader
        device = chain.device
        prepared = chains.prepare_chain(chain, compile=args.compile, log=log)
        if not args.compile:  # first-call set-up outside the timing, as for the other two (compile: the engine's)
            with torch.inference_mode():
                convert.process(prepared, torch.zeros((1, height, width, 3), dtype=torch.uint8, device=device),
                               (height * args.scale, width * args.scale), 0, 0)
        runs: list[tuple[float, float, float]] = []  # seconds of (seed loop, pipeline, forward only)
        seed_peak = pipe_peak = fwd_peak = 0.0
        result = None
        for run in range(args.repeat):
            reset_peak(device)
            seed_run = (float("nan") if args.skip_seed
                        else seed_loop(model_path, png_dir, workdir / "frames_upscaled", device))
            seed_peak = max(seed_peak, peak_gib(device))
            reset_peak(device)
            pipe_run, result = pipeline(prepared, shard, workdir / "out.mkv", args.frames, settings, args.threads, log)
            pipe_peak = max(pipe_peak, peak_gib(device))
            reset_peak(device)
            fwd_run = forward_only(prepared, png_dir, result.batch_size, args.compile)
            fwd_peak = max(fwd_peak, peak_gib(device))
            runs.append((seed_run, pipe_run, fwd_run))
            print(f"run {run + 1}: seed_loop {args.frames / seed_run:.3f} fps, pipeline {args.frames / pipe_run:.3f} "
                  f"fps, forward_only {args.frames / fwd_run:.3f} fps", file=sys.stderr)

    name = describe(device) if device.type != "cpu" else f"CPU, {args.threads} threads"
    print(f"device: {name}; torch {torch.__version__}")
    # the precision the run path proved for the step (auto: fp16 → bf16 → fp32, the first that runs)
    print(f"model: {args.arch} ×{args.scale} ({chains.chain_name(chain)}), {str(chain.dtype).removeprefix('torch.')}"
          f"{', compiled' if args.compile else ''}; {args.frames} frames {width}x{height} → "
          f"{result.width}x{result.height}; pipeline batch {result.batch_size}, tile {result.tile or 'none'}")
    if args.compile or device.type == "cuda":
        print(f"pipeline_warmup_s: {result.warmup_seconds:.1f}")
    # medians over the runs; each ratio is the median of the runs' own ratios, so a burst of load from
    # other jobs that slows one part of one run does not decide it
    seed_fps, pipe_fps, fwd_fps = (args.frames / statistics.median(part) for part in zip(*runs))
    vs_forward = statistics.median(fwd / pipe for _, pipe, fwd in runs)
    vs_seed = statistics.median(seed / pipe for seed, pipe, _ in runs)
    print(f"seed_loop_fps: {seed_fps:.3f}")
    print(f"pipeline_fps: {pipe_fps:.3f}")
    print(f"forward_only_fps: {fwd_fps:.3f}")
    if device.type == "cuda":
        print(f"peak_gpu_memory_gib: seed_loop {seed_peak:.2f}, pipeline {pipe_peak:.2f}, forward_only {fwd_peak:.2f}")
    print(f"pipeline_vs_forward_only: {vs_forward:.3f}")
    print("pipeline_vs_seed_loop: skipped" if args.skip_seed else f"pipeline_vs_seed_loop: {vs_seed:.2f}x")


if __name__ == "__main__":
    main()
