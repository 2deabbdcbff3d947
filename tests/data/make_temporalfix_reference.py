"""Writes temporalfix_reference.safetensors from the ORIGINAL TemporalFix code (not remaster's port).

Run once, by hand, with the `vs-temporalfix` wheel unpacked (2.4.1, the version remaster.models.bundled pins):
    pip download --no-deps --only-binary=:all: --python-version 3.12 vs-temporalfix==2.4.1 -d /tmp/x
    cd /tmp/x && unzip vs_temporalfix-2.4.1-py3-none-any.whl
    python tests/data/make_temporalfix_reference.py /tmp/x/vs_temporalfix/models
It builds the network as the plugin's CPU backend does (`temporalfix_arch(fixed_hw=...)`, the `.pth` read
with weights_only=True, two strengths blended with torch.lerp) and stores a small 7-frame window (a textured
picture panned by sub-pixel steps, with noise that changes every frame, as a per-frame upscaler's shimmer
does) and the network's fp32 CPU output for strengths 2 and 1.5.
"""

import importlib.util
import math
import sys
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import save_file

HEIGHT, WIDTH = 38, 54  # even, as the plugin asks, but no multiple of 4 or 8: the pyramid rounds up
STRENGTHS = {"s2": 2.0, "s1_5": 1.5}
FILES = {0: "temporalfix_s0_v1.pth", 1: "temporalfix_s1_v1.1.pth", 2: "temporalfix_s2_v1.pth",
         3: "temporalfix_s3_v1.pth"}


def window() -> torch.Tensor:
    generator = torch.Generator().manual_seed(21)
    ys = torch.arange(HEIGHT, dtype=torch.float32).view(HEIGHT, 1)
    frames = []
    for t in range(7):
        xs = torch.arange(WIDTH, dtype=torch.float32).view(1, WIDTH) + 0.6 * t  # a slow pan
        picture = torch.stack([0.5 + 0.3 * torch.sin(xs / 5 + c) * torch.cos(ys / 7 - c) for c in (0.0, 1.0, 2.0)])
        frames.append((picture + 0.03 * torch.randn(3, HEIGHT, WIDTH, generator=generator)).clamp(0, 1))
    return torch.stack(frames).unsqueeze(0)  # (1, 7, 3, H, W)


def main(models: Path) -> None:
    spec = importlib.util.spec_from_file_location("temporalfix_arch", models / "temporalfix_arch.py")
    arch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arch)
    frames = window()
    tensors = {"input": frames}
    for name, strength in STRENGTHS.items():
        lower, upper = math.floor(strength), math.ceil(strength)
        load = lambda n: torch.load(models / FILES[n], map_location="cpu", weights_only=True)  # noqa: E731
        state = load(lower)
        if lower != upper:
            other = load(upper)
            state = OrderedDict((k, torch.lerp(v, other[k], strength - lower) if torch.is_floating_point(v) else v)
                                for k, v in state.items())
        model = arch.temporalfix_arch(fixed_hw=(HEIGHT, WIDTH), conf_thresh=0.6, min_support=1, gate_slope=12.0,
                                      count_slope=4.0)
        model.load_state_dict(state, strict=True)
        with torch.inference_mode():
            tensors[name] = model.eval()(frames).contiguous()
    out = Path(__file__).with_name("temporalfix_reference.safetensors")
    save_file(tensors, str(out), metadata={"made_by": "vs-temporalfix 2.4.1 temporalfix_arch.py, fp32 CPU",
                                           "torch": torch.__version__})
    print(out, {k: tuple(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
