"""Checks before any job runs: config keys, tools, the output path, and locks left by a killed run.

Called from `workflow/rules/common.smk` at parse time (and from the onstart hook), so a mistake stops the
run in its first second with one line, never after hours of GPU work, and never with a traceback.
"""

from __future__ import annotations

import difflib
import os
import socket
import sys
from pathlib import Path

import yaml

from . import media
from .errors import RemasterError

# Snakemake's lock files (`N.input.lock`, `N.output.lock`) live here, relative to the working directory
LOCK_DIR = Path(".snakemake") / "locks"
OWNER_SUFFIX = ".owner"  # `N.input.lock.owner`: "pid host" of the run holding `N.input.lock`


def fail(message: str) -> None:
    """Print one line for the user and stop Snakemake with exit status 1 (no traceback)."""
    print(f"Error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def _unknown_keys(config: dict, schema: dict, prefix: str = "") -> list[str]:
    """Messages for keys the schema does not allow, each with the nearest valid key when there is one."""
    if not isinstance(config, dict) or not isinstance(schema, dict):
        return []
    known = schema.get("properties") or {}
    messages = []
    for key, value in config.items():
        if key in known:
            messages += _unknown_keys(value, known[key], f"{prefix}{key}.")
        elif schema.get("additionalProperties") is False:
            nearest = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            hint = f"did you mean '{prefix}{nearest[0]}'?" if nearest else f"valid keys: {', '.join(known)}"
            messages.append(f"unknown config key '{prefix}{key}': {hint}")
    return messages


def check_config_keys(config: dict, schema_path: str | os.PathLike) -> None:
    """Raise a RemasterError naming the first unknown key and the valid key it was probably meant to be."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    messages = _unknown_keys(config, schema)
    if messages:
        raise RemasterError(messages[0] + " (the keys are explained in config/README.md)")


def check_tools(kinds: set[str] | str | None = None) -> str:
    """ffmpeg and ffprobe are needed by every step: say how to install them before anything runs, and
    refuse an ffmpeg that cannot read the source (a VIDEO_TS folder needs the `dvdvideo` demuxer).
    Returns the line naming the ffmpeg in use, for the log."""
    for name in ("ffmpeg", "ffprobe"):
        media.tool(name)
    kinds = {kinds} if isinstance(kinds, str) else set(kinds or ())
    if kinds & {"video_ts", "iso"} and "dvdvideo" not in media.demuxers():
        raise RemasterError(f"{media.tool('ffmpeg')} has no dvdvideo demuxer (FFmpeg >= 7.1 with libdvdnav) to "
                            "read a VIDEO_TS folder or DVD image: run ./setup.sh (pinned FFmpeg 8) or unset "
                            "REMASTER_FFMPEG")
    return media.version()


def check_output(path: str | os.PathLike) -> None:
    """The master's folder can be created and written (checked now, not at the mux after hours of work)."""
    folder = Path(path).absolute().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise RemasterError(f"output: {path}: {existing} is a file, not a folder; choose another output path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RemasterError(f"output: {path}: {existing} is not writable; choose another output path")


def _alive(pid: int) -> bool:
    """Whether a Snakemake process with this id runs on this machine."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)  # no /proc: any process with this id counts as alive
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return b"snakemake" in cmdline


def record_lock_owner(lock_files) -> None:
    """Next to each of this run's lock files, note which process holds it (read by `clear_stale_locks`)."""
    for lock_file in lock_files:
        try:
            Path(f"{lock_file}{OWNER_SUFFIX}").write_text(f"{os.getpid()} {socket.gethostname()}\n")
        except OSError:
            pass  # the lock stays; at worst a later run after a crash asks for --unlock


def clear_stale_locks(lock_dir: Path = LOCK_DIR) -> list[str]:
    """Remove the lock files of runs that were killed (their process is gone from this machine).

    Snakemake keeps its locks after a SIGKILL or a power loss and refuses the next run until
    `--unlock`; a lock whose recorded owner is dead is removed instead, so the plain command resumes.
    Locks of live runs, of runs on other machines, and unrecorded ones are left alone.
    """
    removed = []
    for owner_file in sorted(lock_dir.glob(f"*.lock{OWNER_SUFFIX}")):
        try:
            pid, host = owner_file.read_text().split()
        except (OSError, ValueError):
            continue
        if host != socket.gethostname() or _alive(int(pid)):
            continue
        lock_file = owner_file.with_name(owner_file.name.removesuffix(OWNER_SUFFIX))
        lock_file.unlink(missing_ok=True)
        owner_file.unlink(missing_ok=True)
        removed.append(f"{lock_file} (pid {pid})")
    return removed
