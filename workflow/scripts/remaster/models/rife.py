"""RIFE's IFNet 4.6 (Practical-RIFE), written for remaster: weights come from the user's `flownet.pkl`.

The layout (module names, shapes) is Practical-RIFE's IFNet_HDv3 of version 4.5/4.6, so its `flownet.pkl`
(a plain state dict, its keys prefixed `module.`) or a safetensors conversion of it loads as it is:

- four IFBlocks of widths 192/128/96/64 run coarse to fine at 1/8, 1/4, 1/2 and 1/1 of the frame;
- each block sees both frames (warped by the flow so far), the timestep and the mask, downsamples twice
  (`conv0`), runs eight residual convolutions with a learnt per-channel gain (`convblock`, "ResConv"),
  and a transposed convolution + pixel shuffle (`lastconv`) gives a flow update (4 channels: t→0, t→1)
  and a mask update;
- the frame at `timestep` is the two frames warped by the final flow (bilinear `grid_sample`) and blended
  by the sigmoid of the mask.

Block widths are read from the file, so a small network with the same key names (the tests' random one)
loads too.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..run.errors import RemasterError
from .loading import read_tensors

WIDTHS = (192, 128, 96, 64)  # Practical-RIFE 4.6
BLOCK_INPUTS = (7, 12, 12, 12)  # block0: frames + timestep; later: + mask, + the flow so far
SCALES = (8, 4, 2, 1)
ALIGN = 32  # the coarsest block sees 1/8 of the frame and halves it twice more
RESCONVS = 8


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True))


class ResConv(nn.Module):
    """A 3×3 convolution added back to its input with a learnt per-channel gain `beta`."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones((1, channels, 1, 1)))
        self.relu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlock(nn.Module):
    """One scale of IFNet: (flow update, mask update) at full size from inputs seen at 1/`scale`."""

    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.conv0 = nn.Sequential(_conv(in_channels, width // 2, 2), _conv(width // 2, width, 2))
        self.convblock = nn.Sequential(*(ResConv(width) for _ in range(RESCONVS)))
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(width, 4 * 6, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        if scale != 1:
            x = F.interpolate(x, scale_factor=1 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            if scale != 1:
                flow = F.interpolate(flow, scale_factor=1 / scale, mode="bilinear", align_corners=False) / scale
            x = torch.cat((x, flow), 1)
        out = self.lastconv(self.convblock(self.conv0(x)))
        if scale != 1:
            out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
        return out[:, :4] * scale, out[:, 4:5]


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """`image` sampled at each pixel plus `flow` (pixels, x then y), bilinear, edges repeated."""
    _, _, height, width = image.shape
    ys = torch.linspace(-1.0, 1.0, height, device=image.device, dtype=image.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=image.device, dtype=image.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).unsqueeze(0)
    offset = torch.stack((flow[:, 0] / ((width - 1) / 2), flow[:, 1] / ((height - 1) / 2)), -1)
    return F.grid_sample(image, grid + offset, mode="bilinear", padding_mode="border", align_corners=True)


class IFNet(nn.Module):
    """IFNet 4.6: `forward(img0, img1, timestep)` → the frame at `timestep` ∈ (0, 1), RGB in [0, 1].

    `scale` < 1 estimates the flow on smaller frames (0.5 for 4K, as Practical-RIFE's --scale).
    """

    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        for index, (channels, width) in enumerate(zip(BLOCK_INPUTS, widths, strict=True)):
            self.add_module(f"block{index}", IFBlock(channels, width))

    @property
    def blocks(self) -> list[IFBlock]:
        return [getattr(self, f"block{index}") for index in range(len(SCALES))]

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor | float = 0.5,
                scale: float = 1.0) -> torch.Tensor:
        batch, _, height, width = img0.shape
        if not torch.is_tensor(timestep):
            timestep = torch.full((batch,), float(timestep), device=img0.device)
        align = max(ALIGN, int(ALIGN / scale))
        pad_h, pad_w = -height % align, -width % align
        if pad_h or pad_w:
            img0, img1 = (F.pad(img, (0, pad_w, 0, pad_h)) for img in (img0, img1))
        time_map = timestep.to(img0.dtype).view(-1, 1, 1, 1).expand(batch, 1, *img0.shape[-2:])
        flow = mask = None
        warped0, warped1 = img0, img1
        for block, level in zip(self.blocks, SCALES):
            level = level / scale
            if flow is None:
                flow, mask = block(torch.cat((img0, img1, time_map), 1), None, level)
            else:
                delta, delta_mask = block(torch.cat((warped0, warped1, time_map, mask), 1), flow, level)
                flow, mask = flow + delta, mask + delta_mask
            warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        weight = torch.sigmoid(mask)
        merged = warped0 * weight + warped1 * (1 - weight)
        return merged[:, :, :height, :width]


def expected_keys(widths: tuple[int, ...] = WIDTHS) -> dict[str, tuple[int, ...]]:
    """Every parameter of IFNet 4.6 with its shape, as in Practical-RIFE's flownet.pkl (less `module.`)."""
    return {name: tuple(value.shape) for name, value in IFNet(widths).state_dict().items()}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a flownet.pkl (torch's weights-only loader) or a .safetensors file, `module.` stripped."""
    path = Path(path)
    if not path.is_file():
        raise RemasterError(f"{path}: the interpolation model does not exist; give interpolate.model the "
                            "path of Practical-RIFE 4.6's flownet.pkl (or a .safetensors conversion)")
    state = read_tensors(path)  # the loader every model goes through: weights only, never the file's code
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise RemasterError(f"{path}: not a state dict of tensors; expected RIFE 4.6's flownet.pkl")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_ifnet(path: Path, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> IFNet:
    """IFNet with the weights in `path`, in eval mode on `device`; a file of another layout is refused."""
    state = read_state_dict(path)
    try:
        widths = tuple(int(state[f"block{index}.conv0.1.0.weight"].shape[0]) for index in range(len(SCALES)))
    except KeyError as missing:
        raise RemasterError(f"{path}: not a RIFE IFNet 4.5/4.6 state dict (no {missing.args[0]}); "
                            "remaster runs Practical-RIFE 4.6's flownet.pkl") from None
    want = expected_keys(widths)
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    wrong = sorted(k for k in set(want) & set(state) if tuple(state[k].shape) != want[k])
    if missing or extra or wrong:
        first = (missing or extra or wrong)[0]
        what = "lacks" if missing else "has the unexpected" if extra else "has a wrongly shaped"
        raise RemasterError(f"{path}: not a RIFE IFNet 4.5/4.6 state dict ({what} {first}; "
                            f"{len(missing)} missing, {len(extra)} unexpected); later 4.x versions add an encoder "
                            "remaster does not run")
    model = IFNet(widths)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False).to(device=device, dtype=dtype)
