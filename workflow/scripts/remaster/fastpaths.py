"""Faster forward paths for known slow spots of spandrel architectures, equal in output to fp tolerance.

`apply(chain)` patches the chain's loaded models in place and says what it patched. Each patch replaces a
module's `forward` on that instance only, so the model's weights, state dict and class are untouched.

SwinIR: spandrel's `SwinTransformerBlock` rebuilds its shifted-window attention mask on the CPU, with
Python loops, in every block of every forward whenever the frame is not the training size (always, for
video), then copies it to the GPU. The patched block caches the mask per (H, W, device), and the patched
`WindowAttention` runs `torch.nn.functional.scaled_dot_product_attention` with the relative-position bias
and the mask as one additive mask, instead of materialising and soft-maxing the attention matrix itself.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

_MASKS_KEPT = 8  # a shard has one frame size; tiling adds a few edge sizes


def _swinir_module():
    try:
        return importlib.import_module("spandrel.architectures.SwinIR.__arch.SwinIR")
    except ImportError:  # a spandrel without this layout: run the model as it comes
        return None


def _window_attention_forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """WindowAttention.forward through scaled_dot_product_attention (bias and mask as one additive mask)."""
    windows, tokens, channels = x.shape
    heads = self.num_heads
    qkv = self.qkv(x).reshape(windows, tokens, 3, heads, channels // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
    bias = bias.view(tokens, tokens, -1).permute(2, 0, 1)  # heads, N, N
    if mask is None:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype), scale=self.scale)
    else:
        # windows = frames × mask windows: fold the mask windows into the head axis so one mask broadcasts
        mask_windows = mask.shape[0]
        frames = windows // mask_windows
        combined = (mask.unsqueeze(1).float() + bias.unsqueeze(0).float()).to(q.dtype)  # nW, heads, N, N
        combined = combined.reshape(1, mask_windows * heads, tokens, tokens)
        q, k, v = (t.reshape(frames, mask_windows * heads, tokens, -1) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=combined, scale=self.scale)
        out = out.view(windows, heads, tokens, -1)
    x = out.transpose(1, 2).reshape(windows, tokens, channels)
    return self.proj_drop(self.proj(x))


def _shift_mask(block, size: tuple[int, int], device: torch.device) -> torch.Tensor | None:
    """The block's shifted-window mask for a (padded) feature size, computed once per (H, W, device)."""
    if block.shift_size == 0:
        return None  # spandrel's mask for an unshifted block is all zeros: adding it changes nothing
    cache = block.__dict__.setdefault("_remaster_masks", {})
    key = (int(size[0]), int(size[1]), device)
    mask = cache.get(key)
    if mask is None:
        if len(cache) >= _MASKS_KEPT:
            cache.clear()
        mask = cache[key] = block.calculate_mask(key[:2]).to(device)
    return mask


def _make_block_forward(arch):
    window_partition, window_reverse = arch.window_partition, arch.window_reverse

    def forward(self, x: torch.Tensor, x_size: tuple[int, int]) -> torch.Tensor:
        """SwinTransformerBlock.forward with the attention mask cached instead of rebuilt on the CPU."""
        height, width = x_size
        frames, _, channels = x.shape
        size, shift = self.window_size, self.shift_size
        shortcut = x
        x = self.norm1(x).view(frames, height, width, channels)
        if shift > 0:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(x, size).view(-1, size * size, channels)
        windows = self.attn(windows, mask=_shift_mask(self, x_size, x.device))
        x = window_reverse(windows.view(-1, size, size, channels), size, height, width)
        if shift > 0:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(frames, height * width, channels))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    return forward


def patch_model(model: nn.Module) -> list[str]:
    """Patch one model's known slow modules in place; returns what was patched (empty if nothing)."""
    arch = _swinir_module()
    if arch is None:
        return []
    block_forward = _make_block_forward(arch)
    blocks = attentions = 0
    for module in model.modules():
        if getattr(module, "_remaster_fast", False):
            continue
        if isinstance(module, arch.SwinTransformerBlock):
            module.forward = types.MethodType(block_forward, module)
            blocks += 1
        elif isinstance(module, arch.WindowAttention):
            module.forward = types.MethodType(_window_attention_forward, module)
            attentions += 1
        else:
            continue
        module._remaster_fast = True
    if not blocks and not attentions:
        return []
    return [f"SwinIR: cached shift masks in {blocks} blocks, scaled_dot_product_attention in {attentions}"]


def apply(chain) -> list[str]:
    """Patch every model of a chain (anything with `steps` holding spandrel descriptors) in place."""
    patched: list[str] = []
    steps: Iterable = getattr(chain, "steps", ())
    for step in steps:
        model = getattr(step, "model", None)
        if isinstance(model, nn.Module):
            patched += patch_model(model)
    return patched
