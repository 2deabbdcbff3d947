"""Temporal stability: does the master flicker more than the source it came from?

Two numbers per frame pair, on 8-bit luma at the source's size (the master is scaled down to it first):
- motion: the mean absolute difference between consecutive frames, over the whole picture;
- static noise: the same, over the pixels the *source* left (almost) unchanged. A model that invents
  detail differently in every frame shows here first, where nothing should move.
Each is summed per shard and divided by the source's; a ratio near 1 means the master moves exactly as
much as the source, above 1 that it adds flicker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..run.records import Record

# a source pixel changing by at most this many luma levels between two frames counts as static
STATIC_LEVELS = 2


@dataclass
class _Sums:
    pairs: int = 0
    motion: float = 0.0
    static_pixels: int = 0
    static_diff: float = 0.0


@dataclass(frozen=True)
class ShardFlicker(Record):
    """One shard's temporal numbers; ratios are master ÷ source (None where the source does not move)."""

    what = "shard flicker"

    shard: str
    first_frame: int
    frames: int
    source_motion: float
    master_motion: float
    motion_ratio: float | None
    source_static_noise: float | None
    master_static_noise: float | None
    static_ratio: float | None


def _ratio(master: float | None, source: float | None) -> float | None:
    if master is None or source is None or source <= 1e-6:
        return None
    return master / source


class FlickerMeter:
    """Accumulates frame-pair differences of the source and the master, frame by frame.

    `bounds` are the master's shards as (name, first frame, end frame); the source's frames are mapped to
    them by position in time, so a master with another frame count (a later IVTC plan) is still measured.
    The static-region numbers need both streams frame for frame and are only kept when their counts match.
    """

    def __init__(self, bounds: list[tuple[str, int, int]]):
        self.bounds = bounds
        self.master = [_Sums() for _ in bounds]
        self.source = [_Sums() for _ in bounds]
        self.master_frames = 0
        self.source_frames = 0
        self._previous_master: np.ndarray | None = None
        self._previous_source: np.ndarray | None = None
        self._source_motions: list[float] = []
        self._aligned = True

    def _shard_of(self, frame: int) -> int:
        for index, (_, start, end) in enumerate(self.bounds):
            if start <= frame < end:
                return index
        return len(self.bounds) - 1

    def add(self, source: np.ndarray | None, master: np.ndarray | None) -> None:
        """The next frame of each stream (None once a stream has ended): 2-D uint8 luma of equal shape."""
        if source is None or master is None:
            self._aligned = False
        static = None
        if source is not None:
            if self._previous_source is not None:
                diff = np.abs(source.astype(np.int16) - self._previous_source)
                self._source_motions.append(float(diff.mean()))
                static = diff <= STATIC_LEVELS
                if master is not None and self._aligned:
                    sums = self.source[self._shard_of(self.source_frames)]
                    sums.static_pixels += int(static.sum())
                    sums.static_diff += float(diff[static].sum())
            self._previous_source = source.astype(np.int16)
            self.source_frames += 1
        if master is not None:
            if self._previous_master is not None:
                diff = np.abs(master.astype(np.int16) - self._previous_master)
                sums = self.master[self._shard_of(self.master_frames)]
                sums.pairs += 1
                sums.motion += float(diff.mean())
                if static is not None and self._aligned:
                    sums.static_pixels += int(static.sum())
                    sums.static_diff += float(diff[static].sum())
            self._previous_master = master.astype(np.int16)
            self.master_frames += 1

    def _spread_source(self) -> None:
        """Give each master shard the source's frame pairs that fall in the same stretch of time."""
        pairs = len(self._source_motions)
        total = max(self.master_frames, 1)
        for index, (_, start, end) in enumerate(self.bounds):
            begin = round(max(start - 1, 0) * pairs / max(total - 1, 1))
            stop = round(max(end - 1, 0) * pairs / max(total - 1, 1))
            chunk = self._source_motions[begin:stop]
            self.source[index].pairs = len(chunk)
            self.source[index].motion = float(sum(chunk))

    def result(self) -> list[ShardFlicker]:
        """Per shard, in play order."""
        self._spread_source()
        aligned = self._aligned and self.master_frames == self.source_frames
        shards = []
        for (name, start, end), master, source in zip(self.bounds, self.master, self.source):
            master_motion = master.motion / master.pairs if master.pairs else 0.0
            source_motion = source.motion / source.pairs if source.pairs else 0.0
            master_static = source_static = None
            if aligned and source.static_pixels:
                master_static = master.static_diff / master.static_pixels
                source_static = source.static_diff / source.static_pixels
            shards.append(ShardFlicker(
                shard=name, first_frame=start, frames=end - start,
                source_motion=round(source_motion, 4), master_motion=round(master_motion, 4),
                motion_ratio=_round(_ratio(master_motion, source_motion)),
                source_static_noise=_round(source_static), master_static_noise=_round(master_static),
                static_ratio=_round(_ratio(master_static, source_static)),
            ))
        return shards


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def summary(shards: list[ShardFlicker]) -> dict:
    """The whole title's numbers, each shard weighted by its frame count."""
    frames = sum(s.frames for s in shards) or 1

    def weighted(field: str) -> float | None:
        values = [(getattr(s, field), s.frames) for s in shards if getattr(s, field) is not None]
        if not values:
            return None
        return round(sum(v * n for v, n in values) / sum(n for _, n in values), 4)

    source_motion, master_motion = weighted("source_motion"), weighted("master_motion")
    source_static, master_static = weighted("source_static_noise"), weighted("master_static_noise")
    return {
        "frames": frames,
        "source_motion": source_motion,
        "master_motion": master_motion,
        "motion_ratio": _round(_ratio(master_motion, source_motion)),
        "source_static_noise": source_static,
        "master_static_noise": master_static,
        "static_ratio": _round(_ratio(master_static, source_static)),
    }


TSV_COLUMNS = ["shard", "first_frame", "frames", "source_motion", "master_motion", "motion_ratio",
               "source_static_noise", "master_static_noise", "static_ratio"]


def to_tsv(shards: list[ShardFlicker]) -> str:
    def cell(value) -> str:
        return "NA" if value is None else str(value)

    lines = ["\t".join(TSV_COLUMNS)]
    lines += ["\t".join(cell(getattr(s, column)) for column in TSV_COLUMNS) for s in shards]
    return "\n".join(lines) + "\n"
