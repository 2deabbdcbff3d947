"""Helpers of the tests: the repository, small real spandrel models, running the workflow as a user does, and
reading what it made (frame counts, streams, hashes)."""


from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "resources" / "models"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def make_compact(path: Path, *, scale: int = 2, num_feat: int = 8, num_conv: int = 2, seed: int = 0) -> Path:
    """A real spandrel architecture (Compact) with small seeded weights, saved as safetensors."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    model = Compact(num_feat=num_feat, num_conv=num_conv, upscale=scale)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def write_config(workdir: Path, **config) -> Path:
    """A complete config for one disc in `workdir`/config/config.yaml (the workflow's default place)."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    path = workdir / "config" / "config.yaml"
    path.write_text(yaml.safe_dump({k: (str(v) if isinstance(v, Path) else v) for k, v in config.items()}))
    return path


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` as a user would, with the repository's Snakefile."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """The jobs a dry run would execute, by rule ({} when there is nothing to do)."""
    result = snakemake(workdir, "-n", *args)
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    return job_stats(text)


def job_stats(text: str) -> dict[str, int]:
    """The 'Job stats' table of a run's or dry run's console output, by rule."""
    table = text.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match or match.group(1) == "total":
            break
        jobs[match.group(1)] = int(match.group(2))
    return jobs


def ffprobe(path: Path, *args: str) -> str:
    return subprocess.run(["ffprobe", "-v", "error", *args, f"file:{path}"], capture_output=True, text=True,
                          check=True).stdout


def frame_count(path: Path) -> int:
    return int(ffprobe(path, "-select_streams", "v:0", "-count_frames", "-show_entries",
                       "stream=nb_read_frames", "-of", "csv=p=0").strip().rstrip(","))


def stream_bytes(path: Path, stream: str, fmt: str) -> bytes:
    """One stream's packets, copied without re-encoding, as raw bytes."""
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"file:{path}", "-map", stream, "-c", "copy",
                           "-f", fmt, "pipe:1"], capture_output=True, check=True).stdout


def frame_hashes(path: Path) -> list[str]:
    """md5 of every decoded frame, for frame-for-frame comparisons."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"file:{path}", "-map", "0:v:0",
                          "-f", "framemd5", "pipe:1"], capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
