"""The temporal-stability stage: TemporalFix over the model chain's output, inside the shard job.

Per-frame upscalers shimmer: each frame is upscaled alone, so fine detail is drawn slightly differently
every frame. TemporalFix (`remaster.models.temporalfix`) averages each frame with its 3 neighbours on each
side, warped onto it, where it trusts them. The stage sits between the engine's model runner and its
writer (`for_shard`, one hook in `engine.upscale_file`):

- the shard's read plan (`shards.plan_cut` with `context`) reads up to RADIUS frames before and after the
  shard from the prepared title, and the model chain upscales them like the shard's own; the stage uses
  them as neighbours and writes only the shard's frames, so a frame at a shard's edge sees the same window
  as in one long shard and shards join seamlessly (tests/frames/test_temporal.py checks it);
- at the title's ends, where there are no neighbours, the window is mirrored (frame -1 is frame 1), as
  vs-temporalfix does;
- the network runs through the engine's `Runner`: the same precision rule, tiling and out-of-memory
  recovery (the tile halves and the same frame is redone) as the models.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import torch

from ..models.loading import run_tiled
from ..models.precision import first_that_matches, network_candidates
from ..models.temporalfix import RADIUS, WINDOW, load_temporalfix
from ..run.errors import RemasterError
from .runner import Runner  # the one run path for models
from .shards import Cut

TILE_OVERLAP = 64  # the plugin's overlap at HD and above: the flow's context reaches far beyond 16 pixels
MIN_TILE = 64  # the aligner's coarsest stage sees 1/32 of a tile


def mirror(index: int, length: int) -> int:
    """`index` reflected into [0, length) without repeating the edge: -1 → 1, length → length - 2."""
    if length <= 1:
        return 0
    period = 2 * (length - 1)
    index %= period
    return index if index < length else period - index


def window_indices(frame: int, length: int) -> list[int]:
    """The frames (0 … length-1 of what was read) that frame `frame`'s 7-frame window holds."""
    return [mirror(frame + offset, length) for offset in range(-RADIUS, RADIUS + 1)]


class TemporalChain:
    """TemporalFix as the engine's Runner runs a model chain: (N, 21, H, W) windows in, (N, 3, H, W) out."""

    scale = 1
    min_size = MIN_TILE

    def __init__(self, network: torch.nn.Module, device: torch.device, dtype: torch.dtype):
        self.network, self.device, self.dtype = network, device, dtype
        self.steps = [network]  # for the engine's log line: "TemporalFix"

    def _run(self, windows: torch.Tensor) -> torch.Tensor:
        count, _, height, width = windows.shape
        return self.network(windows.reshape(count, WINDOW, 3, height, width))

    def __call__(self, windows: torch.Tensor, tile: int = 0, overlap: int = 16) -> torch.Tensor:
        if tile and tile < max(windows.shape[-2:]):
            return run_tiled(self._run, windows, tile, max(overlap, TILE_OVERLAP), scale=1)
        return self._run(windows)


def _proven_dtype(network: torch.nn.Module, device: torch.device, precision: str, log: logging.Logger) -> torch.dtype:
    """fp32 on the CPU; on a GPU the requested precision, or (auto) the fastest, that matches fp32 on a test
    window within the models' tolerance (`precision.first_that_matches`)."""
    if device.type == "cpu":
        return torch.float32
    candidates = network_candidates(device, precision)
    generator = torch.Generator().manual_seed(0)
    window = torch.rand((1, WINDOW, 3, 72, 104), generator=generator).to(device)

    def run(dtype: torch.dtype) -> torch.Tensor:
        with torch.inference_mode():
            return network.to(device, dtype)(window.to(dtype))

    return first_that_matches(run, candidates, what=f"TemporalFix does not run on {device}", log=log,
                              explicit=precision != "auto")


class TemporalStage:
    """Takes the chain's output frames (the shard and its context frames, in order) and gives the shard's
    frames steadied, in order, one at a time; checks it got exactly the frames the read plan promised."""

    def __init__(self, network: TemporalChain, size: tuple[int, int], *, before: int, after: int, frames: int,
                 log: logging.Logger, label: str, finish=None, tile: int = 0):
        self.before, self.after, self.frames = before, after, frames
        self.length = before + frames + after  # what the shard's read plan reads
        self.context = before + after
        self.network = network
        self.runner = Runner(network, size, batch_size=1, tile=tile, overlap=TILE_OVERLAP, log=log,
                             label=f"{label}: TemporalFix", finish=finish)
        self.label = label
        self.buffer: dict[int, torch.Tensor] = {}
        self.received = 0
        self.next = before  # the next frame (of those read) to give out

    def feed(self, result: torch.Tensor, count: int) -> Iterator[tuple[torch.Tensor, int]]:
        """Keep `count` upscaled frames (float NCHW); yield (steadied frame, 1) for each that is ready."""
        for frame in result[:count]:
            if self.received >= self.length:
                raise RemasterError(f"{self.label}: TemporalFix got more than the {self.length} frames its read "
                                    "plan reads (the shard and its context); the shard was not kept")
            self.buffer[self.received] = frame.to(self.network.dtype).clamp(0, 1)  # as the plugin clamps
            self.received += 1
        yield from self._ready()

    def flush(self) -> Iterator[tuple[torch.Tensor, int]]:
        """The last frames, once every frame has been fed."""
        if self.received != self.length:
            raise RemasterError(f"{self.label}: TemporalFix got {self.received} of the {self.length} frames "
                                f"its read plan reads ({self.before} before, {self.frames}, {self.after} after); "
                                "the shard was not kept")
        yield from self._ready()

    def _ready(self) -> Iterator[tuple[torch.Tensor, int]]:
        while self.next < self.before + self.frames:
            indices = window_indices(self.next, self.length)
            if max(indices) >= self.received:
                return
            window = torch.stack([self.buffer[index] for index in indices])
            window = window.reshape(1, WINDOW * 3, *window.shape[-2:])
            with torch.inference_mode():  # as in the engine's loop; also when called alone (tests, benchmarks)
                results = list(self.runner.run(window, 1))
            yield from results
            self.next += 1
            for index in [index for index in self.buffer if index < self.next - RADIUS]:
                del self.buffer[index]


def load_stage_network(settings, device: torch.device, log: logging.Logger) -> TemporalChain:
    """TemporalFix at the run's strength on `device`, at a precision seen to run there."""
    temporal = settings.temporal
    network = load_temporalfix(Path(temporal.weights), temporal.strength, device=device)
    dtype = _proven_dtype(network, device, settings.precision, log)
    log.info("TemporalFix strength %s on %s at %s", temporal.strength, device, str(dtype).removeprefix("torch."))
    return TemporalChain(network.to(device, dtype), device, dtype)


def for_shard(settings, cut: Cut | None, frames: int, chain, size: tuple[int, int], log: logging.Logger,
              label: str, finish=None, network: TemporalChain | None = None) -> TemporalStage | None:
    """The stage for one shard job (None when `temporal.strength` is 0): `cut`'s context frames are its
    neighbours; without them (a whole file, a preview) the ends of what is read are mirrored."""
    temporal = getattr(settings, "temporal", None)
    if temporal is None or not temporal.enabled:
        return None
    before, after = cut.context if cut is not None else (0, 0)
    network = network or load_stage_network(settings, chain.device, log)
    return TemporalStage(network, size, before=int(before), after=int(after), frames=frames, log=log, label=label,
                         finish=finish)
