"""Read the title every later step works on: one DVD title as a player plays it, or joined VOB files.

A VIDEO_TS title is read by FFmpeg's ``dvdvideo`` demuxer (libdvdnav): it follows the PGC's cells in
PGC order for one angle, skips the title set's other titles and padding cells, and offsets timestamps
across cells and VOB IDs, so the title file's clock runs on without a reset. Its streams are remuxed
(never re-encoded, except LPCM, which Matroska cannot hold: it becomes FLAC, losslessly) into one
Matroska file that keeps the chapters, languages and the VobSub palette the demuxer reads from the IFO.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..run import media
from ..run.errors import RemasterError
from ..run.files import atomic_output
from ..run.records import Record
from .dvd import VOB_NAME, DiscError, Title, choose_title, list_titles
from .voblist import join_vobs

# Matroska holds these DVD audio codings as they are on the disc
COPIED_AUDIO = {"ac3", "eac3", "dts", "mp2", "mp3", "mp1", "aac", "flac", "truehd", "opus", "vorbis"}


def audio_codec_args(codecs: Sequence[str | None]) -> list[str]:
    """Per-track output codec options, from each audio track's codec name (ffprobe's, in track order): copy,
    bit for bit, what Matroska can hold; LPCM (pcm_dvd, pcm_bluray) to FLAC, lossless and a third of the size
    of PCM in Matroska, at the source's bit depth."""
    args: list[str] = []
    for n, codec in enumerate(codecs):
        if codec in COPIED_AUDIO:
            args += [f"-c:a:{n}", "copy"]
        else:
            # FLAC keeps up to 24 bits; DVD LPCM is 16, 20 or 24 bits
            args += [f"-c:a:{n}", "flac", f"-compression_level:a:{n}", "5"]
    return args


def dvd_input_args(folder: Path, title: int, angle: int, *, trim: bool = True) -> list[str]:
    """ffmpeg/ffprobe input options that read one title of a VIDEO_TS folder as a player does.

    `trim` skips the padding cells (shorter than a second) that open many titles; a title made only of
    such short cells would be read as empty, so it is read untrimmed."""
    return ["-f", "dvdvideo", "-title", str(title), "-angle", str(angle), *([] if trim else ["-trim", "0"])]


def _dvd_streams(folder: Path, title: int, angle: int, *, trim: bool = True) -> dict:
    cmd = [media.tool("ffprobe"), "-v", "error", *dvd_input_args(folder, title, angle, trim=trim), "-show_streams",
           "-show_chapters", "-show_format", "-of", "json", str(folder)]
    result = media.run(cmd, what=f"{folder}: reading title {title} with the dvdvideo demuxer")
    return json.loads(result.stdout)


@dataclass(frozen=True)
class Disc(Record):
    """The disc the title file came from, as read_title chose and read it: the disc's name and the title's
    record (its IFO facts; a rip without IFOs: its title set and VOBs). Written by read_title beside the
    title file; the probe reads it and never chooses a title again. VOB files that are not a disc: all None."""

    what = "disc"

    name: str | None = None  # the disc's folder or image name, for the master's title
    title: Title | None = None


def disc_name(path: Path) -> str | None:
    """The name a disc's folder (VIDEO_TS's parent) or image file gives the master."""
    path = Path(path)
    if path.is_file():
        name = path.stem
    else:
        name = (path.parent if path.name.upper() == "VIDEO_TS" else path).name
    return name.replace("_", " ").strip() or None


def pick_title(folder: Path, title_number: int | str, angle: int, log: logging.Logger) -> Title:
    """The title to read, with the reason logged; an angle the title does not have is a one-line error."""
    try:
        info, reason = choose_title(list_titles(folder, angle=angle), title_number)
    except DiscError as error:
        raise RemasterError(f"{folder}: {error}" if str(folder) not in str(error) else str(error)) from None
    log.info("%s", reason)
    if angle > info.angles:
        raise RemasterError(f"angle: {angle}: title {info.number} of {folder} has {info.angles} angle(s)")
    log.info("title %d: VTS %d, %.3f s, %d cells in PGC order (VOB/cell %s), %d chapters, angle %d of %d",
             info.number, info.vts, info.duration, len(info.cells),
             " ".join(f"{c.vob_id}/{c.cell_id}" for c in info.cells), len(info.chapters), angle, info.angles)
    return info


