"""Peak disk of a run: what every run kept before issue 15 against the default, and the choices between.

    .venv/bin/python tests/bench/bench_disk.py [--frames 112] [--shard-frames 8] [--cores 2] [--only before,default]

Makes a demo-like NTSC disc (720x480, 4:3: 1280x960 masters with a ×2 model) and runs the whole workflow on
it once per configuration, each in a fresh folder:

- before: keep_upscaled: true, upscaled_form: lossless (what every run kept before: the prepared title and
  every upscaled shard as 10-bit FFV1);
- lossless: keep_upscaled: false, upscaled_form: lossless (each FFV1 shard deleted once encoded);
- default: keep_upscaled: false, upscaled_form: compact (each x264 near-lossless shard deleted once encoded);
- kept_compact: keep_upscaled: true, upscaled_form: compact (every shard kept, near-lossless, to re-encode).

The bytes under the working folder are sampled every 0.1 s (the master and every step folder whose size
grows with the frames; the preview stills and report pages, a fixed few MB per master, are left out). Prints
each run's peak, the peak per 10,000 frames, its ratio to `before`, and the bytes per frame of each artefact
of the runs that keep their shards: the figures written in docs/benchmarks.md. The model is a small real
spandrel Compact with seeded weights (CPU speed); the film is `frames` long in `frames / shard_frames`
shards, the same shard count as a 140,000-frame film cut into 10,000-frame shards by default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "tests"))


# a master's folders whose size does not grow with its frames (six preview stills, report pages): left out
# of the peak, which is given per 10,000 frames
FIXED = {"preview", "summarize_run", "verify_master", "check_models"}


def tree_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # deleted between listing and stat: a temp file going away
    return total


def run(workdir: Path, config: dict, cores: int) -> tuple[int, float, dict]:
    """Run the workflow in `workdir`; the peak bytes under results/ and masters/ while it ran, the seconds,
    and what each step folder held at that peak."""
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    peak, at_peak = 0, {}
    done = threading.Event()

    def sample():
        nonlocal peak, at_peak
        while not done.is_set():
            results = workdir / "results"
            folders = {folder.name: tree_bytes(folder) for folder in results.glob("*/*")
                       if folder.is_dir() and folder.name not in FIXED}
            folders["master"] = tree_bytes(workdir / "masters")
            if sum(folders.values()) > peak:
                peak, at_peak = sum(folders.values()), folders
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    try:
        subprocess.run([str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"),
                        "-d", str(workdir), "--cores", str(cores), "--resources", "gpu=1", "--quiet"],
                       check=True, capture_output=True)
    finally:
        done.set()
        sampler.join()
    return peak, time.monotonic() - start, at_peak


def per_frame(folder: Path, pattern: str, frames: int) -> float:
    return sum(p.stat().st_size for p in folder.glob(pattern)) / frames


CONFIGURATIONS = {
    "before": {"keep_upscaled": True, "upscaled_form": "lossless"},
    "lossless": {"keep_upscaled": False, "upscaled_form": "lossless"},
    "default": {},
    "kept_compact": {"keep_upscaled": True, "upscaled_form": "compact"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=112)
    parser.add_argument("--shard-frames", type=int, default=8)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--only", default=",".join(CONFIGURATIONS),
                        help="comma-separated configurations to run: " + ", ".join(CONFIGURATIONS))
    args = parser.parse_args()
    names = [name for name in args.only.split(",") if name]
    unknown = set(names) - set(CONFIGURATIONS)
    if unknown:
        parser.error(f"--only: unknown configuration(s) {', '.join(sorted(unknown))}")
    from remaster.demo import make_disc
    from support.workflow import make_compact

    with tempfile.TemporaryDirectory(prefix="bench_disk_") as tmp:
        tmp = Path(tmp)
        disc = make_disc(tmp / "disc", frames=args.frames)
        model = make_compact(tmp / "x2.safetensors", scale=2)
        # the default encoder (x265 CRF 18 medium 10-bit): the deliverable's size is part of the default's peak
        config = {"source": str(disc), "output": "masters/film.mkv", "models": [str(model)],
                  "shard_frames": args.shard_frames}
        peaks = {}
        for name in names:
            workdir = tmp / name
            peak, seconds, at_peak = run(workdir, {**config, **CONFIGURATIONS[name]}, args.cores)
            results = workdir / "results" / "film"
            peaks[name] = peak
            ratio = f"  {peak / peaks['before']:4.0%} of before" if "before" in peaks else ""
            print(f"{name:13} peak {peak / 1e6:8.1f} MB  = {peak / args.frames * 10_000 / 1e9:6.2f} GB per "
                  f"10,000 frames  ({seconds:.0f} s){ratio}", flush=True)
            print("  at the peak: " + ", ".join(f"{folder} {size / 1e6:.1f} MB" for folder, size in
                                                sorted(at_peak.items(), key=lambda item: -item[1]) if size),
                  flush=True)
            if CONFIGURATIONS[name].get("keep_upscaled"):
                print(f"  per frame: prepared title {per_frame(results, 'prepare_title/*.mkv', args.frames) / 1e3:.0f} KB, "
                      f"upscaled shards {per_frame(results, 'upscale_shard/*.mkv', args.frames) / 1e3:.0f} KB, "
                      f"encoded shards {per_frame(results, 'encode_shard/*.mkv', args.frames) / 1e3:.0f} KB",
                      flush=True)
        print(f"({args.frames} frames in {-(-args.frames // args.shard_frames)} shards)")


if __name__ == "__main__":
    main()
