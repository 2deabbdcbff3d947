"""What only a GPU can show: pinned buffers and events on cuda:0 and cuda:1, OOM recovery under a memory
cap, torch.compile on CUDA, bf16 support as the device reports it. Skipped without CUDA.

    .venv/bin/python -m pytest tests/test_gpu.py -m gpu -q
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from remaster.frames import engine
from remaster.models import loading as models
from remaster.models.devices import Device
from remaster.run.settings import ModelStep, UpscaleSettings
from support.workflow import make_compact

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

LOG = logging.getLogger("test_gpu")
FRAMES, WIDTH, HEIGHT = 24, 96, 64


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gpu") / "shard.mkv"
    pattern = (f"color=c=gray:s={WIDTH}x{HEIGHT}:r=24,format=yuv420p,"
               "geq=lum='mod(3*X+5*Y+17*N,256)':cb='mod(X+9*N,256)':cr='mod(2*Y+11*N,256)'")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", pattern, "-frames:v", str(FRAMES),
                    "-pix_fmt", "yuv420p", "-c:v", "ffv1", "-f", "matroska", str(path)], check=True)
    return path


def decoded16(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
                          "rgb48le", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<u2").reshape(FRAMES, HEIGHT * 2, WIDTH * 2, 3).astype(np.int64)


def upscale(shard: Path, out: Path, model: Path, device: str, **options):
    settings = UpscaleSettings(models=(ModelStep(model, precision="fp32"),), device=device, **options)
    return engine.upscale_file(shard, out, expected_frames=FRAMES, fps="24", matrix="bt601", settings=settings,
                               label="gpu", log=LOG)


def devices() -> list[str]:
    return [f"cuda:{index}" for index in range(min(torch.cuda.device_count(), 2))]


@pytest.mark.parametrize("device", devices())
def test_pinned_buffers_and_events_give_the_cpu_frames(shard, tmp_path, device):
    """Small batches and a short queue make the reader refill pinned buffers as fast as it can: a copy
    recorded on the wrong device's stream would let it overwrite a buffer mid-copy."""
    model = make_compact(tmp_path / "c.safetensors")
    upscale(shard, tmp_path / "cpu.mkv", model, "cpu", batch_size=1)
    result = upscale(shard, tmp_path / "gpu.mkv", model, device, batch_size=2, queue_frames=2)
    assert result.device == device and result.frames == FRAMES
    difference = np.abs(decoded16(tmp_path / "gpu.mkv") - decoded16(tmp_path / "cpu.mkv"))
    # fp32 on both, TF32 allowed on the GPU: a few 16-bit codes, never a whole frame gone wrong
    assert difference.max() <= 64 and difference.mean() < 4


def test_out_of_memory_under_a_cap_recovers_with_every_frame(shard, tmp_path):
    model = make_compact(tmp_path / "c.safetensors", num_feat=64, num_conv=16)
    free, _ = torch.cuda.mem_get_info(0)
    torch.cuda.set_per_process_memory_fraction(0.02 if free > 40 * 2**30 else 0.1, 0)
    try:
        result = upscale(shard, tmp_path / "capped.mkv", model, "cuda:0", batch_size=16)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
    assert result.frames == FRAMES


def test_compile_runs_on_cuda(shard, tmp_path):
    model = make_compact(tmp_path / "c.safetensors")
    plain = upscale(shard, tmp_path / "plain.mkv", model, "cuda:0", batch_size=4)
    compiled = upscale(shard, tmp_path / "compiled.mkv", model, "cuda:0", batch_size=4, compile=True)
    assert compiled.frames == plain.frames == FRAMES
    assert np.abs(decoded16(tmp_path / "plain.mkv") - decoded16(tmp_path / "compiled.mkv")).max() <= 64


def test_auto_precision_asks_the_gpu_about_bf16(tmp_path):
    path = make_compact(tmp_path / "c.safetensors")
    descriptor = models.load_model(path)
    candidates = models.candidate_dtypes(descriptor, torch.device("cuda:0"))
    assert candidates[0] == torch.float16 and candidates[-1] == torch.float32
    assert (torch.bfloat16 in candidates) == torch.cuda.is_bf16_supported(including_emulation=False)
    assert Device(torch.device("cuda:0")).supports(torch.float16)
