"""Loading model files safely with spandrel, running them as a chain with per-step options, inspecting them.

`python -m remaster.models inspect FILE...` prints what a model file is without running the film.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from spandrel import ImageModelDescriptor, ModelLoader, ModelTiling, UnsupportedModelError

from ..run.errors import RemasterError, first_line
from ..run.settings import MODEL_SUFFIXES, ModelStep

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
    """Read a model file's tensors without running code from it (`read_tensors`): a `models:` file, whose
    suffix says it is one (.safetensors, .pth, .ckpt; TorchScript `.pt` is refused outright)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise RemasterError(f"{path}: not a model file remaster loads (.safetensors, .pth, .ckpt)")
    if not path.is_file():
        raise RemasterError(f"{path}: model file not found; check models: in your config")
    return read_tensors(path)


def read_tensors(path: Path) -> dict:
    """The one safe reader of weights, for every model remaster runs (spandrel's, RIFE's).

    `.safetensors` holds only tensors; any other file goes through torch's weights-only unpickler, which
    refuses any object that is not a tensor or a plain container. Anything unreadable is one line.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".safetensors":
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
        raise RemasterError(f"{path}: spandrel recognised the file but could not build the model "
                            f"({first_line(error, 200)})") from None
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
    batched: bool = True  # False: the model's code mishandles batches (seen at load), frames go one by one
    tf32: bool = False  # an fp32 fallback on a GPU: TF32 matmuls allowed (the half precisions were refused)


@contextmanager
def tf32_matmuls(device: torch.device, allowed: bool):
    """TF32 for fp32 matmuls on a CUDA device while the block runs (convolutions already use it by default)."""
    if not allowed or device.type != "cuda" or torch.compiler.is_compiling():  # a traced graph keeps the global
        yield
        return
    # the legacy flag: reading it (as library code does) raises in torch 2.14 once the new API set tf32
    matmul = torch.backends.cuda.matmul
    before = matmul.allow_tf32
    matmul.allow_tf32 = True
    try:
        yield
    finally:
        matmul.allow_tf32 = before


def run_step(step: ImageModelDescriptor, batch: torch.Tensor, batched: bool = True) -> torch.Tensor:
    """One model on an NCHW RGB batch in [0, 1], through spandrel's call API (padding, its own call_fn).

    Grey-input models (colorizers, grey denoisers) get the batch's luma; a colorizer's output keeps that
    luma and contributes only chroma; a grey output is repeated to RGB (a real copy, not a view, so later
    in-place conversions work). RGBA models get an opaque alpha channel, and their alpha is dropped.
    `batched=False` runs the frames one at a time (a model whose code was seen to mishandle batches).
    """
    if not batched and len(batch) > 1:
        return torch.cat([run_step(step, frame) for frame in batch.split(1)])
    if step.input_channels == 1:
        grey = luma(batch)
        outputs = [step(frame) for frame in grey.split(1)]  # spandrel's colorizers take one frame at a time
        result = torch.cat(outputs)
        if result.shape[1] == 1:
            return result.repeat(1, 3, 1, 1)
        if step.scale == 1:
            return with_luma(result, grey)
        return result
    if step.input_channels == 4:
        batch = torch.cat([batch, torch.ones_like(batch[:, :1])], dim=1)
    if step.tiling == ModelTiling.INTERNAL:
        result = torch.cat([step(frame) for frame in batch.split(1)])
    else:
        result = step(batch)
    if result.shape[1] == 1:
        return result.repeat(1, 3, 1, 1)
    return result[:, :3] if result.shape[1] == 4 else result


def is_colorizer(step: ImageModelDescriptor) -> bool:
    """A grey-in, colour-out model: it sees the whole frame to choose colours, so it is never tiled."""
    return step.input_channels == 1 and step.output_channels == 3


def can_tile(step: ImageModelDescriptor) -> bool:
    """Whether remaster may cut this step's input into tiles (a chain-wide tile or the OOM fallback)."""
    return not is_colorizer(step) and step.tiling != ModelTiling.INTERNAL


class StepError(RemasterError):
    """A step failed for a reason other than memory: one line naming the model, step, device, precision."""


