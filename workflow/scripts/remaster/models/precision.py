"""Precision, chosen per step and only where it was seen to run: what a descriptor claims, what `auto` tries
on a device, and the proof (an odd-sized frame run like fp32 runs it) before a precision is kept."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from spandrel import ImageModelDescriptor

from ..run.errors import RemasterError, first_line
from .loading import DTYPE_NAMES, DTYPES, run_step


def supported_precisions(step: ImageModelDescriptor) -> list[str]:
    """What the architecture's descriptor claims it runs in (not yet proven: see `prove`)."""
    return ["fp32"] + (["fp16"] if step.supports_half else []) + (["bf16"] if step.supports_bfloat16 else [])


# an odd frame: a multiple of no window (7, 8, 12, 16, 24, 32) and of no training size, so a model's code
# for padded and shifted windows runs, as it will on a DVD frame; small, so proving costs well under a second
PROVE_SIZE = (29, 37)
# mean absolute difference from fp32 (values in [0, 1], clamped) above which a precision is not trusted:
# 1/255, one 8-bit level on average. Rounding in bf16 (8 mantissa bits) or fp16 (11) stays far below it
# on a working model; overflow, a lost mask or a broken kernel lands far above it.
PROVE_TOLERANCE = 1 / 255
# fallbacks of `auto`, fastest first (fp16 has more mantissa than bf16, and runs where bf16 is emulated)
AUTO_ORDER = (torch.float16, torch.bfloat16, torch.float32)


def candidate_dtypes(step: ImageModelDescriptor, device: torch.device, *, as_gpu: bool = False) -> list[torch.dtype]:
    """The precisions `auto` tries for a step on `device`, fastest first, ending in fp32.

    The CPU runs fp32 (its half precisions are emulated and slower), unless `as_gpu` asks what a GPU would
    try: the start-up check on a machine without one proves the GPU's precisions on the CPU.
    """
    from .devices import Device

    claimed = {torch.float16: step.supports_half, torch.bfloat16: step.supports_bfloat16, torch.float32: True}
    kit = Device(device)
    usable = (lambda dtype: True) if as_gpu else kit.supports
    return [dtype for dtype in AUTO_ORDER if claimed[dtype] and usable(dtype)]


def prove_frame(step: ImageModelDescriptor, device: torch.device) -> torch.Tensor:
    """A fixed, smooth-and-detailed RGB test frame of PROVE_SIZE (not random: the same on every run)."""
    height, width = PROVE_SIZE
    y = torch.linspace(0, 1, height).view(1, 1, height, 1)
    x = torch.linspace(0, 1, width).view(1, 1, 1, width)
    frame = torch.cat([x * y, (x + y) / 2, 0.5 + 0.4 * torch.sin(17 * x + 11 * y)], dim=1).expand(1, 3, height, width)
    return frame.contiguous(memory_format=torch.channels_last).to(device)


def _try(step: ImageModelDescriptor, frame: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor | None, str]:
    try:
        with torch.inference_mode():
            out = run_step(step, frame.to(dtype)).float()
    except Exception as error:  # noqa: BLE001 - any failure means this precision is not usable
        return None, first_line(error)
    if not torch.isfinite(out).all():
        return None, "its output holds inf or NaN (overflow)"
    return out.clamp(0, 1), ""


def prove(step: ImageModelDescriptor, device: torch.device, candidates: list[torch.dtype], *,
          name: str, log: logging.Logger | None = None) -> torch.dtype:
    """Move the step to `device` at the first of `candidates` that runs PROVE_SIZE frames like fp32 does.

    Each refused precision is logged with its reason. The fp32 weights are kept aside while trying, so a
    fallback never runs on weights already rounded to a lower precision. Raises a one-line RemasterError
    when not even the last candidate runs.
    """
    model = step.model
    try:
        model.to(device=device, dtype=torch.float32, memory_format=torch.channels_last)
    except RuntimeError:  # 5-D weights (FFTformer) have no channels-last layout: keep theirs
        model.to(device=device, dtype=torch.float32)
    frame = prove_frame(step, device)
    reference, why = _try(step, frame, torch.float32)
    if reference is None:
        raise RemasterError(f"{name}: {step.architecture.name} cannot run a {PROVE_SIZE[1]}x{PROVE_SIZE[0]} frame on "
                            f"{device} even at fp32: {why}")
    if candidates == [torch.float32]:
        return torch.float32
    kept = {key: value.detach().clone() for key, value in model.state_dict().items()}
    for dtype in candidates:
        if dtype == torch.float32:
            break
        model.to(dtype=dtype)
        out, why = _try(step, frame, dtype)
        if out is not None:
            difference = float((out - reference).abs().mean())
            if difference <= PROVE_TOLERANCE:
                del kept
                return dtype
            why = f"it differs from fp32 by {difference * 255:.1f}/255 on average"
        model.to(dtype=torch.float32)
        model.load_state_dict(kept)
        last_error = f"{DTYPE_NAMES[dtype]}: {why}"
        position = candidates.index(dtype) + 1
        if position == len(candidates):  # an explicit precision, or no fallback left: not a silent change
            break
        fallback = DTYPE_NAMES[candidates[position]]
        if log is not None:
            log.warning("%s: %s does not run at %s on %s (%s); using %s", name, step.architecture.name,
                        DTYPE_NAMES[dtype], device, why, fallback)
    if candidates[-1] != torch.float32:
        raise RemasterError(f"{name}: {step.architecture.name} does not run on {device} at "
                            f"{last_error}; use precision: auto or fp32")
    return torch.float32


