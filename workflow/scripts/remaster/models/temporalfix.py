"""TemporalFix (pifroggi, Apache-2.0), written for remaster: a small network that steadies per-frame upscales.

The architecture is `vs_temporalfix/models/temporalfix_arch.py` of the `vs-temporalfix` wheel (2.4.1), with
its module names, so the wheel's four state dicts (converted to safetensors at set-up by
`remaster.models.bundled`) load as they are. Flow prediction and masking follow RIFE. For each frame it sees
a 7-frame window (3 before, the frame, 3 after):

- `encode` (Head) gives every frame 4 feature channels;
- `aligner` estimates, coarse to fine at 1/8, 1/4 and 1/2 of the frame, a flow from the centre frame to
  each of the 6 others, a raw confidence and a latent (three MCBlocks, depthwise residuals in the finer two),
  and warps each neighbour onto the centre at full size;
- `conf_head` refines the confidence at half size from the centre, the warped neighbour and their features;
- the output is the centre averaged with the warped neighbours it trusts: a sigmoid gate on the confidence
  (threshold 0.6), weights normalised with the centre's own weight of 1, and no change where fewer than one
  neighbour is trusted ("conservative temporal average").

Strength 0..3 picks the weights: an integer is one of the four files, a fraction linearly blends the two
around it (as the plugin does). tests/frames/test_temporal.py pins the output, bit for bit, to the
original code's on a small window (tests/data/temporalfix_reference.safetensors).

One deliberate difference: the sampling grids are computed in fp32 and cast once; the plugin's fp16 path
casts its fp32 grids to fp16 with the rest of the model, which puts the final full-size warp up to ~0.7
pixel off at 2880 pixels wide. In fp32 (the reference) the two are the same.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..run.errors import RemasterError, first_line

WINDOW = 7  # frames the network sees: RADIUS before the frame, the frame, RADIUS after
RADIUS = 3
STRENGTHS = (0, 1, 2, 3)  # the four weight files; 0 < strength < 1 blends s0 and s1
WEIGHT_FILES = {strength: f"temporalfix_s{strength}.safetensors" for strength in STRENGTHS}
SCALES = (8, 4, 2)  # the aligner's stages, coarse to fine
CONFIDENCE_SCALE = 2
SUPPORTS = (0, 1, 2, 4, 5, 6)  # the window's frames other than its centre
TIMES = (-1.0, -2.0 / 3.0, -1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)  # their distance from it, as the net sees it


def _scaled(size: tuple[int, int], scale: int) -> tuple[int, int]:
    return size if scale <= 1 else ((size[0] + scale - 1) // scale, (size[1] + scale - 1) // scale)


def _lowpass_weight(channels: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    kernel = torch.outer(taps, taps)
    return (kernel / kernel.sum()).view(1, 1, 5, 5).repeat(channels, 1, 1, 1).contiguous()


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize; a 5×5 binomial low-pass first when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if size[0] < x.shape[-2] or size[1] < x.shape[-1]:
        channels = int(x.shape[1])
        x = F.conv2d(x, _lowpass_weight(channels, device=x.device, dtype=x.dtype), stride=1, padding=2,
                     groups=channels)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(flow.shape[-2:]) == tuple(size):
        return flow
    old_h, old_w = flow.shape[-2:]
    flow = _resize(flow, size)
    return torch.cat((flow[:, 0:1] * (float(size[1]) / float(old_w)), flow[:, 1:2] * (float(size[0]) / float(old_h))),
                     dim=1)


def _expand(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A map constant over the frame (the time channel) at another size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return x[:, :, :1, :1].expand(-1, -1, size[0], size[1])


def _base_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    """Pixel centres in grid_sample's [-1, 1] coordinates, (1, 2, H, W), always computed in fp32."""
    horizontal = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) * (2.0 / width) - 1.0
    vertical = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) * (2.0 / height) - 1.0
    return torch.cat((horizontal.view(1, 1, 1, width).expand(1, -1, height, -1),
                      vertical.view(1, 1, height, 1).expand(1, -1, -1, width)), dim=1)


def warp(image: torch.Tensor, flow: torch.Tensor, *, fp32: bool = False) -> torch.Tensor:
    """`image` sampled at each pixel plus `flow` (pixels, x then y), bilinear, zeros outside."""
    flow = flow.float() if fp32 else flow
    height, width = flow.shape[-2:]
    base = _base_grid(height, width, flow.device).to(dtype=flow.dtype)
    grid = (base + torch.cat((flow[:, 0:1] * (2.0 / float(width)), flow[:, 1:2] * (2.0 / float(height))), dim=1)
            ).permute(0, 2, 3, 1)
    if fp32:
        return F.grid_sample(image.float(), grid.float(), mode="bilinear", padding_mode="zeros",
                             align_corners=False).to(dtype=image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _conv(in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, padding: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=True),
                         nn.LeakyReLU(0.2, True))


