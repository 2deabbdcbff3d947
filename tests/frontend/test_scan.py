"""Scan, crop, geometry and colour decisions on generated test discs (tests/discs.py)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from remaster.disc.probe import ProbeVideo
from remaster.frontend import colour as colours
from remaster.frontend.geometry import detect_crop, square_geometry
from remaster.frontend.scan import ScanDecision, detect_scan, scan_filters
from remaster.run import media
from support import discs

needs_ffmpeg = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
    reason="ffmpeg/ffprobe not on PATH (Debian: apt-get install ffmpeg)")


@pytest.fixture(scope="module")
def disc_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("discs")


@pytest.fixture(scope="module")
def telecine(disc_dir) -> Path:
    return discs.ntsc_telecine(disc_dir)


@pytest.fixture(scope="module")
def telecine_decision(telecine) -> ScanDecision:
    return detect_scan(telecine)


@pytest.fixture(scope="module")
def pal(disc_dir) -> Path:
    return discs.pal_interlaced_anamorphic(disc_dir)


@pytest.fixture(scope="module")
def bff(disc_dir) -> Path:
    return discs.ntsc_interlaced_bff_late_audio(disc_dir)


@pytest.fixture(scope="module")
def letterbox(disc_dir) -> Path:
    return discs.ntsc_progressive_letterbox(disc_dir)


def _gray_frames(args: list[str], width: int = 720, height: int = 480) -> np.ndarray:
    """Luma planes of the frames ffmpeg decodes with `args` (input and filters)."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", *args, "-an",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


@needs_ffmpeg
def test_telecine_detected_from_repeated_fields(telecine_decision):
    d = telecine_decision
    assert (d.scan, d.field_order) == ("telecine", "tff"), d.reason
    ev = d.evidence
    assert ev["frames"] == discs.TELECINE_VIDEO_FRAMES
    # 3:2 pulldown repeats a field in 2 of 5 frames, always 2 or 3 frames apart
    assert ev["repeated_fraction"] == pytest.approx(0.4, abs=0.05)
    assert ev["cadence_32_fraction"] >= 0.9
    assert ev["combed_after_match"] <= 0.05
    assert ev["ivtc_frames"] == discs.TELECINE_FILM_FRAMES
    assert ev["decimate_dup_contrast"] > 5


@needs_ffmpeg
def test_ivtc_recovers_the_film_frames(telecine, telecine_decision, disc_dir):
    chain, rate = scan_filters(telecine_decision, source_fps=discs.NTSC_RATE)
    assert rate == Fraction(24000, 1001)
    out = _gray_frames(["-i", str(telecine), "-vf", chain])
    ref = _gray_frames(["-i", str(discs.film_reference(disc_dir))])
    assert len(out) == len(ref) == discs.TELECINE_FILM_FRAMES
    for i, frame in enumerate(out):
        # each output frame is its own film frame, not a neighbour or a field blend
        scores = {j: _psnr(frame, ref[j]) for j in range(max(0, i - 1), min(len(ref), i + 2))}
        assert max(scores, key=scores.get) == i, (i, scores)
        assert scores[i] > 35, (i, scores)


@needs_ffmpeg
def test_ivtc_is_bit_exact_on_lossless_telecine(telecine_decision, disc_dir, tmp_path):
    ref = discs.film_reference(disc_dir)
    chain, _ = scan_filters(telecine_decision, source_fps=discs.NTSC_RATE)

    def md5s(args: list[str]) -> list[str]:
        raw = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", *args, "-f", "rawvideo", "-"],
                             capture_output=True, check=True).stdout
        size = len(raw) // discs.TELECINE_FILM_FRAMES
        return [hashlib.md5(raw[i:i + size]).hexdigest() for i in range(0, len(raw), size)]

    vf = f"telecine=first_field=top:pattern=23,setfield=tff,{chain}"
    assert md5s(["-i", str(ref), "-vf", vf]) == md5s(["-i", str(ref)])


