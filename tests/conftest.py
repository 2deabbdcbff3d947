"""Shared fixtures: generated discs and small real spandrel models. Helpers live in tests/support/."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.workflow import make_compact


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_compact(tmp_path_factory.mktemp("models") / "tiny compact ×2.safetensors")


@pytest.fixture(scope="session")
def demo_disc(tmp_path_factory) -> Path:
    """A 24-frame NTSC disc: title split over two VOBs, a menu VOB, an extra title, two AC3 tracks."""
    from remaster.demo import make_disc

    return make_disc(tmp_path_factory.mktemp("disc"), frames=24)