class Head(nn.Module):
    """4 feature channels per frame, computed at half size and resized back."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.proj = nn.Conv2d(16, 4, 3, 1, 1)
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.relu(self.cnn0(x))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return F.interpolate(self.proj(x), size=size, mode="bilinear", align_corners=False)


class ResConv(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones((1, channels, 1, 1)))
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class DSResConv(nn.Module):
    """ResConv with a depthwise 3×3 and a pointwise 1×1 in place of the full 3×3."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=True)
        self.pw = nn.Conv2d(channels, channels, 1, 1, 0, bias=True)
        self.beta = nn.Parameter(torch.ones((1, channels, 1, 1)))
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.pw(self.dw(x)) * self.beta + x)


class MCBlock(nn.Module):
    """One aligner stage: (flow update, confidence logit, latent) at its input's size, computed at 1/4 of it."""

    def __init__(self, in_planes: int, channels: int, residuals: int, depthwise: bool) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_planes, channels // 2, 3, 2, 1), _conv(channels // 2, channels, 3, 2, 1))
        block = DSResConv if depthwise else ResConv
        self.convblock = nn.Sequential(*(block(channels) for _ in range(residuals)))
        self.out_conv = nn.Conv2d(channels, 11, 3, 1, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None = None):
        size = x.shape[-2:]
        if flow is not None:
            x = torch.cat((x, flow), dim=1)
        out = F.interpolate(self.out_conv(self.convblock(self.conv0(x))), size=size, mode="bilinear",
                            align_corners=False)
        return out[:, :2], out[:, 2:3], out[:, 3:]


class Aligner(nn.Module):
    """Each neighbour warped onto the centre frame: (warped, valid mask, raw confidence logit, flow)."""

    def __init__(self, channels=(96, 64, 48), residuals: int = 4, depthwise=(False, True, True)) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MCBlock(15 if index == 0 else 26, width, residuals, dw)
                                    for index, (width, dw) in enumerate(zip(channels, depthwise)))

    def forward(self, center, support, f_center, f_support, delta_t):
        b, s, _, full_h, full_w = support.shape
        sizes = [_scaled((full_h, full_w), scale) for scale in SCALES]
        center_pyr = [_resize(center, size) for size in sizes]
        f_center_pyr = [_resize(f_center, size) for size in sizes]

        support_flat = support.reshape(b * s, 3, full_h, full_w)
        f_support_flat = f_support.reshape(b * s, 4, full_h, full_w)
        delta_flat = delta_t.reshape(b * s, 1, full_h, full_w)
        support_pyr, f_support_pyr, delta_pyr, support_feat_pyr = [], [], [], []
        for h, w in sizes:
            support_i = _resize(support_flat, (h, w)).reshape(b, s, 3, h, w)
            feat_i = _resize(f_support_flat, (h, w)).reshape(b, s, 4, h, w)
            support_pyr.append(support_i)
            f_support_pyr.append(feat_i)
            delta_pyr.append(_expand(delta_flat, (h, w)).reshape(b, s, 1, h, w))
            support_feat_pyr.append(torch.cat((support_i, feat_i), dim=2).reshape(b * s, 7, h, w))

        ones = support_flat.new_ones((b * s, 1, full_h, full_w))
        flow = conf_logit = latent = None
        for index, block in enumerate(self.blocks):
            h, w = sizes[index]
            center_i = center_pyr[index][:, None].expand(-1, s, -1, -1, -1).reshape(b * s, 3, h, w)
            f_center_i = f_center_pyr[index][:, None].expand(-1, s, -1, -1, -1).reshape(b * s, 4, h, w)
            support_i = support_pyr[index].reshape(b * s, 3, h, w)
            f_support_i = f_support_pyr[index].reshape(b * s, 4, h, w)
            delta_i = delta_pyr[index].reshape(b * s, 1, h, w)
            if flow is not None and tuple(flow.shape[-2:]) != (h, w):
                flow = _resize_flow(flow, (h, w))
                conf_logit = _resize(conf_logit, (h, w))
                latent = _resize(latent, (h, w))
            if flow is None:
                flow, conf_logit, latent = block(
                    torch.cat((center_i, support_i, f_center_i, f_support_i, delta_i), dim=1), None)
            else:
                warped_cat = warp(support_feat_pyr[index], flow)
                x = torch.cat((center_i, warped_cat[:, :3], f_center_i, warped_cat[:, 3:7], delta_i, conf_logit,
                               latent), dim=1)
                delta_flow, conf_logit, latent = block(x, flow)
                flow = flow + delta_flow

        if tuple(flow.shape[-2:]) != (full_h, full_w):
            flow = _resize_flow(flow, (full_h, full_w))
            conf_logit = _resize(conf_logit, (full_h, full_w))
        return warp(support_flat, flow, fp32=True), warp(ones, flow), conf_logit, flow