@needs_ffmpeg
def test_pal_interlaced_is_tff(pal):
    d = detect_scan(pal)
    assert (d.scan, d.field_order) == ("interlaced", "tff"), d.reason
    assert d.evidence["interlaced_fraction"] > 0.9
    assert d.evidence["repeated_fraction"] < 0.05
    chain, rate = scan_filters(d, source_fps=discs.PAL_RATE)
    assert (chain, rate) == ("bwdif=mode=send_field:parity=tff:deint=all", 50)
    # one frame per field
    out = subprocess.run(["ffmpeg", "-nostdin", "-i", str(pal), "-vf", chain, "-an", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    assert f"frame={2 * discs.PAL_FRAMES:5d}" in out


@needs_ffmpeg
def test_bff_capture_is_bff(bff):
    d = detect_scan(bff)
    assert (d.scan, d.field_order) == ("interlaced", "bff"), d.reason
    assert d.evidence["idet_multiple"]["bff"] > 0.9 * d.evidence["frames"]
    assert scan_filters(d, source_fps=discs.NTSC_RATE, deinterlace_rate="frame") == (
        "bwdif=mode=send_frame:parity=bff:deint=all", discs.NTSC_RATE)


@needs_ffmpeg
def test_bff_capture_audio_starts_late(bff):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time",
                          "-of", "json", str(bff)], capture_output=True, text=True, check=True).stdout
    starts = {s["codec_type"]: float(s["start_time"]) for s in json.loads(out)["streams"]}
    assert starts["audio"] - starts["video"] == pytest.approx(discs.AUDIO_DELAY, abs=0.04)


@needs_ffmpeg
def test_progressive_is_progressive(letterbox):
    d = detect_scan(letterbox)
    assert (d.scan, d.field_order) == ("progressive", None), d.reason
    assert scan_filters(d, source_fps=discs.NTSC_RATE) == ("", discs.NTSC_RATE)


@needs_ffmpeg
def test_sampled_windows_agree_with_the_whole_title(telecine, pal):
    # short windows force the long-title path: several -ss windows instead of one pass
    d = detect_scan(telecine, windows=3, window_seconds=0.8)
    assert d.scan == "telecine" and d.evidence["windows"] == 3
    assert d.evidence["frames"] < discs.TELECINE_VIDEO_FRAMES
    assert detect_scan(pal, windows=3, window_seconds=0.6).scan == "interlaced"
    assert detect_scan(telecine, max_frames=40).evidence["frames"] <= 40


@needs_ffmpeg
def test_crop_finds_letterbox_bars(letterbox):
    assert detect_crop(letterbox) == (720, 480 - 2 * discs.LETTERBOX_BAR, 0, discs.LETTERBOX_BAR)


@needs_ffmpeg
def test_no_crop_without_bars(telecine, pal):
    assert detect_crop(telecine) is None
    assert detect_crop(pal) is None


def test_scan_filters_for_telecine_outside_ntsc():
    d = ScanDecision("telecine", "bff")
    chain, rate = scan_filters(d, source_fps=Fraction(30))
    assert chain.startswith("fieldmatch=order=bff") and chain.endswith("decimate")
    assert rate == 24
    with pytest.raises(ValueError):
        scan_filters(d, source_fps=Fraction(30), deinterlace_rate="double")


