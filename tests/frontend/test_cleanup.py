"""Clean-up presets: each runs in the pinned FFmpeg 8, removes noise, and sits in the plan's chain after the
scan filters and before crop and resize."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image

from remaster.frontend.cleanup import PRESETS, cleanup_filter
from remaster.run import media
from remaster.run.errors import RemasterError
from support.workflow import REPO

PHOTO = REPO / "workflow" / "resources" / "demo" / "photos" / "coffee.png"


def _filtered(frames: np.ndarray, graph: str) -> np.ndarray:
    count, height, width, _ = frames.shape
    out = subprocess.run([media.tool("ffmpeg"), "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-s", f"{width}x{height}", "-framerate", "25", "-i", "pipe:0", "-vf",
                          ",".join(f for f in ("format=yuv420p", graph, "format=rgb24") if f),
                          "-f", "rawvideo", "pipe:1"], input=frames.tobytes(), capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(frames.shape)


@pytest.mark.unit
@pytest.mark.parametrize("name", [n for n in PRESETS if n != "none"])
def test_each_preset_takes_its_damage_off_a_real_picture(name):
    """deblock against 8×8 block edges (JPEG at quality 15, the same transform as MPEG-2), the denoisers
    against noise."""
    import io

    photo = Image.open(PHOTO).convert("RGB").resize((160, 112))
    clean = np.stack([np.asarray(photo)] * 4)
    if name == "deblock":
        coded = io.BytesIO()
        photo.save(coded, "JPEG", quality=15)
        noisy = np.stack([np.asarray(Image.open(coded).convert("RGB"))] * 4)
    else:
        noisy = np.clip(clean + np.random.default_rng(1).normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
    baseline = _filtered(noisy, "")  # the same 4:2:0 round trip, no clean-up
    cleaned = _filtered(noisy, cleanup_filter(name))

    def error(frames):
        return float(np.mean((frames[1:].astype(float) - clean[1:]) ** 2))

    assert error(cleaned) < error(baseline), f"{name}: {error(cleaned):.1f} vs {error(baseline):.1f}"


@pytest.mark.unit
def test_an_unknown_preset_names_the_choices():
    with pytest.raises(RemasterError, match="cleanup: 'strong' is not a preset; choose one of none, deblock"):
        cleanup_filter("strong")


@pytest.mark.unit
def test_the_plan_cleans_up_after_deinterlacing_and_before_crop():
    from remaster.disc.probe import Probe
    from remaster.frontend.plan import make_plan
    from remaster.run.settings import FrontEndSettings

    probe = Probe.from_dict({
        "title_file": "title.vob", "frame_count": 250,
        "video": {"width": 720, "height": 576, "fps": "25", "sar": "16:15", "dar": "4:3", "start_time": 0},
        "audio": [], "subtitles": [], "chapters": [], "format": {"start_time": 0}})
    settings = FrontEndSettings(scan="interlaced", field_order="tff", crop="704:576:8:0", cleanup="hqdn3d")
    filters = make_plan(probe, settings, title=REPO).filters.split(",")
    names = [f.split("=")[0] for f in filters]
    assert names.index("bwdif") < names.index("hqdn3d") < names.index("crop") < names.index("scale")
    off = make_plan(probe, FrontEndSettings(scan="interlaced", field_order="tff"), title=REPO).filters
    assert "hqdn3d" not in off
