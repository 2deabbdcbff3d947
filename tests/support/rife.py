"""A real RIFE IFNet 4.6 layout with small random weights, saved as Practical-RIFE saves it, for the tests."""

from __future__ import annotations

from pathlib import Path

import torch

from remaster.models.rife import IFNet

SMALL = (16, 16, 16, 16)  # the real layout's key names at a fraction of its widths (192/128/96/64)


def make_ifnet(path: Path, *, widths=SMALL, seed: int = 0, prefix: str = "") -> Path:
    """A random-weight IFNet 4.6 saved as Practical-RIFE saves it (.pkl, `module.` keys) or as safetensors."""
    torch.manual_seed(seed)
    state = {prefix + k: v.contiguous() for k, v in IFNet(widths).state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
