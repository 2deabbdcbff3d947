"""Loading model files safely with spandrel, running them as a chain with per-step options, inspecting them.

`python -m remaster.models inspect FILE...` prints what a model file is without running the film.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from spandrel import ImageModelDescriptor, ModelLoader, ModelTiling, UnsupportedModelError

from .errors import RemasterError
from .settings import MODEL_SUFFIXES, ModelStep

try:  # the architectures with restrictive licences, when the user installed them (docs/models.md)
    import spandrel_extra_arches

    spandrel_extra_arches.install(ignore_duplicates=True)
    EXTRA_ARCHES = True
except ImportError:
    EXTRA_ARCHES = False

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}

# BT.709 luma weights: the engine stores the master as BT.709, so this is the luma the master keeps
LUMA = (0.2126, 0.7152, 0.0722)

# upstream code licences of the architectures spandrel ships apart (docs/models.md); the weights' own
# terms are set by whoever trained them
EXTRA_LICENCES = {
    "CodeFormer": "S-Lab License 1.0 (non-commercial)",
    "DDColor": "restrictive upstream licence, see github.com/piddnad/DDColor (spandrel-extra-arches)",
    "FeMaSR": "CC BY-NC-SA 4.0 (non-commercial)",
    "MAT": "CC BY-NC 4.0 (non-commercial)",
    "MIRNet2": "Academic Public License (non-commercial)",
    "MPRNet": "Academic Public License (non-commercial)",
    "Restormer": "Academic Public License (non-commercial)",
}


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
        text = str(error).strip()
        if text.startswith("Weights only load failed"):
            # never pass on torch's advice to retry with weights_only=False: that runs the file's code
            reason = "it is not a PyTorch checkpoint of plain tensors (objects in it would run code if loaded)"
        else:
            reason = text.splitlines()[0][:200] if text else type(error).__name__
        raise RemasterError(f"{path}: cannot be read as model weights: {reason}; "
                            "use a .safetensors file or a plain state dict") from None


def load_model(path: Path) -> ImageModelDescriptor:
    """Load one image-to-image model with spandrel, in eval mode on the CPU."""
    state = load_state_dict(path)
    try:
        descriptor = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        hint = "" if EXTRA_ARCHES else " (pip install spandrel-extra-arches adds more, see docs/models.md)"
        raise RemasterError(f"{path}: spandrel does not recognise this model's architecture{hint}") from None
    except Exception as error:  # noqa: BLE001 - a recognised architecture with inconsistent weights
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RemasterError(f"{path}: spandrel recognised the file but could not build the model ({first[:200]})") from None
    if not isinstance(descriptor, ImageModelDescriptor):
        raise RemasterError(f"{path}: {descriptor.architecture.name} is not an image-to-image model")
    descriptor.model.eval()
    return descriptor


def licence(descriptor: ImageModelDescriptor) -> str:
    """The architecture code's licence as far as remaster knows it."""
    if type(descriptor.architecture).__module__.startswith("spandrel_extra_arches"):
        return EXTRA_LICENCES.get(descriptor.architecture.id, "restrictive (spandrel-extra-arches); check upstream")
    return "permissive (spandrel ships only MIT, Apache-2.0 or public-domain architectures)"


# --- tiling -------------------------------------------------------------------------------------------


def _tiles(length: int, tile: int) -> list[int]:
    return list(range(0, max(length - tile, 0) + 1, tile)) + ([length - tile] if length > tile and length % tile else [])


