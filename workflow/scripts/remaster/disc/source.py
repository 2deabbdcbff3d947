"""What the user pointed `source:` at: a VIDEO_TS folder (or the disc's root folder), a DVD image (an ISO
file, or a drive's device), VOB files (one or several), or any video file."""

from __future__ import annotations

import ctypes.util
import stat
from dataclasses import dataclass
from pathlib import Path

from ..run.errors import RemasterError
from .dvd import VOB_NAME

IMAGE_SUFFIXES = (".iso", ".img")  # DVD images as ddrescue, dd, ImgBurn and k3b write them


@dataclass(frozen=True)
class Source:
    """The source's files: a VIDEO_TS folder's title VOBs or a DVD image (read title by title with FFmpeg's
    dvdvideo demuxer), VOB files in play order (joined), or one file (read as is)."""

    parts: tuple[Path, ...]
    kind: str  # "video_ts", "iso", "vobs" or "file"
    folder: Path | None = None  # the VIDEO_TS folder, for kind "video_ts"

    @property
    def needs_reading(self) -> bool:
        """Whether read_title makes the one title file every later step reads (VOBs, even one: a VOB ID's
        clock reset inside it is offset there)."""
        return self.kind in ("video_ts", "iso", "vobs")

    @property
    def is_dvd(self) -> bool:
        """Read as a DVD (its IFOs' titles, through the dvdvideo demuxer): a VIDEO_TS folder or an image."""
        return self.kind in ("video_ts", "iso")

def video_ts_folder(path: Path) -> Path:
    """The VIDEO_TS folder of a disc's root folder (VIDEO_TS in any case: rips made on Windows or macOS
    often write video_ts), or `path` itself."""
    if path.name.upper() != "VIDEO_TS":
        for child in sorted(path.iterdir()):
            if child.is_dir() and child.name.upper() == "VIDEO_TS":
                return child
    return path


def _is_block_device(path: Path) -> bool:
    try:
        return stat.S_ISBLK(path.stat().st_mode)
    except OSError:
        return False


def _drive(path: Path) -> Source:
    """A disc drive (/dev/sr0): read like an image when libdvdcss can undo CSS, else one line saying how."""
    if ctypes.util.find_library("dvdcss") is None:
        raise RemasterError(
            f"{path}: reading a DVD in a drive needs libdvdcss (most discs are CSS-encrypted), which is not "
            "installed (Debian main does not ship it); rip the disc first (dvdbackup -M, MakeMKV, or "
            f"`dd if={path} of=disc.iso` for an unencrypted disc) and point source: at the VIDEO_TS folder or .iso")
    return Source((path,), "iso")


def resolve_source(source: str | list[str]) -> Source:
    """Turn the `source:` config value into the title's parts, checking that they exist."""
    if isinstance(source, (list, tuple)):
        parts = [Path(p) for p in source]
        for part in parts:
            if not part.is_file():
                raise RemasterError(f"{part}: source file not found; check source: in your config")
        if not parts:
            raise RemasterError("source: is an empty list; give a VIDEO_TS folder, VOB files or a video file")
        return Source(tuple(parts), "vobs" if len(parts) > 1 or _is_vob(parts[0]) else "file")
    path = Path(source)
    if path.is_dir():
        folder = video_ts_folder(path)
        titles = sorted((p for p in folder.iterdir() if (m := VOB_NAME.match(p.name)) and m.group(2) != "0"),
                        key=lambda p: p.name.upper())
        if not titles:  # the menu VOBs (VTS_xx_0) alone are not a title
            raise RemasterError(f"{folder}: no title VOBs (VTS_xx_1.VOB …) in this folder; "
                                "point source: at a VIDEO_TS folder, a disc image or a video file")
        if any(p.suffix.upper() in (".IFO", ".BUP") for p in folder.iterdir()):
            # which title is read (title_number, angle) is read_title's decision, from the IFOs
            return Source(tuple(titles), "video_ts", folder)
        from .dvd import DiscError, find_title

        try:  # a rip without IFOs: the title set with the most data, its VOBs joined as a player would
            return Source(tuple(find_title(folder, ffprobe=None).vobs), "vobs", folder)
        except DiscError as error:
            raise RemasterError(str(error)) from None
    if _is_block_device(path):
        return _drive(path)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return Source((path,), "iso")
        # a lone VOB (a rip without IFOs) is joined like a list: its VOB IDs' clock resets are offset
        return Source((path,), "vobs" if _is_vob(path) else "file")
    raise RemasterError(f"{path}: source not found; check source: in your config")


def _is_vob(path: Path) -> bool:
    return path.suffix.upper() == ".VOB"


def title_seconds(source: Source, ffprobe: str, *, title_number: int | str = "auto", angle: int = 1) -> float:
    """The length of the title the run will master, for the pre-flight disk estimate: a DVD's chosen title
    from its IFOs (not every title set of the disc), else the source files' duration."""
    from ..run.disk import source_seconds

    if source.is_dvd:
        import tempfile

        from .dvd import DiscError, choose_title, iso_ifos, list_titles

        try:
            if source.kind == "video_ts":
                titles = list_titles(source.folder, angle=angle)
            else:
                with tempfile.TemporaryDirectory() as ifos:
                    titles = list_titles(iso_ifos(source.parts[0], Path(ifos)), angle=angle)
            seconds = choose_title(titles, title_number)[0].duration
        except DiscError:
            seconds = None  # read_title names a damaged disc properly; the estimate falls back
        if seconds:
            return float(seconds)
        if source.kind == "iso":
            return 0.0
    return source_seconds(source.parts, ffprobe)
