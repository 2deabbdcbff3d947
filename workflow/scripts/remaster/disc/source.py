"""What the user pointed `source:` at: a VIDEO_TS folder, VOB files, or any video file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..run.errors import RemasterError

VOB_NAME = re.compile(r"^VTS_(\d\d)_(\d)\.VOB$", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """The source's files: a VIDEO_TS folder's title VOBs (read title by title with FFmpeg's dvdvideo
    demuxer), VOB files in play order (joined), or one file (read as is)."""

    parts: tuple[Path, ...]
    kind: str  # "video_ts", "vobs" or "file"
    folder: Path | None = None  # the VIDEO_TS folder, for kind "video_ts"

    @property
    def needs_reading(self) -> bool:
        """Whether read_title makes the one title file every later step reads (VOBs, even one: a VOB ID's
        clock reset inside it is offset there)."""
        return self.kind in ("video_ts", "vobs")


def resolve_source(source: str | list[str]) -> Source:
    """Turn the `source:` config value into the title's parts, checking that they exist."""
    if isinstance(source, (list, tuple)):
        parts = [Path(p) for p in source]
        for part in parts:
            if not part.is_file():
                raise RemasterError(f"{part}: source file not found; check source: in your config")
        if not parts:
            raise RemasterError("source: is an empty list; give a VIDEO_TS folder, VOB files or a video file")
        return Source(tuple(parts), "vobs" if len(parts) > 1 else "file")
    path = Path(source)
    if path.is_dir():
        folder = path / "VIDEO_TS" if (path / "VIDEO_TS").is_dir() else path
        titles = sorted((p for p in folder.iterdir() if (m := VOB_NAME.match(p.name)) and m.group(2) != "0"),
                        key=lambda p: p.name.upper())
        if not titles:  # the menu VOBs (VTS_xx_0) alone are not a title
            raise RemasterError(f"{folder}: no title VOBs (VTS_xx_1.VOB …) in this folder; "
                                "point source: at a VIDEO_TS folder or a video file")
        if any(p.suffix.upper() in (".IFO", ".BUP") for p in folder.iterdir()):
            # which title is read (title_number, angle) is read_title's decision, from the IFOs
            return Source(tuple(titles), "video_ts", folder)
        from .dvd import DiscError, find_title

        try:  # a rip without IFOs: the title set with the most data, its VOBs joined as a player would
            return Source(tuple(find_title(folder, ffprobe=None).vobs), "vobs", folder)
        except DiscError as error:
            raise RemasterError(str(error)) from None
    if path.is_file():
        return Source((path,), "file")
    raise RemasterError(f"{path}: source not found; check source: in your config")
