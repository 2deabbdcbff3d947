"""What only a GPU can show: pinned buffers and events on cuda:0 and cuda:1, OOM recovery under a memory
cap, torch.compile on CUDA, bf16 support as the device reports it. Skipped without CUDA.

    .venv/bin/python -m pytest tests/models/test_gpu.py -m gpu -q

Both comparisons of GPU and CPU output are made losslessly (FFV1, 10-bit codes compared as codes) with
TF32 off: one 10-bit code is ~64 sixteen-bit codes, so a TF32 rounding flip must not read as a fault.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from remaster.frames import budget, engine
from remaster.models import loading as models
from remaster.models import precision
from remaster.models.devices import Device
from remaster.run.settings import ModelStep, UpscaleSettings
from support.workflow import make_compact

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

LOG = logging.getLogger("test_gpu")
FRAMES, WIDTH, HEIGHT = 24, 96, 64


def make_shard(path: Path, width: int = WIDTH, height: int = HEIGHT, frames: int = FRAMES) -> Path:
    pattern = (f"color=c=gray:s={width}x{height}:r=24,format=yuv420p,"
               "geq=lum='mod(3*X+5*Y+17*N,256)':cb='mod(X+9*N,256)':cr='mod(2*Y+11*N,256)'")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", pattern, "-frames:v", str(frames),
                    "-pix_fmt", "yuv420p", "-c:v", "ffv1", "-f", "matroska", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    return make_shard(tmp_path_factory.mktemp("gpu") / "shard.mkv")


@pytest.fixture
def no_tf32():
    """fp32 on the GPU as on the CPU (TF32 rounds convolutions and matmuls to ~10 mantissa bits)."""
    # the legacy flags, as the engine sets them (torch 2.14 refuses to read them once the new API was used)
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def decoded10(path: Path) -> np.ndarray:
    """The stored 10-bit 4:2:0 codes themselves (no conversion back to RGB), one row per frame."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
                          "yuv420p10le", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<u2").reshape(FRAMES, -1).astype(np.int64)


def upscale(shard: Path, out: Path, model: Path, device: str, frames: int = FRAMES, **options):
    options.setdefault("form", "lossless")
    settings = UpscaleSettings(models=(ModelStep(model, precision="fp32"),), device=device, **options)
    return engine.upscale_file(shard, out, expected_frames=frames, fps="24", matrix="bt601", settings=settings,
                               label="gpu", log=LOG)


def devices() -> list[str]:
    return [f"cuda:{index}" for index in range(min(torch.cuda.device_count(), 2))]


@pytest.mark.parametrize("device", devices())
def test_pinned_buffers_and_events_give_the_cpu_frames(shard, tmp_path, device, no_tf32):
    """Small batches and a short queue make the reader refill pinned buffers as fast as it can: a copy
    recorded on the wrong device's stream would let it overwrite a buffer mid-copy (whole frames wrong)."""
    model = make_compact(tmp_path / "c.safetensors")
    upscale(shard, tmp_path / "cpu.mkv", model, "cpu", batch_size=1)
    result = upscale(shard, tmp_path / "gpu.mkv", model, device, batch_size=2, queue_frames=2)
    assert result.device == device and result.frames == FRAMES
    difference = np.abs(decoded10(tmp_path / "gpu.mkv") - decoded10(tmp_path / "cpu.mkv"))
    # fp32 on both, in another order of sums: a code at a rounding edge may flip by one, nothing more
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01, (difference.max(), (difference > 0).mean())


def test_out_of_memory_under_a_cap_recovers_with_every_frame(tmp_path, caplog):
    """The cap is set from what this model needs per frame: batch 16 cannot fit, a few frames can."""
    from remaster.models.devices import Device

    frames, width, height = 12, 640, 480
    shard = make_shard(tmp_path / "sd.mkv", width, height, frames)
    model = make_compact(tmp_path / "c.safetensors", num_feat=64, num_conv=16)
    chain = models.load_chain([model], device="cuda:0")
    with torch.inference_mode():
        frame_bytes = budget.peak_frame_bytes(chain, Device(chain.device), (height, width), (height * 2, width * 2), 0, 16)
    del chain
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    cap = torch.cuda.memory_reserved(0) + 4 * frame_bytes + 256 * 2**20  # 16 frames need ~16 × frame_bytes
    assert 16 * frame_bytes > cap, (frame_bytes, cap)
    torch.cuda.set_per_process_memory_fraction(cap / total, 0)
    try:
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            result = upscale(shard, tmp_path / "capped.mkv", model, "cuda:0", frames=frames, batch_size=16)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
    LOG.info("per frame %.0f MiB, cap %.0f MiB → batch %d", frame_bytes / 2**20, cap / 2**20, result.batch_size)
    assert "out of memory; retrying" in caplog.text  # recovery really ran
    assert result.frames == frames and result.batch_size < 16


def test_compile_runs_on_cuda(shard, tmp_path, no_tf32):
    model = make_compact(tmp_path / "c.safetensors")
    plain = upscale(shard, tmp_path / "plain.mkv", model, "cuda:0", batch_size=4)
    compiled = upscale(shard, tmp_path / "compiled.mkv", model, "cuda:0", batch_size=4, compile=True)
    assert compiled.frames == plain.frames == FRAMES
    difference = np.abs(decoded10(tmp_path / "plain.mkv") - decoded10(tmp_path / "compiled.mkv"))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_auto_precision_asks_the_gpu_about_bf16(tmp_path):
    path = make_compact(tmp_path / "c.safetensors")
    descriptor = models.load_model(path)
    candidates = precision.candidate_dtypes(descriptor, torch.device("cuda:0"))
    assert candidates[0] == torch.float16 and candidates[-1] == torch.float32
    assert (torch.bfloat16 in candidates) == torch.cuda.is_bf16_supported(including_emulation=False)
    assert Device(torch.device("cuda:0")).supports(torch.float16)
