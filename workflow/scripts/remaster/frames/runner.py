"""The one run path for a loaded chain: `Runner` takes decoded frames batch by batch through the
conversion to the model's input, the chain and the conversion back, on one device, and recovers from
running out of memory by shrinking the batch, then the tile (`budget.shrink`) and redoing the same frames.

The shard job (`engine.py`), the temporal stage, preview and the benchmarks all run models through it.
"""

from __future__ import annotations

import logging

import torch

from ..models.devices import Device, is_out_of_memory
from ..run.errors import RemasterError, first_line
from .budget import shrink
from .convert import run_chain, to_model


def _padded(frames: torch.Tensor, size: int) -> torch.Tensor:
    """The batch repeated at its last frame up to `size`, so a compiled model sees one shape only."""
    missing = size - len(frames)
    return torch.cat([frames, frames[-1:].expand(missing, *frames.shape[1:])]) if missing > 0 else frames


class Runner:
    """The one run path for a loaded chain: batching, tiling and out-of-memory recovery on one device.

    `run` takes a batch of frames (uint8 NHWC on the device, or float NCHW already converted on the host)
    and gives converted results batch by batch; an out-of-memory anywhere in the conversion, the chain or
    the conversion back (torch's own or a cuDNN/cuBLAS allocation failure) halves the batch, then the tile,
    and redoes the same frames, never skipping one. Any other failure of a step is a one-line error.
    """

    def __init__(self, chain, size: tuple[int, int], *, batch_size: int, tile: int, overlap: int,
                 log: logging.Logger, label: str, finish=None, pad_to_batch: bool = False):
        self.chain, self.size = chain, size
        self.batch_size, self.tile, self.overlap = batch_size, tile, overlap
        self.log, self.label = log, label
        self.kit = Device(chain.device)
        self.finish = finish  # float result → what the caller keeps (None: the float result itself)
        self.pad_to_batch = pad_to_batch  # a compiled chain sees one batch shape only

    def _once(self, part: torch.Tensor, take: int) -> torch.Tensor:
        batch = part if part.is_floating_point() else to_model(part, self.chain.dtype)
        if batch.dtype != self.chain.dtype:
            batch = batch.to(self.chain.dtype)
        if self.pad_to_batch:
            batch = _padded(batch, self.batch_size)
        result = run_chain(self.chain, batch, self.size, self.tile, self.overlap)[:take]
        return self.finish(result) if self.finish is not None else result

    def _shrink(self, height: int, width: int, reason: str) -> None:
        self.kit.empty_cache()
        smaller = shrink(self.batch_size, self.tile, height, width, self.chain.min_size)
        if smaller is None:
            raise RemasterError(f"{self.label}: out of GPU memory on {self.kit} even at batch 1 and tile "
                                f"{self.tile} ({reason}); free GPU memory or set a smaller tile")
        self.batch_size, self.tile = smaller
        self.log.warning("%s: out of memory; retrying at batch %d, tile %d", self.label, self.batch_size, self.tile)

    def run(self, frames: torch.Tensor, count: int):
        """Yield (result, frames in it) for the first `count` frames, in order, each frame exactly once."""
        height, width = (frames.shape[1:3] if not frames.is_floating_point() else frames.shape[2:4])
        done = 0
        while done < count:
            take = min(self.batch_size, count - done)
            reason = None
            try:
                out = self._once(frames[done:done + take], take)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                reason = first_line(error, 120)
            if reason is not None:  # outside the handler: the failed attempt's tensors are freed by now
                self._shrink(height, width, reason)
                continue
            yield out, take
            done += take
