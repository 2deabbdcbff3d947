"""Pipes to and from ffmpeg: wide pipes, whole frames read into a buffer, and its messages kept in a file
(not a pipe read at exit, which 64 KiB of warnings would fill and block ffmpeg) for a one-line error."""

from __future__ import annotations

import os

PIPE_BYTES = 1 << 20  # Linux's default pipe is 64 KiB: one HD frame takes dozens of wake-ups to cross it


def widen_pipe(stream, size: int = PIPE_BYTES) -> int:
    """Grow a pipe to `size` bytes (F_SETPIPE_SZ); the size it has, unchanged where the system refuses."""
    import fcntl

    set_size, get_size = getattr(fcntl, "F_SETPIPE_SZ", 1031), getattr(fcntl, "F_GETPIPE_SZ", 1032)
    try:
        return fcntl.fcntl(stream.fileno(), set_size, size)
    except OSError:  # above /proc/sys/fs/pipe-max-size for an unprivileged user
        try:
            return fcntl.fcntl(stream.fileno(), get_size)
        except OSError:
            return 0


def read_into(stream, view: memoryview) -> int:
    """Read from `stream` until `view` is full or the stream ends; the bytes read (a short count: the end)."""
    got = 0
    while got < len(view):
        count = stream.readinto(view[got:])
        if not count:
            break
        got += count
    return got


LAST_LINE_BYTES = 1 << 16  # far beyond one ffmpeg message line (its logger cuts lines at 1 KiB)


def _tail_text(file, size: int) -> str:
    """The last `size` bytes a process wrote to `file` (a temporary file), decoded."""
    file.seek(0, os.SEEK_END)
    file.seek(max(0, file.tell() - size))
    return file.read().decode(errors="replace")


def stderr_tail(file, most: int = 300) -> str:
    """The last `most` characters of what a process wrote to `file` (a temporary file), for a one-line error."""
    text = _tail_text(file, 4 * most).strip()
    file.close()
    return " ".join(text[-most:].split())


def stderr_last_line(file) -> str:
    """The last line a process wrote to `file` (a temporary file), "no message" when it wrote none, for a
    one-line error."""
    text = _tail_text(file, LAST_LINE_BYTES)
    file.close()
    return (text.strip().splitlines() or ["no message"])[-1]
