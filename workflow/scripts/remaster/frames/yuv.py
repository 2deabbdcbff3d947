"""The model's float RGB to the upscaled shard's 10-bit 4:2:0 YUV, on the model's own device.

The shard writer stores yuv420p10le (BT.709 matrix, limited range). Converting there, in torch, sends
3 bytes a pixel down the pipe instead of rgb48's 6 and spares ffmpeg's swscale, the slowest stage of
the writer (tests/bench/bench_stages.py measures both). Float in, 10-bit codes out: the model's output
reaches the master with no 8- or 16-bit step in between.

Chroma is the mean of each 2×2 block (centre-sited), as ffmpeg's swscale gave the shards before (measured:
within 5 codes of its output on a smooth picture). Luma is BT.709's formula exactly: white is 940, where
swscale's rgb48 path gives 943 (a scaling error of 0.3%), so masters made since differ by up to 3 codes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

KR, KB = 0.2126, 0.0722  # BT.709
KG = 1 - KR - KB
Y_RANGE, Y_ZERO = 876, 64  # limited range, 10-bit
C_RANGE, C_ZERO = 896, 512


def even(value: float) -> int:
    """Nearest even integer ≥ 2: 4:2:0 video needs even sizes."""
    return max(2, int(round(value / 2)) * 2)


def frame_words(width: int, height: int) -> int:
    """16-bit words of one yuv420p10le frame."""
    return width * height + 2 * (width // 2) * (height // 2)


@lru_cache(maxsize=8)
def _matrix(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB → (Y, Cb, Cr) already in 10-bit codes, as a 1×1 convolution's weight and bias (one pass); made
    once per device, not copied to the GPU again for every batch (never modified: callers only read it)."""
    y = (KR, KG, KB)
    cb = tuple((b - v) / (2 * (1 - KB)) for b, v in zip((0, 0, 1), y))
    cr = tuple((r - v) / (2 * (1 - KR)) for r, v in zip((1, 0, 0), y))
    weight = torch.tensor([[Y_RANGE * c for c in y], [C_RANGE * c for c in cb], [C_RANGE * c for c in cr]],
                          dtype=torch.float32, device=device).view(3, 3, 1, 1)
    return weight, torch.tensor([Y_ZERO, C_ZERO, C_ZERO], dtype=torch.float32, device=device)


def rgb_to_yuv420p10(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float RGB (values outside [0, 1] clipped) → (N, words) uint16 yuv420p10le, H and W even,
    on rgb's device."""
    count = rgb.shape[0]
    weight, bias = _matrix(rgb.device)
    codes = F.conv2d(rgb.float().clamp(0, 1), weight, bias)  # Y, Cb, Cr in codes, unrounded
    chroma = F.avg_pool2d(codes[:, 1:], 2)  # linear: the mean of codes is the code of the mean
    planes = torch.cat((codes[:, :1].reshape(count, -1), chroma.reshape(count, -1)), 1)
    return planes.round_().to(torch.int16).view(torch.uint16)  # 0..1023 fits either; int16 casts everywhere


def host_rgb_to_yuv420p10(rgb: np.ndarray) -> np.ndarray:
    """`rgb_to_yuv420p10` in numpy, single-threaded: the CPU job converts in its writer thread, beside the
    model, without a parallel region of torch's that would stall on cores the model holds."""
    weight, bias = (t.numpy() for t in _matrix(torch.device("cpu")))
    weight = weight.reshape(3, 3)
    rgb = np.clip(rgb, 0, 1, dtype=np.float32)
    count, _, height, width = rgb.shape
    out = np.empty((count, frame_words(width, height)), dtype=np.uint16)
    luma = height * width
    for row, (plane, start) in enumerate(((0, 0), (1, luma), (2, luma + luma // 4))):
        codes = rgb[:, 0] * weight[row, 0] + rgb[:, 1] * weight[row, 1] + rgb[:, 2] * weight[row, 2] + bias[row]
        if plane:
            codes = (codes[:, 0::2, 0::2] + codes[:, 1::2, 0::2] + codes[:, 0::2, 1::2] + codes[:, 1::2, 1::2]) / 4
        size = codes[0].size
        out[:, start:start + size] = np.rint(codes).reshape(count, -1)
    return out


def yuv420p10_to_rgb(frames: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(N, words) yuv420p10le → (N, 3, H, W) float RGB (for tests and checks; chroma upsampled by nearest)."""
    count = frames.shape[0]
    values = frames.to(torch.float32)
    y = (values[:, :width * height].reshape(count, 1, height, width) - Y_ZERO) / Y_RANGE
    chroma = (values[:, width * height:].reshape(count, 2, height // 2, width // 2) - C_ZERO) / C_RANGE
    chroma = chroma.repeat_interleave(2, 2).repeat_interleave(2, 3)
    cb, cr = chroma[:, :1], chroma[:, 1:]
    red = y + 2 * (1 - KR) * cr
    blue = y + 2 * (1 - KB) * cb
    green = (y - KR * red - KB * blue) / KG
    return torch.cat((red, green, blue), 1)
