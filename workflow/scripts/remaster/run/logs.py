"""Logging for rule scripts: to the rule's log file and to the console, errors as one line."""

from __future__ import annotations

import logging
import sys
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