def step_failure(number: int, step: ImageModelDescriptor, run: StepRun, device: torch.device,
                 error: BaseException) -> StepError:
    """The one-line error for a step that raised, with what to change."""
    name = DTYPE_NAMES.get(run.dtype, str(run.dtype))
    if "CUDA" in str(error) or "HIP" in str(error):
        advice = "check the GPU (nvidia-smi) and run again; set CUDA_LAUNCH_BLOCKING=1 to find the kernel"
    elif run.dtype != torch.float32:
        advice = f"set precision: fp32 for models[{number}]"
    elif device.type != "cpu":
        advice = "try device: cpu to tell a model fault from a device fault"
    else:
        advice = "the model's code cannot run this frame; try it alone with `python -m remaster.models inspect`"
    return StepError(f"{run.path}: models[{number}] ({step.architecture.name}) failed on {device} at {name}: "
                     f"{first_line(error)}; {advice}")


def all_finite(values: torch.Tensor) -> bool:
    """Whether every value is finite: one reduction and one sync, per batch, not per frame."""
    return bool(torch.isfinite(values).all())


@dataclass
class Chain:
    """The loaded models in order, with the device they run on and the precision frames enter at.

    Every batch's output is checked for inf/NaN (a half precision proven on a small frame can still
    overflow on a real one, and NaN would become black pixels in the 16-bit cast): a batch that holds any
    is redone step by step, a failing half-precision step at fp32 (its weights read again from its file),
    with a warning in the log. A step that gives inf/NaN at fp32 is a one-line error: never a black frame.
    """

    steps: list[ImageModelDescriptor]
    device: torch.device
    dtype: torch.dtype
    runs: list[StepRun] = field(default_factory=list)
    log: logging.Logger | None = None
    fallbacks: dict = field(default_factory=dict)  # step number → its fp32 descriptor, made on first need
    recovered: int = 0  # batches redone at fp32 because a half precision gave inf or NaN

    @property
    def scale(self) -> int:
        return math.prod(step.scale for step in self.steps)

    @property
    def min_size(self) -> int:
        return max(step.size_requirements.minimum for step in self.steps)

    def _runs(self) -> list[StepRun]:
        return self.runs or [StepRun(Path(), self.dtype) for _ in self.steps]

    def _step(self, number: int, step: ImageModelDescriptor, run: StepRun, batch: torch.Tensor, tile: int,
              overlap: int) -> torch.Tensor:
        from .devices import is_out_of_memory

        step_tile = run.tile or (tile if can_tile(step) else 0)
        step_overlap = run.tile_overlap if run.tile else overlap
        try:
            with tf32_matmuls(self.device, run.tf32):
                batch = batch.to(run.dtype)
                if step_tile and can_tile(step):
                    return run_tiled(lambda part, step=step, run=run: run_step(step, part, run.batched), batch,
                                     step_tile, step_overlap, scale=step.scale)
                return run_step(step, batch, run.batched)
        except Exception as error:
            if is_out_of_memory(error) or isinstance(error, RemasterError):
                raise
            raise step_failure(number, step, run, self.device, error) from error

    def forward(self, batch: torch.Tensor, tile: int = 0, overlap: int = 16) -> torch.Tensor:
        """The chain without the finiteness check (what torch.compile traces): float32 out.

        Each step's output goes to the next as it is (cast only to that step's precision) and the last
        step's leaves as float32, so a bf16 step never rounds the output of a finer step after it.
        """
        for number, (step, run) in enumerate(zip(self.steps, self._runs(), strict=True), start=1):
            batch = self._step(number, step, run, batch, tile, overlap)
        return batch.float()

    def __call__(self, batch: torch.Tensor, tile: int = 0, overlap: int = 16) -> torch.Tensor:
        """NCHW RGB in [0, 1] in; the whole chain's output out, as float32, every value finite.

        `tile` (chain-wide, or the out-of-memory fallback) tiles every step that may be tiled and has no
        tile of its own; a colourizer is never tiled, since each tile would get its own colours.
        """
        out = self.forward(batch, tile, overlap)
        return out if all_finite(out) else self.recover(batch, tile, overlap)

    def fallback(self, number: int, step: ImageModelDescriptor, run: StepRun) -> ImageModelDescriptor:
        """Step `number` at fp32 on the chain's device: read again from its file (the loaded weights are
        already rounded to the half precision), fast paths patched, kept for the rest of the job."""
        if number not in self.fallbacks:
            from . import fastpaths

            if run.path.is_file():
                descriptor = load_model(run.path)
                fastpaths.patch_model(descriptor.model)
            else:  # a chain built in memory: its own weights, widened
                import copy

                descriptor = copy.deepcopy(step)
            try:
                descriptor.model.to(device=self.device, dtype=torch.float32, memory_format=torch.channels_last)
            except RuntimeError:  # 5-D weights have no channels-last layout
                descriptor.model.to(device=self.device, dtype=torch.float32)
            self.fallbacks[number] = descriptor
        return self.fallbacks[number]

    def recover(self, batch: torch.Tensor, tile: int = 0, overlap: int = 16) -> torch.Tensor:
        """The batch again, step by step: a step whose output holds inf/NaN is redone at fp32 (TF32 allowed)."""
        log = self.log or logging.getLogger("remaster")
        self.recovered += 1
        for number, (step, run) in enumerate(zip(self.steps, self._runs(), strict=True), start=1):
            out = self._step(number, step, run, batch, tile, overlap)
            if not all_finite(out):
                name = DTYPE_NAMES.get(run.dtype, str(run.dtype))
                if run.dtype == torch.float32:
                    advice = "use another model" if self.device.type == "cpu" else \
                        "try device: cpu to tell a model fault from a device fault"
                    raise StepError(f"{run.path}: models[{number}] ({step.architecture.name}) gives inf or NaN "
                                    f"at fp32 on {self.device}; the model cannot run these frames: {advice}")
                log.warning("%s: models[%d] (%s) gave inf or NaN at %s on a batch of %d frames; redoing it at fp32",
                            run.path, number, step.architecture.name, name, len(batch))
                wide = replace(run, dtype=torch.float32, tf32=True)
                out = self._step(number, self.fallback(number, step, run), wide, batch, tile, overlap)
                if not all_finite(out):
                    raise StepError(f"{run.path}: models[{number}] ({step.architecture.name}) gives inf or NaN "
                                    f"on {self.device} even at fp32; the model cannot run these frames")
            batch = out
        return batch.float()


