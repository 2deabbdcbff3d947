"""Loading model files safely with spandrel, and choosing how to run them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

from .errors import RemasterError
from .settings import MODEL_SUFFIXES


def load_state_dict(path: Path) -> dict:
    """Read a model file's tensors without running code from it.

    `.safetensors` holds only tensors; `.pth`/`.ckpt` go through torch's weights-only unpickler, which
    refuses any object that is not a tensor or a plain container. TorchScript `.pt` is refused outright.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise RemasterError(f"{path}: not a model file remaster loads (.safetensors, .pth, .ckpt)")
    if not path.is_file():
        raise RemasterError(f"{path}: model file not found; check models: in your config")
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to read is the same problem for the user
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RemasterError(f"{path}: cannot be read as model weights ({first[:200]})") from None


def load_model(path: Path) -> ImageModelDescriptor:
    """Load one image-to-image model with spandrel, in eval mode on the CPU."""
    state = load_state_dict(path)
    try:
        descriptor = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        raise RemasterError(f"{path}: spandrel does not recognise this model's architecture") from None
    if not isinstance(descriptor, ImageModelDescriptor):
        raise RemasterError(f"{path}: {descriptor.architecture.name} is not an image-to-image model")
    descriptor.model.eval()
    return descriptor


@dataclass
class Chain:
    """The loaded models in order, with the precision and device they run at."""

    steps: list[ImageModelDescriptor]
    device: torch.device
    dtype: torch.dtype

    @property
    def scale(self) -> int:
        return math.prod(step.scale for step in self.steps)

    @property
    def min_size(self) -> int:
        return max(step.size_requirements.minimum for step in self.steps)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            batch = step.model(batch)
        return batch


def choose_device(requested: str) -> torch.device:
    """`auto` is the GPU that CUDA_VISIBLE_DEVICES exposes first, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RemasterError(f"device: {requested} asked for, but torch sees no CUDA GPU; use device: auto or cpu")
    return device


def choose_dtype(steps: list[ImageModelDescriptor], device: torch.device, requested: str) -> torch.dtype:
    """fp16 where every step supports it on a GPU, else bf16, else fp32; the CPU runs fp32."""
    named = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if requested != "auto":
        dtype = named[requested]
        unsupported = [
            str(step.architecture.name)
            for step in steps
            if (dtype == torch.float16 and not step.supports_half)
            or (dtype == torch.bfloat16 and not step.supports_bfloat16)
        ]
        if unsupported:
            raise RemasterError(f"precision: {requested} is not supported by {', '.join(unsupported)}; use auto")
        return dtype
    if device.type != "cuda":
        return torch.float32
    if all(step.supports_half for step in steps):
        return torch.float16
    if all(step.supports_bfloat16 for step in steps):
        return torch.bfloat16
    return torch.float32


def load_chain(paths: list[Path], *, device: str = "auto", precision: str = "auto") -> Chain:
    """Load every model of the chain and move it to the device at the chosen precision."""
    steps = [load_model(path) for path in paths]
    torch_device = choose_device(device)
    dtype = choose_dtype(steps, torch_device, precision)
    for step in steps:
        step.model.to(device=torch_device, dtype=dtype, memory_format=torch.channels_last)
    return Chain(steps, torch_device, dtype)
