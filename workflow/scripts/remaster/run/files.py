"""Writing outputs so that a reader never sees half of one: a temporary name, renamed when complete."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


def partial_path(path: Path) -> Path:
    """Where an output is written until it is complete; a rerun never mistakes it for the real file."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


@contextmanager
def atomic_output(path: Path):
    """Yield a temporary path to write; rename it to `path` only if the block finishes without error."""
    path = Path(path)
    tmp = partial_path(path)
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
