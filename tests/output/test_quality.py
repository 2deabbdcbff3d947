"""The real model through the whole pipeline beats plain bicubic: catches RGB/BGR, range and matrix mistakes."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image

from support.workflow import MODELS, REPO, snakemake, write_config

PHOTOS = REPO / "workflow" / "resources" / "demo" / "photos"
HR_SIZE = (320, 240)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def decode_rgb(path, size) -> list[np.ndarray]:
    """Every frame as RGB, converted with the matrix the file is tagged with."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", f"file:{path}", "-map", "0:v:0", "-vf",
                          "scale=flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24", "-f", "rawvideo", "pipe:1"],
                         capture_output=True, check=True).stdout
    w, h = size
    return [np.frombuffer(raw[i:i + w * h * 3], np.uint8).reshape(h, w, 3) for i in range(0, len(raw), w * h * 3)]


@pytest.fixture(scope="module")
def photo_clip(tmp_path_factory):
    """Three real photographs, downscaled 2×, as an SD-style video (BT.601, limited range, tagged)."""
    folder = tmp_path_factory.mktemp("photo clip")
    originals = []
    for name in ("coffee.png", "chelsea.png", "astronaut.png"):
        photo = Image.open(PHOTOS / name).convert("RGB")
        left, top = (photo.width - HR_SIZE[0]) // 2, (photo.height - HR_SIZE[1]) // 2
        originals.append(np.asarray(photo.crop((left, top, left + HR_SIZE[0], top + HR_SIZE[1]))))
    lr_size = (HR_SIZE[0] // 2, HR_SIZE[1] // 2)
    lows = b"".join(np.asarray(Image.fromarray(o).resize(lr_size, Image.BICUBIC)).tobytes() for o in originals)
    clip = folder / "photos.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    f"{lr_size[0]}x{lr_size[1]}", "-framerate", "25", "-i", "pipe:0", "-vf",
                    "scale=out_color_matrix=bt601:out_range=tv:flags=accurate_rnd+full_chroma_int,format=yuv444p",
                    "-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
                    "-color_range", "tv", "-c:v", "ffv1", str(clip)], input=lows, check=True)
    return clip, originals, lr_size


def test_real_model_beats_bicubic_through_the_pipeline(tmp_path, photo_clip):
    clip, originals, lr_size = photo_clip
    model = MODELS / "DAT_light_x2.safetensors"
    assert model.is_file(), "run ./setup.sh: it writes the bundled models"
    write_config(tmp_path, source=str(clip), output="photos.mkv", models=[str(model)], shard_frames=2,
                 encoder={"codec": "libx264", "crf": 4, "preset": "medium", "pix_fmt": "yuv444p"})
    snakemake(tmp_path, "--cores", "2")

    masters = decode_rgb(tmp_path / "photos.mkv", HR_SIZE)
    lows = decode_rgb(clip, lr_size)
    assert len(masters) == len(lows) == len(originals) == 3
    for original, master, low in zip(originals, masters, lows):
        bicubic = np.asarray(Image.fromarray(low).resize(HR_SIZE, Image.BICUBIC))
        gain = psnr(master, original) - psnr(bicubic, original)
        print(f"model {psnr(master, original):.2f} dB, bicubic {psnr(bicubic, original):.2f} dB")
        assert gain > 0.5, f"model {psnr(master, original):.2f} dB vs bicubic {psnr(bicubic, original):.2f} dB"


# --- remaster.output.quality: the benchmark's scores ------------------------------------------------------

def _photo_frames(count: int, size=(96, 64), step: int = 2) -> np.ndarray:
    """`count` frames of a slow pan over a real photograph (RGB uint8)."""
    photo = np.asarray(Image.open(PHOTOS / "chelsea.png").convert("RGB"))
    w, h = size
    return np.stack([photo[40:40 + h, 60 + step * n:60 + step * n + w] for n in range(count)])


@pytest.mark.unit
def test_identical_frames_score_perfectly():
    from remaster.output import quality

    truth = _photo_frames(4)
    scores = quality.score(truth.copy(), truth)
    assert scores.vmaf > 95 and scores.psnr >= 60 and scores.ssim > 0.999
    assert scores.temporal == 0 and scores.frames == 4 and scores.offset == 0


@pytest.mark.unit
def test_shimmer_raises_the_temporal_error_and_a_steady_error_does_not():
    from remaster.output import quality

    truth = _photo_frames(5)
    rng = np.random.default_rng(0)
    steady_noise = rng.normal(0, 6, truth.shape[1:])
    steady = np.clip(truth + steady_noise, 0, 255).astype(np.uint8)
    shimmer = np.clip(truth + rng.normal(0, 6, truth.shape), 0, 255).astype(np.uint8)
    assert quality.temporal_error(steady, truth) < 0.6  # only rounding and clipping differ frame to frame
    assert quality.temporal_error(shimmer, truth) > 5
    # both lower PSNR by about the same amount: the temporal error tells them apart, PSNR does not
    assert abs(quality.psnr(steady, truth) - quality.psnr(shimmer, truth)) < 1


@pytest.mark.unit
def test_blur_lowers_vmaf_psnr_and_ssim():
    from remaster.output import quality

    truth = _photo_frames(3)
    blurred = np.stack([np.asarray(Image.fromarray(f).resize((48, 32), Image.BILINEAR).resize((96, 64), Image.BILINEAR))
                        for f in truth])
    sharp, soft = quality.score(truth.copy(), truth), quality.score(blurred, truth)
    assert soft.vmaf < sharp.vmaf - 10 and soft.psnr < 35 and soft.ssim < 0.97


@pytest.mark.unit
def test_a_late_output_is_aligned_to_its_truth_frame():
    from remaster.output import quality

    truth = _photo_frames(8, step=5)
    scores = quality.score(truth[2:7].copy(), truth)
    assert scores.offset == 2 and scores.frames == 5 and scores.psnr >= 60


@pytest.mark.unit
def test_a_wrong_size_is_refused_with_what_to_do():
    from remaster.output import quality

    truth = _photo_frames(2)
    with pytest.raises(ValueError, match="scale the output to the truth's size"):
        quality.score(truth[:, :32], truth)


@pytest.mark.unit
def test_decode_rgb_reads_with_the_given_matrix(tmp_path):
    from remaster.output import quality

    truth = _photo_frames(3)
    clip = tmp_path / "clip.mkv"
    # stored as BT.601 limited 4:4:4, as a DVD would hold it
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "96x64",
                    "-framerate", "25", "-i", "pipe:0", "-vf",
                    "scale=out_color_matrix=bt601:out_range=tv:flags=accurate_rnd+full_chroma_int,format=yuv444p",
                    "-c:v", "ffv1", str(clip)], input=truth.tobytes(), check=True)
    right = quality.decode_rgb(clip, (96, 64), matrix="bt601")
    wrong = quality.decode_rgb(clip, (96, 64), matrix="bt709")
    assert right.shape == truth.shape
    assert quality.psnr(right, truth) > 45
    # the wrong matrix shifts colours, which the luma of saturated reds and greens shows
    assert np.abs(right.astype(int) - truth).mean() < np.abs(wrong.astype(int) - truth).mean()