@pytest.mark.parametrize("args, kwargs, size", [
    ((720, 480, Fraction(8, 9)), {}, (640, 480)),  # NTSC 4:3
    ((720, 576, Fraction(64, 45)), {}, (1024, 576)),  # PAL 16:9 anamorphic
    ((720, 480, Fraction(32, 27)), {}, (854, 480)),  # NTSC 16:9: 853.3 rounds to even
    ((720, 576, Fraction(64, 45)), {"target_height": 1080, "scale": 2}, (960, 540)),
    ((720, 480, Fraction(8, 9)), {"target_height": 1080, "scale": 2}, (720, 540)),
    ((720, 480, Fraction(8, 9)), {"target_height": 2160, "scale": 4}, (720, 540)),
    # the disc says 16:9 but the picture is 4:3: the override wins
    ((720, 480, Fraction(32, 27)), {"display_aspect": Fraction(4, 3)}, (640, 480)),
    # a letterbox crop keeps its pixels' shape
    ((720, 360, Fraction(8, 9)), {}, (640, 360)),
])
def test_square_geometry(args, kwargs, size):
    assert square_geometry(*args, **kwargs) == size


def test_square_geometry_rejects_nonsense():
    with pytest.raises(ValueError):
        square_geometry(0, 480, Fraction(1))


def _video(height: int, **tags) -> ProbeVideo:
    """The probe's video stream of a `height`-line picture with ffprobe's colour `tags`."""
    return ProbeVideo(width=720, height=height, fps="25/1", sar="1:1", dar="4:3", **tags)


@pytest.mark.unit
def test_colour_by_lines_and_tags():
    ntsc = colours.decide(_video(480))
    assert (ntsc.system, ntsc.from_tags, ntsc.range) == ("ntsc", (), "tv")
    assert (ntsc.matrix, ntsc.primaries, ntsc.transfer) == ("smpte170m", "smpte170m", "smpte170m")
    pal = colours.decide(_video(576, color_space="unknown", color_primaries="unknown"))
    assert (pal.matrix, pal.primaries, pal.decoder_matrix) == ("bt470bg", "bt470bg", "bt601")
    assert "ispace=bt709:iprimaries=bt470bg" in pal.to_bt709() and pal.to_bt709().startswith("colorspace=space=bt709")
    # a meaningful tag wins over the line count
    tagged = colours.decide(_video(480, color_space="bt470bg", color_range="tv"))
    assert tagged.matrix == "bt470bg" and tagged.from_tags == ("matrix",)
    assert colours.decide(_video(480, color_range="pc")).range == "pc"
    assert colours.Colour.from_dict(pal.as_dict()) == pal


@pytest.mark.unit
@pytest.mark.parametrize("height", [720, 1080, 2160])
def test_untagged_hd_is_bt709_for_every_stage(height):
    """An untagged HD source was read as BT.601 by the plan (any height over 500 lines was PAL) while the
    probe's matrix said BT.709: one decision now, BT.709, with no primaries conversion at the encode."""
    colour = colours.decide(_video(height))
    assert (colour.system, colour.matrix, colour.decoder_matrix) == ("hd", "bt709", "bt709")
    assert colour.to_bt709() is None
    assert colour.tags() == ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                             "-color_range", "tv"]


@needs_ffmpeg
@pytest.mark.unit
@pytest.mark.parametrize("transfer", ["bt470bg", "bt470m", "smpte170m", "bt709"])
def test_a_tagged_transfer_tags_the_prepared_title(transfer, tmp_path):
    """ffprobe reports a PAL disc's described transfer as bt470bg, which ffmpeg's -color_trc refuses (gamma28)."""
    colour = colours.decide(_video(576, color_transfer=transfer))
    assert colour.from_tags == ("transfer",)
    subprocess.run([media.tool("ffmpeg"), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=s=32x32",
                    "-frames:v", "1", *colour.tags(), "-c:v", "ffv1", str(tmp_path / "tagged.mkv")], check=True)
    subprocess.run([media.tool("ffmpeg"), "-nostdin", "-v", "error", "-i", str(tmp_path / "tagged.mkv"),
                    "-vf", colour.to_bt709(), "-f", "null", "-"], check=True)


def test_colour_filter_runs(letterbox):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(letterbox), "-frames:v", "2",
                    "-vf", colours.decide(_video(480)).to_bt709(), "-f", "null", "-"], check=True)
