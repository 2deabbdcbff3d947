"""Faster forward paths for known slow spots of spandrel architectures, equal in output to fp tolerance.

`apply(chain)` patches the chain's loaded models in place and says what it patched. Each patch replaces a
module's `forward` on that instance only, so the model's weights, state dict and class are untouched.

Mask dtype (Swin2SR, DRCT, ATD, SwinIR, RGT, and any spandrel module with a `mask` argument): spandrel
computes the shifted-window mask in fp32 and adds it to the attention matrix, which turns a bf16 or fp16
matrix into fp32, and the next matmul with the half-precision values fails ("expected m1 and m2 to have
the same dtype") at every frame size but the training size. The patch casts the mask to the dtype of the
module's input. Upstream fix (spandrel): `mask.to(attn.dtype)` before the addition.

SwinIR: spandrel's `SwinTransformerBlock` rebuilds its shifted-window attention mask on the CPU, with
Python loops, in every block of every forward whenever the frame is not the training size (always, for
video), then copies it to the GPU. The patched blocks share one cached mask per (window, shift, H, W,
device) — every shifted block's mask is the same, so one copy serves the whole model instead of one per
block (~1.5 GB for SwinIR-M at DVD size) — and the patched `WindowAttention` runs
`torch.nn.functional.scaled_dot_product_attention` with the relative-position bias and the mask as one
additive mask (the mask's windows folded into the head axis, in calls of at most 65,535 windows × heads:
CUDA's grid limit). On a GPU, a head dimension that is not a multiple of 8 (SwinIR-M: 180/6 = 30) is padded
with zeros to the next multiple, so SDPA's fused kernels accept it; zero columns change no dot product.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

_MASKS_KEPT = 8  # a shard has one frame size; tiling adds a few edge sizes (and shift sizes per model)


def _swinir_module():
    try:
        return importlib.import_module("spandrel.architectures.SwinIR.__arch.SwinIR")
    except ImportError:  # a spandrel without this layout: run the model as it comes
        return None


# pad head dimensions on these devices only: the CPU has no fused kernels to gain and would pay the padding
PAD_HEADS_ON = {"cuda", "xpu"}


def _pad_heads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """q, k, v with the head dimension zero-padded to a multiple of 8 (where fused SDPA kernels need it)."""
    head_dim = q.shape[-1]
    if head_dim % 8 == 0 or q.device.type not in PAD_HEADS_ON:
        return q, k, v
    extra = 8 - head_dim % 8
    return tuple(F.pad(t, (0, extra)) for t in (q, k, v))


# CUDA's grid.y and grid.z are at most 65,535: memory-efficient attention puts the head axis on one and the
# batch axis on the other (pytorch#142228), so no SDPA call may have more windows × heads (or frames) than this
GRID_MOST = 65535


def _spans(total: int, most: int, unit: int = 1) -> list[tuple[int, int]]:
    """[start, end) spans covering `total` in pieces of at most `most`, each a multiple of `unit`."""
    step = max(unit, most // unit * unit)
    return [(start, min(start + step, total)) for start in range(0, total, step)]


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float,
               unit: int = 1) -> torch.Tensor:
    """SDPA over (batch, heads, N, d) in calls whose batch and head axes stay within CUDA's grid (GRID_MOST).

    `mask` broadcasts on the batch axis and has the full head axis (or 1); head spans are multiples of `unit`.
    """
    batch, heads = q.shape[:2]
    if batch <= GRID_MOST and heads <= GRID_MOST:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    rows = []
    for b0, b1 in _spans(batch, GRID_MOST):
        parts = []
        for h0, h1 in _spans(heads, GRID_MOST, unit):
            part_mask = mask[:, h0:h1] if mask.shape[1] == heads else mask
            parts.append(F.scaled_dot_product_attention(q[b0:b1, h0:h1], k[b0:b1, h0:h1], v[b0:b1, h0:h1],
                                                        attn_mask=part_mask, scale=scale))
        rows.append(torch.cat(parts, 1) if len(parts) > 1 else parts[0])
    return torch.cat(rows) if len(rows) > 1 else rows[0]


def _window_attention_forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """WindowAttention.forward through scaled_dot_product_attention (bias and mask as one additive mask)."""
    windows, tokens, channels = x.shape
    heads = self.num_heads
    head_dim = channels // heads
    qkv = self.qkv(x).reshape(windows, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = _pad_heads(*qkv.unbind(0))
    bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
    bias = bias.view(tokens, tokens, -1).permute(2, 0, 1)  # heads, N, N
    if mask is None:
        out = _attention(q, k, v, bias.unsqueeze(0).to(q.dtype), self.scale)
    else:
        # windows = frames × mask windows: fold the mask windows into the head axis so one mask broadcasts
        mask_windows = mask.shape[0]
        frames = windows // mask_windows
        combined = (mask.unsqueeze(1).float() + bias.unsqueeze(0).float()).to(q.dtype)  # nW, heads, N, N
        combined = combined.reshape(1, mask_windows * heads, tokens, tokens)
        q, k, v = (t.reshape(frames, mask_windows * heads, tokens, -1) for t in (q, k, v))
        out = _attention(q, k, v, combined, self.scale, unit=heads)
        # reshape, not view: SDPA's output may be laid out transposed, and a view then refuses batches > 1
        out = out.reshape(windows, heads, tokens, -1)
    x = out[..., :head_dim].transpose(1, 2).reshape(windows, tokens, channels)
    return self.proj_drop(self.proj(x))


def _shift_mask(block, size: tuple[int, int], device: torch.device) -> torch.Tensor | None:
    """The shifted-window mask for a (padded) feature size, computed once per (window, shift, H, W, device)
    and shared by every block of the model that `patch_model` gave the same cache."""
    if block.shift_size == 0:
        return None  # spandrel's mask for an unshifted block is all zeros: adding it changes nothing
    cache = block.__dict__.setdefault("_remaster_masks", {})
    key = (int(block.window_size), int(block.shift_size), int(size[0]), int(size[1]), device)
    mask = cache.get(key)
    if mask is None:
        if len(cache) >= _MASKS_KEPT:
            cache.clear()
        mask = cache[key] = block.calculate_mask(key[2:4]).to(device)
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


def _cast_mask(forward, position: int):
    """`forward` with a floating `mask` argument cast to the dtype of its first floating tensor argument."""

    def patched(*args, **kwargs):
        reference = next((a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        if reference is not None:
            if isinstance(kwargs.get("mask"), torch.Tensor):
                mask = kwargs["mask"]
                if mask.is_floating_point() and mask.dtype != reference.dtype:
                    kwargs["mask"] = mask.to(reference.dtype)
            elif len(args) > position and isinstance(args[position], torch.Tensor):
                mask = args[position]
                if mask.is_floating_point() and mask.dtype != reference.dtype:
                    args = (*args[:position], mask.to(reference.dtype), *args[position + 1:])
        return forward(*args, **kwargs)

    return patched


def patch_mask_dtype(model: nn.Module) -> int:
    """Cast the fp32 attention masks of spandrel's modules to their input's dtype; returns modules patched."""
    patched = 0
    for module in model.modules():
        if getattr(module, "_remaster_mask_cast", False) or getattr(module, "_remaster_fast", False):
            continue  # a module the SwinIR fast path replaced handles its mask's dtype itself
        if not type(module).__module__.startswith(("spandrel", "spandrel_extra_arches")):
            continue
        try:
            names = list(inspect.signature(module.forward).parameters)
        except (TypeError, ValueError):
            continue
        if "mask" not in names:
            continue
        module.forward = _cast_mask(module.forward, names.index("mask"))
        module._remaster_mask_cast = True
        patched += 1
    return patched


def patch_model(model: nn.Module) -> list[str]:
    """Patch one model's known faults and slow modules in place; returns what was patched (empty if nothing)."""
    notes = []
    arch = _swinir_module()
    blocks = attentions = 0
    if arch is not None:
        block_forward = _make_block_forward(arch)
        shared_masks: dict = {}  # one cache for the whole model: every shifted block's mask is the same
        for module in model.modules():
            if getattr(module, "_remaster_fast", False):
                continue
            if isinstance(module, arch.SwinTransformerBlock):
                module.forward = types.MethodType(block_forward, module)
                module._remaster_masks = shared_masks
                blocks += 1
            elif isinstance(module, arch.WindowAttention):
                module.forward = types.MethodType(_window_attention_forward, module)
                attentions += 1
            else:
                continue
            module._remaster_fast = True
    if blocks or attentions:
        notes.append(f"SwinIR: one shared shift-mask cache for {blocks} blocks, "
                     f"scaled_dot_product_attention in {attentions}")
    cast = patch_mask_dtype(model)
    if cast:
        notes.append(f"attention masks cast to the model's precision in {cast} modules")
    return notes


def apply(chain) -> list[str]:
    """Patch every model of a chain (anything with `steps` holding spandrel descriptors) in place."""
    patched: list[str] = []
    steps: Iterable = getattr(chain, "steps", ())
    for step in steps:
        model = getattr(step, "model", None)
        if isinstance(model, nn.Module):
            patched += patch_model(model)
    return patched