def read_dvd_title(folder: Path, out: Path, *, title_number: int | str = "auto", angle: int = 1,
                   log: logging.Logger, image: Path | None = None) -> Title:
    """Write title `title_number` (auto: the main feature) of a VIDEO_TS folder, angle `angle`, to `out`
    (Matroska): the video, every audio and subpicture stream the title's PGC enables, its chapters.

    With `image` (a DVD image or drive), `folder` holds the image's IFOs and the image is what FFmpeg reads."""
    info = pick_title(folder, title_number, angle, log)
    media_path = Path(image) if image else folder
    # every cell under a second (a short title): the demuxer's padding trim would leave nothing
    trim = any(cell.seconds >= 1.0 for cell in info.cells)
    if not trim:
        log.info("title %d has only cells shorter than a second: read without trimming padding cells", info.number)
    described = _dvd_streams(media_path, info.number, angle, trim=trim)
    audio = [s for s in described.get("streams", []) if s.get("codec_type") == "audio"]
    in_args: list[str] = []
    for n, track in enumerate(audio):
        if track.get("codec_name") == "mp1":
            # the demuxer names the IFO's "MPEG-1" coding mp1, but DVD-Video allows only Layer II there:
            # label it mp2 so the Matroska track says A_MPEG/L2 (the bytes are copied as they are)
            in_args += [f"-c:a:{n}", "mp2"]
            track["codec_name"] = "mp2"
    for track in audio:
        log.info("audio %s: %s, %s channels, language %s", track.get("id"), track.get("codec_name"),
                 track.get("channels"), (track.get("tags") or {}).get("language", "und"))
    for track in (s for s in described.get("streams", []) if s.get("codec_type") == "subtitle"):
        log.info("subtitle %s: %s, language %s", track.get("id"), track.get("codec_name"),
                 (track.get("tags") or {}).get("language", "und"))
    codecs = audio_codec_args([t.get("codec_name") for t in audio])
    with atomic_output(out) as tmp:
        cmd = media.ffmpeg_args(*dvd_input_args(folder, info.number, angle, trim=trim), *in_args, "-i", str(media_path),
                                "-map", "0:v:0", "-map", "0:a?", "-map", "0:s?", "-c", "copy", *codecs,
                                "-f", "matroska", tmp)
        media.run(cmd, what=f"{media_path}: reading title {info.number}")
    return info


def read_title(source, out: Path, *, title_number: int | str = "auto", angle: int = 1,
               log: logging.Logger) -> Disc:
    """read_title's work for any source that needs it: a DVD title (dvdvideo), or VOB files joined. Returns
    the disc record: the one place the title is chosen (`pick_title`) says which, and later steps read it."""
    log.info("ffmpeg: %s", media.version())
    if source.kind == "video_ts":
        info = read_dvd_title(source.folder, out, title_number=title_number, angle=angle, log=log)
        disc = Disc(disc_name(source.folder), info)
    elif source.kind == "iso":
        import tempfile

        from .dvd import iso_ifos

        image = source.parts[0]
        with tempfile.TemporaryDirectory() as ifos:
            try:
                folder = iso_ifos(image, Path(ifos))
            except DiscError as error:
                raise RemasterError(str(error)) from None
            log.info("%s: a DVD image; its IFOs read from the image, the title by FFmpeg's dvdvideo", image)
            info = read_dvd_title(folder, out, title_number=title_number, angle=angle, log=log, image=image)
        disc = Disc(disc_name(image), info)
    else:
        if str(title_number) != "auto" or angle != 1:
            log.warning("title_number and angle apply to a VIDEO_TS folder; %s are plain VOB files",
                        ", ".join(p.name for p in source.parts))
        log.info("joining %d VOBs: %s", len(source.parts), ", ".join(p.name for p in source.parts))
        join_vobs(list(source.parts), out, log=log)
        # a rip's folder without IFOs (resolve_source took its largest title set): the title set, no IFO facts
        disc = Disc(disc_name(source.folder), vob_title(source.parts)) if source.folder else Disc()
    log.info("wrote %s (%d bytes)", out, out.stat().st_size)
    if disc.title is not None:
        title = disc.title
        log.info("disc: title %s of VTS %s read from %s: %s audio, %s subtitle streams, %d chapters",
                 title.number, title.vts, title.source, len(title.audio), len(title.subtitles), len(title.chapters))
    return disc


def vob_title(vobs) -> Title:
    """The title record of a rip's VOBs without IFOs: their title set; what the IFOs would say is unknown."""
    match = VOB_NAME.match(Path(vobs[0]).name)
    return Title(None, int(match.group(1)) if match else 1, 1, None, (), (), source="vob-size",
                 vobs=tuple(Path(v) for v in vobs))