def prove_batches(step: ImageModelDescriptor, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the step gives a batch of two frames what it gives each frame alone (SeemoRe and DRUNet in
    spandrel 0.4.2 fail on batches: their call paths assume one frame)."""
    frame = prove_frame(step, device).to(dtype)
    pair = torch.cat([frame, frame.flip(-1)])
    try:
        with torch.inference_mode():
            together = run_step(step, pair).float()
            alone = torch.cat([run_step(step, one) for one in pair.split(1)]).float()
    except Exception:  # noqa: BLE001 - a batch it cannot run: frames go one at a time
        return False
    return together.shape == alone.shape and float((together - alone).abs().mean()) <= PROVE_TOLERANCE


def step_candidates(step: ImageModelDescriptor, device: torch.device, requested: str, where: str,
                    name: str, *, as_gpu: bool = False) -> list[torch.dtype]:
    """What to try for one step: `auto`'s fallbacks, or exactly the precision asked for (if it can be)."""
    from .devices import Device

    if requested == "auto":
        return candidate_dtypes(step, device, as_gpu=as_gpu)
    if requested not in supported_precisions(step):
        raise RemasterError(f"{name}: {where}: {requested} is not supported by {step.architecture.name} "
                            f"(it runs {', '.join(supported_precisions(step))}); use auto")
    dtype = DTYPES[requested]
    if not as_gpu and device.type != "cpu" and not Device(device).supports(dtype):
        raise RemasterError(f"{name}: {where}: {requested} is not supported by {Device(device)}; "
                            "use precision: auto or fp16")
    return [dtype]


def network_candidates(device: torch.device, precision: str) -> list[torch.dtype]:
    """What to try for a network that is not a spandrel step (RIFE, TemporalFix), which claims every
    precision: `auto`'s the device runs, fastest first, or exactly the precision asked for."""
    from .devices import Device

    if precision != "auto":
        return [DTYPES[precision]]
    return [dtype for dtype in AUTO_ORDER if Device(device).supports(dtype)]


def first_that_matches(run: Callable[[torch.dtype], torch.Tensor], candidates: list[torch.dtype], *, what: str,
                       log: logging.Logger | None = None, explicit: bool = False,
                       key: str = "precision") -> torch.dtype:
    """The first of `candidates` (fastest first) whose output, `run(dtype)` on a fixed test input, is finite
    and within PROVE_TOLERANCE of fp32's; fp32 when none is. For networks that are not spandrel steps (RIFE,
    TemporalFix): `prove` does the same for a step. Each refused precision is logged with its reason; with
    `explicit` (the config's `key` named this one precision) a refusal is a one-line error instead."""
    if all(dtype == torch.float32 for dtype in candidates):
        return torch.float32
    reference = run(torch.float32).float().clamp(0, 1)
    for dtype in candidates:
        if dtype == torch.float32:
            return dtype
        try:
            out = run(dtype).float()
        except Exception as error:  # noqa: BLE001 - any failure means this precision is not usable
            why = first_line(error)
        else:
            difference = float((out.clamp(0, 1) - reference).abs().mean())
            if not torch.isfinite(out).all():
                why = "its output holds inf or NaN"
            elif difference > PROVE_TOLERANCE:
                why = f"it differs from fp32 by {difference * 255:.1f}/255 on average"
            else:
                return dtype
        if explicit:
            raise RemasterError(f"{what} at {DTYPE_NAMES[dtype]} ({why}); use {key}: auto or fp32")
        if log is not None:
            log.warning("%s at %s (%s); trying the next precision", what, DTYPE_NAMES[dtype], why)
    return torch.float32
