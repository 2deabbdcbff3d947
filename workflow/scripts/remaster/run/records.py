"""The typed artefacts steps hand each other: the plan (frontend/plan.py), the prepared title with its shard
table, a shard's result.

Each is written once, atomically, by the step that makes it, and read by `load` wherever it is needed; the
shard table in particular is computed at prepare time only, never again from (frame_count, shard_frames).
`Record` gives a frozen dataclass its JSON form from its type hints, so a record is read and written by one
helper and a later step gets typed fields, not a dict to index.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

from .errors import RemasterError
from .files import atomic_output


def shard_count(frame_count: int, shard_frames: int) -> int:
    return max(1, math.ceil(frame_count / shard_frames))


def shard_bounds(frame_count: int, shard_frames: int, shard: int) -> tuple[int, int]:
    """Frame indices [start, end) of shard number `shard` (0-based)."""
    start = shard * shard_frames
    if shard < 0 or start >= max(frame_count, 1):
        raise RemasterError(f"shard {shard} is outside a title of {frame_count} frames")
    return start, min(start + shard_frames, frame_count)


def shard_names(frame_count: int, shard_frames: int) -> list[str]:
    """Shard wildcards, zero-padded so they sort in play order."""
    return [f"{k:04d}" for k in range(shard_count(frame_count, shard_frames))]


def read_json(path: str | Path) -> dict:
    """A step's JSON artefact; a missing or damaged one is a one-line error naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise RemasterError(f"{path}: cannot read this step's record: {error}") from None


def write_json(path: str | Path, data: dict) -> None:
    """Write a record under a temporary name, then rename: a reader never sees half of it."""
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def _plain(value: Any) -> Any:
    """A record's value as JSON holds it: records as mappings, tuples as lists."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _typed(hint: Any, value: Any) -> Any:
    """JSON's `value` as the type `hint` names (records, tuples, mappings of records, optional values)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        kinds = [arg for arg in args if arg is not type(None)]
        return _typed(kinds[0], value) if len(kinds) == 1 else value
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], item) for item in value)
        return tuple(_typed(arg, item) for arg, item in zip(args, value, strict=True)) if args else tuple(value)
    if origin is dict:
        return {key: _typed(args[1], item) for key, item in value.items()} if args else dict(value)
    if isinstance(hint, type) and is_dataclass(hint) and hasattr(hint, "from_dict"):
        return value if isinstance(value, hint) else hint.from_dict(value)
    if hint is Path:
        return Path(value)
    if hint in (int, float) and not isinstance(value, bool):
        return hint(value)
    return value


class Record:
    """A frozen dataclass that one step writes and later steps read: `dump`/`load` through JSON."""

    what: ClassVar[str] = "step's"  # names the record in an error: "not a plan record"

    def as_dict(self) -> dict:
        return {item.name: _plain(getattr(self, item.name)) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: dict):
        if not isinstance(data, dict):  # a list or a number where the record's mapping belongs
            raise TypeError(f"a JSON {type(data).__name__} where a mapping belongs")
        hints = typing.get_type_hints(cls)
        return cls(**{item.name: _typed(hints[item.name], data[item.name]) for item in fields(cls)
                      if item.name in data or not _has_default(item)})

    def dump(self, path: str | Path) -> None:
        write_json(path, self.as_dict())

    @classmethod
    def load(cls, path: str | Path):
        data = read_json(path)
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RemasterError(f"{path}: not a {cls.what} record ({type(error).__name__}: {error}); "
                                "delete it to make it again") from None


def _has_default(item) -> bool:
    from dataclasses import MISSING

    return item.default is not MISSING or item.default_factory is not MISSING


@dataclass(frozen=True)
class Shard(Record):
    """One unit of GPU work: frames [start, end) of the prepared title."""

    what = "shard"

    name: str  # the {shard} wildcard, zero-padded so that names sort in play order
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start


def shard_table(frame_count: int, shard_frames: int) -> tuple[Shard, ...]:
    """The shards of a title of `frame_count` frames, `shard_frames` each (the last one shorter)."""
    return tuple(Shard(name, *shard_bounds(frame_count, shard_frames, k))
                 for k, name in enumerate(shard_names(frame_count, shard_frames)))


@dataclass(frozen=True)
class TimedSection(Record):
    """One section of a hybrid title at its real rate (film at 4/5 of the source's, video at its field rate):
    its frames and their times, frame k at ``start + k * step`` s (exact fractions, as text)."""

    what = "timed section"

    kind: str  # "film" or "video"
    frames: int
    start: str
    step: str

    def times(self, factor: int = 1) -> list[Fraction]:
        """Each frame's time; ``factor`` frames per frame when interpolated (the new ones evenly between)."""
        start, step = Fraction(self.start), Fraction(self.step) / factor
        return [start + k * step for k in range(self.frames * factor)]

    @property
    def end(self) -> Fraction:
        """When the section's last frame ends (s)."""
        return Fraction(self.start) + self.frames * Fraction(self.step)


@dataclass(frozen=True)
class Prepared(Record):
    """The prepared title: what prepare_title made (frames, rate, size, damage found) and its shard table."""

    what = "prepared title's"

    frame_count: int
    fps: str  # the prepared frames' rate (the nominal rate of a variable-rate title)
    shards: tuple[Shard, ...]
    width: int = 0  # the model's input size: square pixels, cropped
    height: int = 0
    duration: float = 0.0  # seconds
    repeated_frames: int = 0  # to keep sync across gaps in the source's timestamps
    dropped_frames: int = 0
    seconds: float = 0.0  # how long preparing took
    vfr: bool = False  # a hybrid title kept at its sections' real rates
    timed: tuple[TimedSection, ...] = ()  # those sections (the plan's cadence.timed)
    damaged: tuple[tuple[float, float], ...] = ()  # (start, end) s of pictures the source lost

    def shard(self, name: str) -> Shard:
        for shard in self.shards:
            if shard.name == name:
                return shard
        raise RemasterError(f"shard {name} is not in this title's shard table ({len(self.shards)} shards)")

    @classmethod
    def from_facts(cls, facts: dict, shard_frames: int) -> Prepared:
        """The record of what prepare_title found, with the shard table fixed here, once."""
        table = shard_table(int(facts["frame_count"]), shard_frames)
        return cls.from_dict({**facts, "shards": [shard.as_dict() for shard in table]})

    def facts(self) -> dict:
        """What prepare_title found, without the shard table (the report's key/value table)."""
        return {key: value for key, value in self.as_dict().items() if key != "shards"}


@dataclass(frozen=True)
class ShardResult(Record):
    """What one upscale job did: frames, time, where it ran; written beside the shard for the report."""

    what = "shard result"

    frames: int
    seconds: float
    width: int
    height: int
    device: str
    dtype: str
    batch_size: int = 1
    tile: int = 0
    warmup_seconds: float = 0.0
    shard: str = ""  # the {shard} wildcard and the host: filled in by the upscale job, not the engine
    host: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0
