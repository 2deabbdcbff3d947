"""Benchmark the interpolation stage: RIFE 4.6 (random weights at the real widths) over one FFV1 shard.

It times `interpolate.interpolate_file` (decode, scene checks, RIFE, encode: the interpolate_shard job) and the
model alone on frames already on the device, and prints one line each:

    .venv/bin/python tests/bench/bench_interpolate.py --size 320x240 --frames 6
    .venv/bin/python tests/bench/bench_interpolate.py --size 1280x960 --frames 200 --device cuda
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from remaster.frames import interpolate  # noqa: E402
from remaster.models.rife import IFNet  # noqa: E402
from remaster.run.settings import InterpolateSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x960")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=10, help="time the model alone for at most this long")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("bench_interpolate")
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "rife46.pkl"
        torch.manual_seed(0)
        torch.save(IFNet().state_dict(), weights)
        shard = Path(tmp) / "0000.mkv"
        rng = np.random.default_rng(0)
        base = rng.integers(64, 940, (height, width + args.frames * 4))
        frames = [np.concatenate([base[:, 4 * k:4 * k + width].ravel(),
                                  np.full(width * height // 2, 512)]).astype(np.uint16) for k in range(args.frames)]
        subprocess.run(interpolate.encoder_command(shard, width, height, "24000/1001"),
                       input=b"".join(f.tobytes() for f in frames), check=True)
        settings = InterpolateSettings(factor=args.factor, model=weights, device=args.device,
                                       precision=args.precision, batch_size=args.batch)
        result = interpolate.interpolate_file(shard, Path(tmp) / "out.mkv", following=None,
                                              expected_frames=args.frames, fps="24000/1001", settings=settings,
                                              label="bench", log=log)
        model = interpolate.Interpolator(settings)
        a = torch.rand(model.batch_size, 3, height, width, device=model.device, dtype=model.dtype)
        model.model.eval()
        with torch.inference_mode():
            model.model(a, a, torch.full((len(a),), 0.5, device=model.device), model.scale)  # warm-up
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            start, pairs = time.monotonic(), 0
            while time.monotonic() - start < args.seconds and pairs < 200:
                model.model(a, a, torch.full((len(a),), 0.5, device=model.device), model.scale)
                pairs += len(a)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            forward = pairs / (time.monotonic() - start)
    print(f"pipeline: {result.fps:.2f} output fps ({result.interpolated} interpolated frames, {result.device}, "
          f"{result.dtype}, {width}x{height}, factor {args.factor})")
    print(f"forward_only: {forward:.2f} interpolated frames/s (batch {model.batch_size})")


if __name__ == "__main__":
    main()