class ConfidenceHead(nn.Module):
    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(_conv(25, hidden), _conv(hidden, hidden), nn.Conv2d(hidden, 1, 3, 1, 1))

    def forward(self, center, warped, f_center, f_warped, flow, delta_t, raw_conf_logit):
        x = torch.cat((center, warped, torch.abs(warped - center), f_center, f_warped, torch.abs(f_warped - f_center),
                       flow, torch.linalg.vector_norm(flow, ord=2, dim=1, keepdim=True), delta_t), dim=1)
        return raw_conf_logit + self.net(x)


def conservative_average(center: torch.Tensor, aligned: torch.Tensor, confidence: torch.Tensor, *,
                         threshold: float = 0.6, min_support: int = 1, gate_slope: float = 12.0,
                         count_slope: float = 4.0) -> torch.Tensor:
    """The centre (B, 3, H, W) averaged with the aligned neighbours (B, S, 3, H, W) it trusts (B, S, 1, H, W)."""
    gate = torch.sigmoid((confidence - threshold) * gate_slope)
    weights = confidence * gate
    blended = (center + (weights * aligned).sum(dim=1)) / (1.0 + weights.sum(dim=1)).clamp_min(1e-6)
    if min_support <= 0:
        return blended
    readiness = torch.sigmoid((gate.sum(dim=1) - float(min_support) + 0.5) * count_slope)
    return center + readiness * (blended - center)


class TemporalFix(nn.Module):
    """(B, 7, 3, H, W) windows of RGB in [0, 1] → (B, 3, H, W): each window's centre frame, steadied."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = Head()
        self.aligner = Aligner()
        self.conf_head = ConfidenceHead(hidden=32)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 5 or frames.shape[1] != WINDOW or frames.shape[2] != 3:
            raise ValueError(f"TemporalFix takes (B, {WINDOW}, 3, H, W) windows, not {tuple(frames.shape)}")
        b, _, _, h, w = frames.shape
        center = frames[:, RADIUS]
        feats = self.encode(frames.reshape(b * WINDOW, 3, h, w)).reshape(b, WINDOW, 4, h, w)
        center_feat = feats[:, RADIUS]
        supports, support_feats = frames[:, SUPPORTS], feats[:, SUPPORTS]
        s = len(SUPPORTS)
        times = torch.tensor(TIMES, dtype=torch.float32).view(1, s, 1, 1, 1)
        delta_t = times.to(device=center.device, dtype=center.dtype).expand(b, -1, -1, h, w)

        warped, valid, raw_conf, flow = self.aligner(center, supports, center_feat, support_feats, delta_t)

        half = _scaled((h, w), CONFIDENCE_SCALE)
        flow_half = _resize_flow(flow, half)
        conf_half = self.conf_head(
            center=_resize(center, half)[:, None].expand(-1, s, -1, -1, -1).reshape(b * s, 3, *half),
            warped=_resize(warped, half),
            f_center=_resize(center_feat, half)[:, None].expand(-1, s, -1, -1, -1).reshape(b * s, 4, *half),
            f_warped=warp(_resize(support_feats.reshape(b * s, 4, h, w), half), flow_half),
            flow=flow_half,
            delta_t=_expand(delta_t.reshape(b * s, 1, h, w), half),
            raw_conf_logit=_resize(raw_conf, half),
        )
        confidence = torch.sigmoid(_resize(conf_half, (h, w))) * valid
        return conservative_average(center, warped.reshape(b, s, 3, h, w), confidence.reshape(b, s, 1, h, w))


def check_strength(strength: float) -> float:
    strength = round(float(strength), 2)
    if not 0 <= strength <= 3:
        raise RemasterError(f"temporal.strength: {strength} is outside 0..3 (0 turns the stage off)")
    return strength


def blended_state(weights_dir: Path, strength: float) -> dict[str, torch.Tensor]:
    """The state dict for `strength`: one file, or two blended linearly (as vs-temporalfix does)."""
    from .loading import load_state_dict  # safetensors, or .pth through torch's weights-only loader

    strength = check_strength(strength)
    lower, upper = math.floor(strength), math.ceil(strength)
    paths = [Path(weights_dir) / WEIGHT_FILES[n] for n in sorted({lower, upper})]
    for path in paths:
        if not path.is_file():
            raise RemasterError(f"{path}: TemporalFix weights not found; run setup.sh (python -m "
                                f"remaster.models.bundled resources/models writes them) or set temporal.weights")
    state = load_state_dict(paths[0])
    if lower == upper:
        return state
    other = load_state_dict(paths[1])
    return {key: torch.lerp(value, other[key], strength - lower) if torch.is_floating_point(value) else value
            for key, value in state.items()}


def load_temporalfix(weights_dir: Path, strength: float, *, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> TemporalFix:
    """The network for `strength` (0 < strength ≤ 3), in eval mode on `device` at `dtype`."""
    model = TemporalFix()
    try:
        model.load_state_dict(blended_state(weights_dir, strength), strict=True)
    except RuntimeError as error:
        raise RemasterError(f"{weights_dir}: not TemporalFix weights ({first_line(error, 200)})") from None
    return model.eval().to(device=device, dtype=dtype)
