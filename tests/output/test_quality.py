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
