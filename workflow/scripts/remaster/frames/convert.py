"""Decoded frames to a model's input, a batch through the chain, and its float output back to frames.

On a device the conversions run there (`to_model`, `to_frames`; the writer's YUV is `yuv.rgb_to_yuv420p10`);
on the CPU they run in numpy in the reader and writer threads (`host_to_model`, `host_to_yuv`). `process`
is one batch through all three steps: what the memory probe measures and the tests compare.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .yuv import host_rgb_to_yuv420p10

OUTPUT_MAX = 65535  # 16-bit RGB frames (`to_frames`: the memory probe and tests)


def to_model(frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """uint8 NHWC frames → NCHW channels-last `dtype` in [0, 1], on the frames' device."""
    # NHWC permuted to NCHW is already channels-last in memory: the conversion copies nothing twice
    return frames.permute(0, 3, 1, 2).to(dtype).div_(255).contiguous(memory_format=torch.channels_last)


def run_chain(chain, batch: torch.Tensor, size: tuple[int, int], tile: int, overlap: int) -> torch.Tensor:
    """The chain over a float batch (its tileable steps tiled when `tile`), resized to `size` (h, w) if the
    chain overshoots."""
    result = chain(batch, tile=tile, overlap=overlap)
    if tuple(result.shape[-2:]) != size:
        # the chain overshoots the asked scale (a ×4 model on a ×2 job): resize once, with antialiasing
        result = F.interpolate(result.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
    return result


def to_frames(result: torch.Tensor) -> torch.Tensor:
    """NCHW float in [0, 1] → 16-bit NHWC frames (rounded half to even), on the result's device."""
    values = result.float() if result.dtype != torch.float32 else result
    return values.clamp(0, 1).mul_(OUTPUT_MAX).round_().to(torch.uint16).permute(0, 2, 3, 1).contiguous()


def to_frames8(result: torch.Tensor) -> torch.Tensor:
    """NCHW float in [0, 1] → uint8 NHWC frames, for pictures (previews), not for the master."""
    values = result.float() if result.dtype != torch.float32 else result
    return values.clamp(0, 1).mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def process(chain, frames: torch.Tensor, size: tuple[int, int], tile: int, overlap: int) -> torch.Tensor:
    """uint8 NHWC frames in, 16-bit NHWC frames of `size` (h, w) out, on the chain's device."""
    return to_frames(run_chain(chain, to_model(frames, chain.dtype), size, tile, overlap))


# On the CPU the conversions run in numpy in the reader and writer threads: single-threaded, beside the
# model, instead of as small parallel regions between its layers (each a stall when cores are contended).
def host_to_model(frames: np.ndarray) -> torch.Tensor:
    """uint8 NHWC frames → float32 NCHW channels-last in [0, 1] (what `to_model` gives, in numpy)."""
    return torch.from_numpy(np.divide(frames, np.float32(255), dtype=np.float32)).permute(0, 3, 1, 2)


def host_to_yuv(result: torch.Tensor) -> np.ndarray:
    """CPU NCHW float in [0, 1] → yuv420p10le words, the values `rgb_to_yuv420p10` gives on a device (numpy,
    single-threaded: torch's parallel regions here would stall on the cores the model holds)."""
    return host_rgb_to_yuv420p10(result.float().numpy())