def run_tiled(model, batch: torch.Tensor, tile: int, overlap: int, scale: int | None = None) -> torch.Tensor:
    """Run `model` (a Chain or any callable of scale `scale`) over overlapping tiles, keeping each centre.

    The overlap is context that is cut away after the model, so seams never show.
    """
    _, _, height, width = batch.shape
    scale = model.scale if scale is None else scale
    out = None
    tile_h, tile_w = min(tile, height), min(tile, width)
    for top in _tiles(height, tile_h):
        for left in _tiles(width, tile_w):
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1, x1 = min(top + tile_h + overlap, height), min(left + tile_w + overlap, width)
            result = model(batch[:, :, y0:y1, x0:x1])
            if out is None:
                out = torch.empty((batch.shape[0], result.shape[1], height * scale, width * scale),
                                  dtype=result.dtype, device=result.device)
            inner_y, inner_x = (top - y0) * scale, (left - x0) * scale
            out[:, :, top * scale:(top + tile_h) * scale, left * scale:(left + tile_w) * scale] = result[
                :, :, inner_y:inner_y + tile_h * scale, inner_x:inner_x + tile_w * scale]
    return out


# --- colour -------------------------------------------------------------------------------------------


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.709 luma of NCHW RGB, as N1HW."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def with_luma(rgb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`rgb`'s chroma on the luma `y`: the colour is the model's, the luma exactly the source's.

    The chroma (rgb minus its own luma, which has zero luma) is scaled down per pixel only as far as
    needed to keep every channel in [0, 1], so saturation gives way rather than luma.
    """
    chroma = rgb - luma(rgb)
    eps = torch.finfo(chroma.dtype).tiny
    room_up = torch.where(chroma > 0, (1 - y) / chroma.clamp(min=eps), torch.ones_like(chroma))
    room_down = torch.where(chroma < 0, y / (-chroma).clamp(min=eps), torch.ones_like(chroma))
    gain = torch.minimum(room_up, room_down).amin(dim=1, keepdim=True).clamp_(0, 1)
    return (y + gain * chroma).clamp_(0, 1)


# --- the chain ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRun:
    """How one loaded step runs: its file, precision and tiling (0: whole frames)."""

    path: Path
    dtype: torch.dtype
    tile: int = 0
    tile_overlap: int = 16


def run_step(step: ImageModelDescriptor, batch: torch.Tensor) -> torch.Tensor:
    """One model on an NCHW RGB batch in [0, 1], through spandrel's call API (padding, its own call_fn).

    Grey-input models (colorizers, grey denoisers) get the batch's luma; a colorizer's output keeps that
    luma and contributes only chroma; a grey output is repeated to RGB.
    """
    if step.input_channels == 1:
        grey = luma(batch)
        outputs = [step(frame) for frame in grey.split(1)]  # spandrel's colorizers take one frame at a time
        result = torch.cat(outputs)
        if result.shape[1] == 1:
            return result.expand(-1, 3, -1, -1)
        if step.scale == 1:
            return with_luma(result, grey)
        return result
    if step.tiling == ModelTiling.INTERNAL:
        return torch.cat([step(frame) for frame in batch.split(1)])
    return step(batch)


@dataclass
class Chain:
    """The loaded models in order, with the device they run on and the precision frames enter at."""

    steps: list[ImageModelDescriptor]
    device: torch.device
    dtype: torch.dtype
    runs: list[StepRun] = field(default_factory=list)

    @property
    def scale(self) -> int:
        return math.prod(step.scale for step in self.steps)

    @property
    def min_size(self) -> int:
        return max(step.size_requirements.minimum for step in self.steps)

    def _runs(self) -> list[StepRun]:
        return self.runs or [StepRun(Path(), self.dtype) for _ in self.steps]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW RGB in [0, 1] at `dtype` in; the whole chain's output out, at `dtype` again."""
        for step, run in zip(self.steps, self._runs(), strict=True):
            batch = batch.to(run.dtype)
            if run.tile and step.tiling != ModelTiling.INTERNAL:
                batch = run_tiled(lambda tile, step=step: run_step(step, tile), batch, run.tile, run.tile_overlap,
                                  scale=step.scale)
            else:
                batch = run_step(step, batch)
        return batch.to(self.dtype)


