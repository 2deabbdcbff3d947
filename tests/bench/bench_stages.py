"""The upscale job's ceiling per stage, each stage alone on this machine: how many frames a second it could
pass if the model were free.

- decode: the shard decoder (`commands.decoder_command`, FFV1 source → rgb24) into a pipe that is read;
- colour: float RGB → the writer's yuv420p10le, on `--device` with `yuv.rgb_to_yuv420p10` (what a GPU job
  runs), in numpy (what a CPU job's writer thread runs), and ffmpeg's swscale from rgb48le (what the
  writer ran before issue 22);
- pipe: frames of the output size through an OS pipe to a reader that discards them, as yuv420p10le and as
  rgb48le, with Linux's default 64 KiB pipe and with the job's 1 MiB (`pipes.widen_pipe`);
- writer: `commands.encoder_command` for each upscaled form fed yuv420p10le frames (threads as the job gives).

Prints `stage_fps: <stage> <fps>` per stage, then `ceiling_<form>: <slowest stage of the job as it runs> <fps>`
per upscaled form. Before issue 22 the writer was swscale and the encoder in one ffmpeg: its ceiling was
about 1 / (1 / colour_swscale_rgb48 + 1 / writer_<form>).

    .venv/bin/python tests/bench/bench_stages.py --size 720x480 --scale 2 --frames 48
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from remaster.frames import commands  # noqa: E402
from remaster.frames.yuv import even, host_rgb_to_yuv420p10, rgb_to_yuv420p10  # noqa: E402
from remaster.models.devices import Device, resolve  # noqa: E402
from remaster.run import media, pipes  # noqa: E402


def make_source(path: Path, width: int, height: int, frames: int) -> Path:
    """A moving test pattern as an FFV1 shard, like a prepared title's."""
    subprocess.run(media.ffmpeg_args("-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r=24", "-frames:v",
                                     str(frames), "-pix_fmt", "yuv420p", "-c:v", "ffv1", "-f", "matroska",
                                     str(path)), check=True, capture_output=True)
    return path


def timed_read(command: list[str], frame_bytes: int, *, widen: bool = True) -> tuple[float, int]:
    """(seconds, frames) for reading every frame a command writes to its stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if widen:
        pipes.widen_pipe(proc.stdout)
    buffer = memoryview(bytearray(frame_bytes))
    frames = 0
    while pipes.read_into(proc.stdout, buffer) == frame_bytes:
        frames += 1
    proc.stdout.close()
    proc.wait()
    return time.perf_counter() - start, frames


def timed_write(command: list[str], pictures: list[bytes], frames: int, *, widen: bool) -> float:
    """Seconds to write `frames` frames (cycling through `pictures`) into a command's stdin until it ends."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if widen:
        pipes.widen_pipe(proc.stdin)
    start = time.perf_counter()
    for number in range(frames):
        proc.stdin.write(pictures[number % len(pictures)])
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"bench_stages: {command[0]} failed")
    return time.perf_counter() - start


def colour_on_device(width: int, height: int, frames: int, batch: int, device: torch.device) -> float:
    kit = Device(device)
    rgb = torch.rand(batch, 3, height, width, device=device)
    rgb_to_yuv420p10(rgb)  # warm-up (kernels, allocator)
    kit.synchronize()
    start = time.perf_counter()
    done = 0
    while done < frames:
        out = rgb_to_yuv420p10(rgb)
        done += batch
    if device.type != "cpu":
        out.cpu()
    kit.synchronize()
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="720x480", help="source frame size WxH (default 720x480, a DVD's)")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--device", default="cpu", help="where the colour conversion runs: cpu, cuda, auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    out_w, out_h = even(width * args.scale), even(height * args.scale)
    device = resolve(args.device)
    results: dict[str, float] = {}

    def report(stage: str, fps: float) -> None:
        results[stage] = fps
        print(f"stage_fps: {stage} {fps:.1f}", flush=True)

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; source {width}x{height} → {out_w}x{out_h}, {args.frames} frames; "
          f"colour on {device}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_stages_") as folder:
        folder = Path(folder)
        source = make_source(folder / "source.mkv", width, height, args.frames)
        seconds, frames = timed_read(commands.decoder_command(source, "bt601"), width * height * 3)
        report("decode", frames / seconds)
        # what a model gives: the source's pictures, upscaled (a moving pattern, no two frames alike)
        raw = subprocess.run(commands.decoder_command(source, "bt601"), capture_output=True, check=True).stdout
        decoded = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, height, width, 3)[:12]
        upscaled = F.interpolate(decoded.permute(0, 3, 1, 2).float() / 255, size=(out_h, out_w), mode="bilinear",
                                 align_corners=False).clamp(0, 1)
        yuv = [bytes(rgb_to_yuv420p10(frame[None]).numpy()) for frame in upscaled]
        rgb48 = [bytes(frame.mul(65535).round().permute(1, 2, 0).to(torch.int32).numpy().astype("<u2"))
                 for frame in upscaled]

        report(f"colour_torch_{device.type}", colour_on_device(out_w, out_h, args.frames, 4, device))
        host = upscaled[:4].numpy()
        start = time.perf_counter()
        host_rgb_to_yuv420p10(host)
        report("colour_numpy_cpu", len(host) / (time.perf_counter() - start))  # what the CPU job's writer runs
        swscale = media.ffmpeg_args("-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{out_w}x{out_h}", "-i", "pipe:0",
                                    "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd+"
                                    "full_chroma_int,format=yuv420p10le", "-f", "null", "-")
        report("colour_swscale_rgb48", args.frames / timed_write(swscale, rgb48, args.frames, widen=True))

        discard = [sys.executable, "-c",
                   "import os, shutil, sys; shutil.copyfileobj(sys.stdin.buffer, open(os.devnull, 'wb'), 1 << 20)"]
        pipe_frames = max(args.frames, 24)
        for name, pictures in (("yuv420p10", yuv), ("rgb48", rgb48)):
            for widen, label in ((False, "64k"), (True, "1m")):
                report(f"pipe_{name}_{label}", pipe_frames / timed_write(discard, pictures, pipe_frames, widen=widen))

        for form in commands.UPSCALED_FORMS:
            command = commands.encoder_command(folder / f"{form}.mkv", out_w, out_h, "24000/1001", form=form)
            report(f"writer_{form}", args.frames / timed_write(command, yuv, args.frames, widen=True))
            (folder / f"{form}.mkv").unlink(missing_ok=True)
    # the conversion a job runs: torch on its GPU, numpy in a CPU job's writer thread
    colour = "colour_numpy_cpu" if device.type == "cpu" else f"colour_torch_{device.type}"
    job = {stage: results[stage] for stage in ("decode", colour, "pipe_yuv420p10_1m")}
    for form in commands.UPSCALED_FORMS:
        stages = {**job, f"writer_{form}": results[f"writer_{form}"]}
        slowest = min(stages, key=stages.get)
        print(f"ceiling_{form}: {slowest} {stages[slowest]:.1f}")
    return results


if __name__ == "__main__":
    main()
