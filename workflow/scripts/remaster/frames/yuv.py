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

import torch
import torch.nn.functional as F

KR, KB = 0.2126, 0.0722  # BT.709
KG = 1 - KR - KB
Y_RANGE, Y_ZERO = 876, 64  # limited range, 10-bit
C_RANGE, C_ZERO = 896, 512


def frame_words(width: int, height: int) -> int:
    """16-bit words of one yuv420p10le frame."""
    return width * height + 2 * (width // 2) * (height // 2)


def rgb_to_yuv420p10(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float RGB (values outside [0, 1] clipped) → (N, words) uint16 yuv420p10le, H and W even,
    on rgb's device."""
    count, _, height, width = rgb.shape
    rgb = rgb.float().clamp(0, 1)
    red, green, blue = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = KR * red + KG * green + KB * blue
    cb = (blue - y) / (2 * (1 - KB))
    cr = (red - y) / (2 * (1 - KR))
    chroma = F.avg_pool2d(torch.cat((cb, cr), 1), 2)
    y10 = y.mul_(Y_RANGE).add_(Y_ZERO).round_()
    c10 = chroma.mul_(C_RANGE).add_(C_ZERO).round_()
    planes = torch.cat((y10.reshape(count, -1), c10.reshape(count, -1)), 1)
    return planes.to(torch.int16).view(torch.uint16)  # 0..1023 fits either; int16 casts on every device


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
