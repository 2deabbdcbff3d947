"""Colour, decided once: which matrix, primaries, transfer and range the source holds.

The plan asks `decide` once, from the probe's stream tags (where they mean something) or else from the
picture's line count, and writes the answer into plan.json. Every later stage reads that record and asks
it, never the probe: the prepared title is tagged with it, the upscaler's and the preview's decoders read
the frames with its matrix and range, and the delivery encode converts its primaries and transfer to
BT.709. So an untagged HD source is BT.709 everywhere, and a full-range capture is full range everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..disc.probe import ProbeVideo

# ffprobe's tag values the colorspace filter understands, per property
_KNOWN = {
    "matrix": {"bt709", "fcc", "bt470bg", "smpte170m", "smpte240m"},
    "primaries": {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020"},
    "transfer": {"bt709", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear"},
}
# ffprobe names two transfers by their systems; ffmpeg's -color_trc option knows them only by their gammas
_TRANSFER_NAMES = {"bt470bg": "gamma28", "bt470m": "gamma22"}
# the probe's (ffprobe's) name of each property
_PROBE_KEYS = {"matrix": "color_space", "primaries": "color_primaries", "transfer": "color_transfer"}
# what each system uses when the stream does not say: SMPTE 170M for NTSC, BT.470BG's matrix and primaries
# with 170M's transfer for PAL, BT.709 from 720 lines up (as HandBrake and players decide)
_SYSTEMS = {
    "ntsc": {"matrix": "smpte170m", "primaries": "smpte170m", "transfer": "smpte170m"},
    "pal": {"matrix": "bt470bg", "primaries": "bt470bg", "transfer": "smpte170m"},
    "hd": {"matrix": "bt709", "primaries": "bt709", "transfer": "bt709"},
}
HD_LINES = 720


@dataclass(frozen=True)
class Colour:
    """The source's colour as the plan decided it (FFmpeg's tag names), and how it was decided."""

    matrix: str  # YUV↔RGB matrix: smpte170m, bt470bg, bt709, …
    primaries: str
    transfer: str
    range: str  # "tv" (limited, 16-235) or "pc" (full, 0-255)
    system: str  # ntsc, pal or hd: whose defaults filled what the tags left open
    from_tags: tuple[str, ...] = ()  # the properties the stream's own tags gave

    @property
    def decoder_matrix(self) -> str:
        """swscale's `in_color_matrix` for reading the frames as RGB: BT.709 or BT.601 (170M and 470BG share it)."""
        return "bt709" if self.matrix == "bt709" else "bt601"

    def tags(self) -> list[str]:
        """ffmpeg output options that tag a stream with this colour (the prepared title keeps the source's)."""
        # ffprobe names transfers 4 and 5 bt470m/bt470bg; the -color_trc option knows them only as gamma22/28
        transfer = {"bt470m": "gamma22", "bt470bg": "gamma28"}.get(self.transfer, self.transfer)
        return ["-colorspace", self.matrix, "-color_primaries", self.primaries, "-color_trc", transfer,
                "-color_range", self.range]

    def to_bt709(self) -> str | None:
        """The ``colorspace`` filter converting BT.709-matrix YUV in this colour's primaries and transfer to
        BT.709's (the master's); None when they already are BT.709 (an HD source).

        The upscaled shards are BT.709-matrix YUV (the engine writes them so), limited range, still in the
        source's primaries and transfer: this is the one conversion left, made at the delivery encode."""
        if self.primaries == "bt709" and self.transfer == "bt709":
            return None
        return (f"colorspace=space=bt709:primaries=bt709:trc=bt709:range=tv:ispace=bt709:iprimaries={self.primaries}"
                f":itrc={self.transfer}:irange=tv")

    def evidence(self, height: int) -> str:
        """One sentence for the plan's log: what the tags gave and what the line count filled in."""
        return (f"{self.system.upper()} defaults for {height} lines, tags used: {', '.join(self.from_tags) or 'none'}, "
                f"range {self.range}; output BT.709")

    def as_dict(self) -> dict:
        return {**asdict(self), "from_tags": list(self.from_tags)}

    @classmethod
    def from_dict(cls, data: dict) -> Colour:
        return cls(**{**data, "from_tags": tuple(data.get("from_tags") or ())})


def system(height: int) -> str:
    """The system whose defaults fill untagged properties: NTSC (480/240 lines), PAL (576/288, or other SD
    over 500 lines), HD from 720 lines up."""
    if height >= HD_LINES:
        return "hd"
    return "pal" if height in (576, 288) or (height not in (480, 240) and height > 500) else "ntsc"


def decide(video: ProbeVideo) -> Colour:
    """The source's colour from the probe's video stream (its `height` and ffprobe's colour tags): each tag
    the colorspace filter understands is kept, the rest come from the system the line count implies; full
    range when the stream says so (`pc` or `jpeg`), else limited."""
    defaults = _SYSTEMS[system(video.height)]
    values, from_tags = {}, []
    for key, default in defaults.items():
        tag = str(getattr(video, _PROBE_KEYS[key]) or "")
        tag = _TRANSFER_NAMES.get(tag, tag) if key == "transfer" else tag
        values[key] = tag if tag in _KNOWN[key] else default
        if tag in _KNOWN[key]:
            from_tags.append(key)
    full = video.color_range in ("pc", "jpeg")
    return Colour(**values, range="pc" if full else "tv", system=system(video.height),
                  from_tags=tuple(from_tags))
