"""How much a shard's run may take of the machine: the batch size and tile the GPU's free memory holds
(measured with a one-frame probe), the smaller ones after running out of memory, and the disk space a
shard needs before it starts.

The batch and tile are planned once per shard (`plan_memory`); the Runner shrinks them (`shrink`) when a
batch runs out of memory anyway, and redoes the same frames.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

import torch

from ..models.devices import Device, is_out_of_memory
from ..run.errors import RemasterError
from ..run.settings import UpscaleSettings
from .chains import chain_name
from .convert import process

MOST_BATCH = 16  # beyond this a bigger batch buys no speed, only latency and memory
MEMORY_FRACTION = 0.8  # of the free GPU memory a batch may plan to use; the rest is headroom


def batch_for_memory(free_bytes: int, frame_bytes: int, *, most: int = MOST_BATCH) -> int:
    """Frames per batch that fit in MEMORY_FRACTION of `free_bytes` when one frame needs `frame_bytes`."""
    return max(1, min(most, int(free_bytes * MEMORY_FRACTION // max(frame_bytes, 1))))


def tile_for_memory(free_bytes: int, pixel_bytes: float, overlap: int, *, least: int = 32) -> int:
    """The largest tile (a multiple of 16 source pixels) whose overlapped square fits in the free memory."""
    side = int(math.sqrt(free_bytes * MEMORY_FRACTION / max(pixel_bytes, 1e-9))) - 2 * overlap
    return max(least, side // 16 * 16)


def default_batch(chain) -> int:
    return 1 if chain.device.type == "cpu" else 4


def shrink(batch_size: int, tile: int, height: int, width: int, min_size: int) -> tuple[int, int] | None:
    """(batch size, tile) to retry with after running out of memory on frames of height×width: half the batch,
    then at batch 1 half the tile (0: the whole frame), never below the model's `min_size` or 32 pixels;
    None when nothing smaller is left."""
    if batch_size > 1:
        return batch_size // 2, tile
    if (tile or max(width, height)) // 2 >= max(min_size, 32):
        return batch_size, (tile or max(width, height)) // 2
    return None


def peak_frame_bytes(chain, kit: Device, shape: tuple[int, int], size: tuple[int, int], tile: int,
                     overlap: int) -> int:
    """Device memory one frame takes through `process` (inputs, activations, outputs), measured."""
    kit.synchronize()
    kit.reset_peak()
    base = kit.allocated()
    frames = torch.zeros((1, *shape, 3), dtype=torch.uint8, device=chain.device)
    process(chain, frames, size, tile, overlap)
    del frames
    kit.synchronize()
    return max(kit.peak() - base, 1)


def measure_frame_bytes(chain, kit: Device, shape, size, tile: int, overlap: int) -> int | None:
    """`peak_frame_bytes`, or None when the probe itself runs out of memory (its tensors freed before return)."""
    failed = False
    try:
        return peak_frame_bytes(chain, kit, shape, size, tile, overlap)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        failed = True
    if failed:  # outside the handler, so the traceback no longer holds the failed probe's activations
        kit.empty_cache()
    return None


def plan_memory(chain, shape: tuple[int, int], size: tuple[int, int], settings: UpscaleSettings,
                log: logging.Logger) -> tuple[int, int]:
    """(batch size, tile) for a GPU: the config's when given, else what the free memory holds."""
    batch, tile, overlap = settings.batch_size, settings.tile, settings.tile_overlap
    kit = Device(chain.device)
    if batch is not None or not kit.can_measure():
        return batch or default_batch(chain), tile
    free, total = kit.memory()
    frame_bytes = measure_frame_bytes(chain, kit, shape, size, tile, overlap)
    if frame_bytes is None:
        # a whole frame does not fit: measure a small tile and take the biggest tile the memory holds
        probe = max(64, chain.min_size)
        probe_bytes = measure_frame_bytes(chain, kit, shape, size, probe, overlap)
        if probe_bytes is None:
            raise RemasterError(f"out of GPU memory on {kit} even for one {probe}-pixel tile of {chain_name(chain)} "
                                f"({free / 2**30:.1f} GiB free); free GPU memory or use a smaller model")
        pixel_bytes = probe_bytes / (probe + 2 * overlap) ** 2
        tile = tile_for_memory(free, pixel_bytes, overlap, least=max(32, chain.min_size))
        frame_bytes = int(pixel_bytes * (tile + 2 * overlap) ** 2)
    kit.empty_cache()
    batch = batch_for_memory(free, frame_bytes)
    log.info("GPU memory on %s: %.1f of %.1f GiB free, %.0f MiB per frame → batch %d, tile %s", kit, free / 2**30,
             total / 2**30, frame_bytes / 2**20, batch, tile or "none")
    return batch, tile


def check_disk_space(out_path: Path, pixels: int, label: str) -> None:
    """Refuse to start a shard the disk cannot hold (FFV1 10-bit 4:2:0 stores ~0.6 byte/pixel; 1 counted).

    $REMASTER_MIN_FREE_BYTES, when set, replaces the estimate as the free space a shard needs.
    """
    needed = int(os.environ.get("REMASTER_MIN_FREE_BYTES") or pixels)
    folder = Path(out_path).absolute().parent
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise RemasterError(f"{folder}: not enough disk space for {label} ({free / 1e9:.1f} GB free, about "
                            f"{needed / 1e9:.1f} GB needed); free some space and run the same command again")
