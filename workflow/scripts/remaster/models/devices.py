"""One small layer over the devices torch runs models on: CUDA (and ROCm, which torch calls `cuda`), Apple
`mps`, Intel `xpu` and the CPU.

Streams, events and pinned host memory exist only where the device has them (CUDA, XPU); every event,
stream, cache flush and memory query goes to the job's own device, never to whatever device is current.
"""

from __future__ import annotations

import torch

from ..run.errors import RemasterError

# messages of allocation failures that torch raises as a plain RuntimeError, not OutOfMemoryError
_ALLOCATION_FAILURES = ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED",
                        "CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", "HIPBLAS_STATUS_ALLOC_FAILED",
                        "MIOPEN_STATUS_ALLOC_FAILED", "UR_RESULT_ERROR_OUT_OF_DEVICE_MEMORY")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is a device running out of memory (torch's own type, or a library's allocation)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and any(text in str(error) for text in _ALLOCATION_FAILURES)


def _backend(kind: str):
    return {"cuda": torch.cuda, "xpu": getattr(torch, "xpu", None), "mps": getattr(torch, "mps", None)}.get(kind)


def available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "mps":
        return bool(torch.backends.mps.is_available())
    backend = _backend(kind)
    return bool(backend is not None and backend.is_available())


def resolve(requested: str) -> torch.device:
    """`auto`: CUDA/ROCm, else XPU, else MPS, else the CPU; anything else as torch spells it, if present."""
    if requested == "auto":
        for kind in ("cuda", "xpu", "mps"):
            if available(kind):
                return torch.device(kind, 0) if kind != "mps" else torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise RemasterError(f"device: {requested} is not a device torch knows (auto, cpu, cuda, cuda:N, mps, xpu)") from None
    if not available(device.type):
        raise RemasterError(f"device: {requested} asked for, but torch sees no {device.type} device here; "
                            "use device: auto or cpu")
    backend = _backend(device.type)
    if device.type in ("cuda", "xpu"):
        count = backend.device_count()
        index = device.index or 0
        if index >= count:
            raise RemasterError(f"device: {requested} asked for, but only {count} {device.type} device(s) are "
                                f"visible (CUDA_VISIBLE_DEVICES={_visible()}); use device: auto")
        device = torch.device(device.type, index)
    return device


def _visible() -> str:
    import os

    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


class Device:
    """What the engine needs of one device, on that device only."""

    def __init__(self, device: torch.device):
        self.device = device
        self.kind = device.type
        self.backend = _backend(self.kind)
        # streams and events: CUDA and XPU; pinned (page-locked) host buffers only help an async copy
        self.has_streams = self.kind in ("cuda", "xpu")
        self.pinned = self.has_streams

    def __str__(self) -> str:
        return describe(self.device)

    def activate(self) -> None:
        """Make this the thread's current device, so library calls without a device argument land here."""
        if self.has_streams:
            self.backend.set_device(self.device)

    def new_stream(self):
        return self.backend.Stream(self.device) if self.has_streams else None

    def current_stream(self):
        return self.backend.current_stream(self.device) if self.has_streams else None

    def stream_context(self, stream):
        return self.backend.stream(stream)

    def record(self, stream=None):
        """An event recorded on `stream` (default: this device's current stream); None without streams.

        CUDA events are blocking: a thread that waits on one sleeps until the GPU signals it, instead of
        spinning on a core that ffmpeg's decoder and encoder need (torch's default event spins).
        """
        if not self.has_streams:
            return None
        event = self.backend.Event(blocking=True) if self.kind == "cuda" else self.backend.Event()
        event.record(stream if stream is not None else self.current_stream())
        return event

    def synchronize(self) -> None:
        if self.kind in ("cuda", "xpu"):
            self.backend.synchronize(self.device)
        elif self.kind == "mps":
            torch.mps.synchronize()

    def empty_cache(self) -> None:
        if self.kind in ("cuda", "xpu"):
            with self.backend.device(self.device):
                self.backend.empty_cache()
        elif self.kind == "mps":
            torch.mps.empty_cache()

    def memory(self) -> tuple[int, int] | None:
        """(free, total) bytes of device memory, or None where it cannot be asked (CPU, MPS)."""
        if self.kind in ("cuda", "xpu") and hasattr(self.backend, "mem_get_info"):
            return self.backend.mem_get_info(self.device)
        return None

    def can_measure(self) -> bool:
        return self.memory() is not None and hasattr(self.backend, "max_memory_allocated")

    def reset_peak(self) -> None:
        self.backend.reset_peak_memory_stats(self.device)

    def allocated(self) -> int:
        return self.backend.memory_allocated(self.device)

    def peak(self) -> int:
        return self.backend.max_memory_allocated(self.device)

    def supports(self, dtype: torch.dtype) -> bool:
        """Whether the device has fast native kernels for `dtype` (auto picks only these)."""
        if dtype == torch.float32:
            return True
        if self.kind == "cpu":
            return False  # the CPU runs half precisions, but emulated and slower than fp32
        if self.kind == "cuda" and dtype == torch.bfloat16:
            # pre-Ampere GPUs (T4, V100) emulate bf16: slower than fp16 and not what auto should pick
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        return True


def describe(device: torch.device) -> str:
    """`cuda:1 (NVIDIA H200)`: the device and, for a GPU, its name."""
    if device.type in ("cuda", "xpu"):
        try:
            return f"{device} ({_backend(device.type).get_device_name(device)})"
        except Exception:  # noqa: BLE001 - a name is only for the log
            return str(device)
    return str(device)