def choose_device(requested: str) -> torch.device:
    """`auto` is the GPU that CUDA_VISIBLE_DEVICES exposes first, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RemasterError(f"device: {requested} asked for, but torch sees no CUDA GPU; use device: auto or cpu")
    return device


def supported_precisions(step: ImageModelDescriptor) -> list[str]:
    return ["fp32"] + (["fp16"] if step.supports_half else []) + (["bf16"] if step.supports_bfloat16 else [])


def step_dtype(step: ImageModelDescriptor, device: torch.device, requested: str, where: str = "precision") -> torch.dtype:
    """One step's dtype: the one asked for (refused if unsupported), or on `auto` fp16, else bf16, else
    fp32 on a GPU and fp32 on the CPU."""
    if requested != "auto":
        if requested not in supported_precisions(step):
            raise RemasterError(f"{where}: {requested} is not supported by {step.architecture.name} "
                                f"(it runs {', '.join(supported_precisions(step))}); use auto")
        return DTYPES[requested]
    if device.type != "cuda":
        return torch.float32
    if step.supports_half:
        return torch.float16
    return torch.bfloat16 if step.supports_bfloat16 else torch.float32


def choose_dtype(steps: list[ImageModelDescriptor], device: torch.device, requested: str) -> torch.dtype:
    """One dtype for every step: fp16 where every step supports it on a GPU, else bf16, else fp32; the
    CPU runs fp32."""
    if requested != "auto":
        unsupported = [str(step.architecture.name) for step in steps if requested not in supported_precisions(step)]
        if unsupported:
            raise RemasterError(f"precision: {requested} is not supported by {', '.join(unsupported)}; use auto")
        return DTYPES[requested]
    if device.type != "cuda":
        return torch.float32
    if all(step.supports_half for step in steps):
        return torch.float16
    if all(step.supports_bfloat16 for step in steps):
        return torch.bfloat16
    return torch.float32


def as_step(entry: ModelStep | Path | str) -> ModelStep:
    return entry if isinstance(entry, ModelStep) else ModelStep(Path(entry))


def load_chain_steps(steps: list[ModelStep], *, device: str = "auto", precision: str = "auto", tile: int = 0,
                     tile_overlap: int = 16) -> Chain:
    """Load every step of the chain and move it to the device at its precision.

    A step's own `precision`/`tile`/`tile_overlap` win over the chain-wide ones given here.
    """
    descriptors = [load_model(step.path) for step in steps]
    torch_device = choose_device(device)
    runs = []
    for number, (step, descriptor) in enumerate(zip(steps, descriptors, strict=True), start=1):
        asked = step.precision if step.precision != "auto" else precision
        where = f"models[{number}].precision" if step.precision != "auto" else "precision"
        dtype = step_dtype(descriptor, torch_device, asked, where)
        descriptor.model.to(device=torch_device, dtype=dtype, memory_format=torch.channels_last)
        runs.append(StepRun(step.path, dtype,
                            tile if step.tile is None else step.tile,
                            tile_overlap if step.tile_overlap is None else step.tile_overlap))
    return Chain(descriptors, torch_device, runs[0].dtype, runs)


def load_chain(paths: list[Path | ModelStep], *, device: str = "auto", precision: str = "auto") -> Chain:
    """Load every model of the chain (paths, or ModelSteps with their own options) onto the device.

    With plain paths every step runs at one precision, as before per-step options existed.
    """
    steps = [as_step(entry) for entry in paths]
    if all(step == ModelStep(step.path) for step in steps):
        descriptors = [load_model(step.path) for step in steps]
        torch_device = choose_device(device)
        dtype = choose_dtype(descriptors, torch_device, precision)
        for descriptor in descriptors:
            descriptor.model.to(device=torch_device, dtype=dtype, memory_format=torch.channels_last)
        return Chain(descriptors, torch_device, dtype, [StepRun(step.path, dtype) for step in steps])
    return load_chain_steps(steps, device=device, precision=precision)


# --- inspection and the start-of-run check ------------------------------------------------------------


def describe(descriptor: ImageModelDescriptor, path: Path | None = None) -> dict:
    """What a user wants to know about a model file, as plain JSON-able values."""
    size = descriptor.size_requirements
    return {
        "file": str(path) if path is not None else None,
        "architecture": descriptor.architecture.name,
        "architecture_id": descriptor.architecture.id,
        "purpose": descriptor.purpose,
        "scale": descriptor.scale,
        "input_channels": descriptor.input_channels,
        "output_channels": descriptor.output_channels,
        "parameters": sum(p.numel() for p in descriptor.model.parameters()),
        "precisions": supported_precisions(descriptor),
        "size_requirements": {"minimum": size.minimum, "multiple_of": size.multiple_of, "square": size.square},
        "tiling": descriptor.tiling.name.lower(),
        "tags": list(descriptor.tags),
        "licence": licence(descriptor),
        "extra_arches_installed": EXTRA_ARCHES,
    }


def check_chain(steps: list[ModelStep], scale: float | None = None, precision: str = "auto", tile: int = 0) -> dict:
    """Load every step on the CPU and check what can be checked before a frame is decoded.

    Raises a one-line RemasterError naming the file: unreadable or unrecognised, a precision it cannot
    run, a grey-only model that the chain feeds colour it would discard, or a `scale` beyond the chain's.
    """
    report = []
    for number, step in enumerate(steps, start=1):
        descriptor = load_model(step.path)
        asked, where = (step.precision, f"models[{number}].precision") if step.precision != "auto" else (precision, "precision")
        if asked != "auto" and asked not in supported_precisions(descriptor):
            raise RemasterError(f"{step.path}: {where}: {asked} is not supported by "
                                f"{descriptor.architecture.name} (it runs {', '.join(supported_precisions(descriptor))})")
        if descriptor.input_channels not in (1, 3) or descriptor.output_channels not in (1, 3):
            raise RemasterError(f"{step.path}: {descriptor.architecture.name} takes {descriptor.input_channels} and "
                                f"gives {descriptor.output_channels} channels; remaster chains grey or RGB models only")
        step_tile = tile if step.tile is None else step.tile
        if step_tile and descriptor.size_requirements.minimum > step_tile:
            raise RemasterError(f"{step.path}: tile: {step_tile} is below the model's minimum size "
                                f"{descriptor.size_requirements.minimum}; use a bigger tile")
        entry = describe(descriptor, step.path)
        entry["options"] = {"precision": step.precision, "tile": step.tile, "tile_overlap": step.tile_overlap}
        report.append(entry)
        del descriptor
    chain_scale = math.prod(entry["scale"] for entry in report)
    if scale is not None and scale > chain_scale:
        files = " → ".join(Path(entry["file"]).name for entry in report)
        raise RemasterError(f"scale: asks ×{scale:g} but the chain ({files}) gives ×{chain_scale}; "
                            f"lower scale or add a model")
    return {"steps": report, "chain_scale": chain_scale, "scale": scale if scale is not None else chain_scale}


def _format(info: dict) -> str:
    size = info["size_requirements"]
    needs = [f"minimum {size['minimum']}px"] if size["minimum"] > 1 else []
    needs += [f"multiple of {size['multiple_of']}"] if size["multiple_of"] > 1 else []
    needs += ["square"] if size["square"] else []
    lines = [
        f"{info['file']}",
        f"  architecture  {info['architecture']} ({info['purpose']}; {', '.join(info['tags']) or 'no tags'})",
        f"  scale         ×{info['scale']}",
        f"  channels      {info['input_channels']} in, {info['output_channels']} out"
        + ("  (colorizer: keeps the source's luma, adds chroma)" if info["input_channels"] == 1 and info["output_channels"] == 3 else ""),
        f"  parameters    {info['parameters']:,}",
        f"  precisions    {', '.join(info['precisions'])}",
        f"  size          {', '.join(needs) or 'any'} (spandrel pads to fit); tiling {info['tiling']}",
        f"  licence       {info['licence']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remaster.models", description="Inspect spandrel model files.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print architecture, scale, parameters, precisions, licence")
    inspect.add_argument("files", type=Path, nargs="+")
    inspect.add_argument("--json", action="store_true", help="one JSON object per file")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            info = describe(load_model(path), path)
        except RemasterError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        print(json.dumps(info) if args.json else _format(info))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
