"""One GPU per job on a machine with several: each job claims a free GPU and holds it until it ends.

`snakemake --resources gpu=N` starts up to N GPU jobs at once, and without a scheduler each would pick the
first visible GPU. A claim is an exclusive `flock` on a file named after the GPU's UUID in a folder on this
machine: the kernel drops the lock when the process ends in any way (exit, exception, SIGKILL, OOM killer),
so a dead job's GPU is free again at once, with no stale lock to clean up. UUIDs, not indices, name the
files, because under SLURM every job sees its own GPU as index 0.

`gpu_jobs_per_device: N` gives each GPU N claim slots (`<uuid>.slot<k>.lock`): jobs fill slot 0 of every
GPU before slot 1 of any, so they spread over the GPUs first and share one only when all are busy.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..run.errors import RemasterError

POLL_SECONDS = 1.0


def claim_folder() -> Path:
    """Where claims live: $REMASTER_GPU_CLAIMS, else a per-user folder in this machine's temp dir."""
    folder = os.environ.get("REMASTER_GPU_CLAIMS") or Path(tempfile.gettempdir()) / f"remaster-gpu-claims-{os.getuid()}"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Claim:
    """A held GPU: its index among the visible ones and the key (UUID) its lock file is named after."""

    index: int
    key: str
    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = -1


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def try_claim(keys: list[str], folder: Path) -> Claim | None:
    """Claim the first free key, or None if every one is held by a live process."""
    for index, key in enumerate(keys):
        path = folder / f"{_safe(key)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        # who holds it, for a person reading the folder; the lock itself is what counts
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return Claim(index, key, path, fd)
    return None


def slot_keys(keys: list[str], per_device: int) -> list[str]:
    """The claim keys for `per_device` jobs on each GPU, every GPU's first slot before any GPU's second."""
    if per_device <= 1:
        return list(keys)
    return [f"{key}.slot{slot}" for slot in range(per_device) for key in keys]


def claim(keys: list[str], folder: Path | None = None, *, wait: float = float("inf"),
          log: logging.Logger | None = None, per_device: int = 1) -> Claim:
    """Claim one of `keys` (one per visible GPU; `per_device` jobs each), waiting up to `wait` seconds for one
    to come free. The claim's `index` is its GPU's."""
    if not keys:
        raise RemasterError("no GPU to claim: torch sees none; use device: cpu")
    folder = claim_folder() if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    warned = False
    slots = slot_keys(keys, per_device)
    while (held := try_claim(slots, folder)) is None:
        if time.monotonic() >= deadline:
            raise RemasterError(f"every GPU of this machine ({len(keys)}, {per_device} job(s) each) is held by other "
                                f"remaster jobs (claims in {folder}); run with --resources gpu={len(slots)} or fewer")
        if log is not None and not warned:
            log.warning("all %d GPUs are claimed by other jobs (%s); waiting for one", len(keys), folder)
            warned = True
        time.sleep(POLL_SECONDS)
    held.index %= len(keys)  # slot-major order: position modulo the GPU count is the GPU
    return held


def gpu_keys(kind: str = "cuda") -> list[str]:
    """One key per visible GPU: its UUID where torch reports one, else its PCI bus id, else its index."""
    import torch

    backend = torch.cuda if kind == "cuda" else getattr(torch, kind)
    keys = []
    for index in range(backend.device_count()):
        key = ""
        try:
            props = backend.get_device_properties(index)
            key = str(getattr(props, "uuid", "") or "")
            if not key and getattr(props, "pci_bus_id", None) is not None:
                key = f"pci-{props.pci_domain_id}-{props.pci_bus_id}-{props.pci_device_id}"
        except Exception:  # noqa: BLE001 - fall back to the index below
            key = ""
        keys.append(f"{kind}-{key}" if key else f"{kind}-index-{index}")
    return keys


@contextmanager
def job_device(requested: str, log: logging.Logger, per_device: int = 1):
    """The torch device a GPU job runs on, claimed for the job's lifetime when `requested` is `auto`
    (one of `per_device` slots of a GPU: gpu_jobs_per_device).

    An explicit `cuda:N` is the user's choice and is not claimed; the CPU and MPS need no claim.
    """
    from .devices import describe, resolve

    device = resolve(requested)
    if requested != "auto" or device.type not in ("cuda", "xpu"):
        yield device
        return
    keys = gpu_keys(device.type)
    held = claim(keys, log=log, per_device=per_device)
    device = type(device)(device.type, held.index)
    log.info("GPU claimed: %s, %d of %d visible (claim %s)", describe(device), held.index + 1, len(keys), held.path)
    try:
        yield device
    finally:
        held.release()