def choose_device(requested: str) -> torch.device:
    """`auto` is the first GPU torch sees (CUDA/ROCm, XPU, MPS), else the CPU (see remaster.devices)."""
    from .devices import resolve

    return resolve(requested)


def as_step(entry: ModelStep | Path | str) -> ModelStep:
    return entry if isinstance(entry, ModelStep) else ModelStep(Path(entry))


def load_chain_steps(steps: list[ModelStep], *, device: str | torch.device = "auto", precision: str = "auto",
                     tile: int = 0, tile_overlap: int = 16, log: logging.Logger | None = None,
                     as_gpu: bool = False, loaded: list | None = None) -> Chain:
    """The one loader: every step of the chain on the device, fast paths patched, at a proven precision.

    A step's own `precision`/`tile`/`tile_overlap` win over the chain-wide ones given here. `auto` tries
    fp16, then bf16, then fp32 where the device and the descriptor allow, keeping the first that runs an
    odd-sized frame like fp32 does; an explicit precision that fails this is a one-line error. `loaded`: the
    steps' descriptors, already read by `load_model` (the start-up check reads each file once, not twice).
    """
    from . import fastpaths
    from .precision import prove, prove_batches, step_candidates

    torch_device = device if isinstance(device, torch.device) else choose_device(device)
    descriptors, runs = [], []
    for number, step in enumerate(steps, start=1):
        descriptor = loaded[number - 1] if loaded is not None else load_model(step.path)
        for patch in fastpaths.patch_model(descriptor.model):
            if log is not None:
                log.info("models[%d]: fast path: %s", number, patch)
        asked = step.precision if step.precision != "auto" else precision
        where = f"models[{number}].precision" if step.precision != "auto" else "precision"
        name = f"{step.path}: models[{number}]"
        candidates = step_candidates(descriptor, torch_device, asked, where, str(step.path), as_gpu=as_gpu)
        dtype = prove(descriptor, torch_device, candidates, name=name, log=log)
        batched = prove_batches(descriptor, torch_device, dtype)
        if not batched and log is not None:
            log.warning("%s: %s mishandles batches of frames; it runs them one at a time", name,
                        descriptor.architecture.name)
        descriptors.append(descriptor)
        # a chain-wide tile never reaches a colourizer; a step's own tile is the user's explicit choice
        runs.append(StepRun(step.path, dtype,
                            (tile if can_tile(descriptor) else 0) if step.tile is None else step.tile,
                            tile_overlap if step.tile_overlap is None else step.tile_overlap, batched,
                            # fp32 because the half precisions were refused: TF32 keeps most of their speed
                            tf32=dtype == torch.float32 and candidates[0] != torch.float32))
    return Chain(descriptors, torch_device, runs[0].dtype, runs, log=log)


def load_chain(paths: list[Path | ModelStep], *, device: str | torch.device = "auto", precision: str = "auto",
               log: logging.Logger | None = None) -> Chain:
    """Load every model of the chain (paths, or ModelSteps with their own options) onto the device."""
    return load_chain_steps([as_step(entry) for entry in paths], device=device, precision=precision, log=log)
