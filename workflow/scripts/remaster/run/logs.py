"""Logging for rule scripts: to the rule's log file and to the console, errors as one line."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import RemasterError


def step_logger(name: str, log_file: str | Path | None) -> logging.Logger:
    """A logger writing timestamped lines to the rule's `log:` file and to stderr."""
    log = logging.getLogger(f"remaster.{name}")
    log.setLevel(logging.INFO)
    log.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    for handler in handlers:
        handler.setFormatter(fmt)
        log.addHandler(handler)
    log.propagate = False
    return log


@contextmanager
def reported(log: logging.Logger):
    """Turn a RemasterError into one logged line and exit status 1, instead of a traceback."""
    try:
        yield
    except RemasterError as error:
        log.error("%s", error)
        raise SystemExit(1) from None


class Progress:
    """Logs frames done / total, fps and ETA at most every `interval` seconds."""

    def __init__(self, label: str, total: int, log: logging.Logger, interval: float = 5.0):
        self.label, self.total, self.log, self.interval = label, total, log, interval
        self.start = self.last = time.monotonic()
        self.done = 0

    def advance(self, frames: int) -> None:
        self.done += frames
        now = time.monotonic()
        if now - self.last >= self.interval or self.done == self.total:
            self.last = now
            elapsed = now - self.start
            fps = self.done / elapsed if elapsed else 0.0
            eta = (self.total - self.done) / fps if fps else float("inf")
            self.log.info(
                "%s: %d/%d frames, %.2f fps, ETA %s", self.label, self.done, self.total, fps, duration(eta)
            )


def duration(seconds: float) -> str:
    """`1h02m03s` / `2m03s` for a log line; `unknown` for an infinite ETA."""
    if seconds == float("inf"):
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"
