"""Training an upscaler: pairs from two releases, a tiny Compact trained through the workflow, its export
loaded by spandrel and run on a disc."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remaster.run import media
from remaster.training import dataset
from support.workflow import REPO, frame_count, snakemake, write_config

PHOTOS = REPO / "workflow" / "resources" / "demo" / "photos"
HR_SIZE = (320, 240)


def content_frames(count: int) -> list[np.ndarray]:
    """Shots of 6 frames, each a pan over part of one photograph, at HR_SIZE plus a 2-pixel border."""
    photos = [Image.open(p).convert("RGB") for p in sorted(PHOTOS.iterdir())]
    width, height = HR_SIZE[0] + 2, HR_SIZE[1] + 2
    frames = []
    for index in range(count):
        shot, step = divmod(index, 6)
        rng = np.random.default_rng(shot)
        photo = photos[shot % len(photos)]
        crop_w = int(photo.width * rng.uniform(0.5, 0.7))
        crop_h = crop_w * height // width
        left = int(rng.uniform(0, photo.width - crop_w - 30)) + 5 * step
        top = int(rng.uniform(0, photo.height - crop_h))
        frames.append(np.asarray(photo.resize((width, height), Image.BICUBIC,
                                              box=(left, top, left + crop_w, top + crop_h))))
    return frames


def encode(path: Path, frames: list[np.ndarray], fps: str, codec: list[str]) -> Path:
    height, width = frames[0].shape[:2]
    cmd = media.ffmpeg_args("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", fps,
                            "-i", "pipe:0", *codec, "-pix_fmt", "yuv420p", str(path))
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> tuple[Path, Path]:
    """The same clip twice: HR at 24000/1001 fps; LR at 25 fps (PAL speed-up) starting 12 film frames
    (0.5 s) later, moved one pixel right and down, downscaled 2× and MPEG-2 compressed."""
    folder = tmp_path_factory.mktemp("releases")
    frames = content_frames(120)
    hr = [f[1:1 + HR_SIZE[1], 1:1 + HR_SIZE[0]] for f in frames]
    half = (HR_SIZE[0] // 2, HR_SIZE[1] // 2)
    lr = [np.asarray(Image.fromarray(f[2:2 + HR_SIZE[1], 2:2 + HR_SIZE[0]]).resize(half, Image.BICUBIC))
          for f in frames[12:]]
    return (encode(folder / "lr.mpg", lr, "25", ["-c:v", "mpeg2video", "-qscale:v", "3", "-f", "mpeg"]),
            encode(folder / "hr.mkv", hr, "24000/1001", ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12"]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def test_dataset_finds_rate_offset_and_aligns_every_pair(releases, tmp_path):
    lr_video, hr_video = releases
    summary = dataset.make_pairs(lr_video, hr_video, tmp_path / "pairs", scale=2, pairs=30, val_fraction=0.2,
                                 max_offset=3.0, search=3, min_correlation=0.9)
    timing = summary["timing"]
    assert timing["ratio"] == "25/23.976"
    assert abs(timing["offset"] - 12 * 1001 / 24000) < 0.5 / timing["fps_hr"]
    assert json.loads((tmp_path / "pairs" / "alignment.json").read_text())["timing"] == timing
    pairs = summary["pairs"]
    assert len(pairs) >= 12 and not summary["rejected"]
    assert {p["split"] for p in pairs} == {"train", "val"}
    assert all(p["hr_frame"] == p["lr_frame"] + 12 for p in pairs)
    assert all(tuple(p["shift"]) == (1, 1) for p in pairs)
    for record in pairs:
        folder = tmp_path / "pairs" / record["split"]
        lr = np.asarray(Image.open(folder / "lr" / f"{record['name']}.png"))
        hr = Image.open(folder / "hr" / f"{record['name']}.png")
        assert hr.size == (lr.shape[1] * 2, lr.shape[0] * 2)
        down = np.asarray(hr.resize((lr.shape[1], lr.shape[0]), Image.BICUBIC))
        aligned = psnr(lr, down)
        assert aligned > 30, record
        # and it is the alignment that does it: one pixel off loses several dB
        assert aligned > psnr(lr[:, 1:], down[:, :-1]) + 3


def test_dataset_rejects_unrelated_releases(releases, tmp_path):
    lr_video, _ = releases
    other = encode(tmp_path / "other.mkv", [np.asarray(Image.open(PHOTOS / "coffee.png").convert("RGB")
                                                       .resize(HR_SIZE).rotate(90 * (i % 4))) for i in range(40)],
                   "24000/1001", ["-c:v", "libx264", "-preset", "ultrafast"])
    from remaster.run.errors import RemasterError

    with pytest.raises(RemasterError, match="no pair aligned"):
        dataset.make_pairs(lr_video, other, tmp_path / "pairs", pairs=10, max_offset=1.0)


TRAIN = {
    "clean_frames": str(PHOTOS),
    "degradations": [{"downscale": {"factor": 2}}, {"blur": {"sigma": 0.8}}],
    "val_fraction": 0.25,
    "num_feat": 16,
    "num_conv": 4,
    "iterations": 300,
    "batch": 8,
    "patch": 64,
    "learning_rate": 0.003,
    "checkpoint_every": 100,
    "output": "models/mine.safetensors",
}


def disc_config(workdir: Path, demo_disc: Path, models: list, **train) -> Path:
    return write_config(workdir, source=str(demo_disc), output="results/mine.mkv", models=models,
                        shard_frames=24, device="cpu", encoder={"codec": "libx264", "preset": "ultrafast"},
                        train={**TRAIN, **train})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_disc, tiny_model) -> Path:
    """`snakemake train` (which runs `degrade`) in a fresh working directory; returns that directory."""
    workdir = tmp_path_factory.mktemp("train")
    disc_config(workdir, demo_disc, [str(tiny_model)])
    snakemake(workdir, "train", "--cores", "2")
    return workdir


def metrics(workdir: Path) -> list[dict]:
    lines = (workdir / "results" / "train" / "train" / "metrics.tsv").read_text().splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, map(float, line.split("\t")), strict=True)) for line in lines[1:]]


def test_training_lowers_the_loss_and_beats_bicubic(trained):
    rows = metrics(trained)
    assert [row["iteration"] for row in rows] == [100, 200, 300]
    assert rows[-1]["l1"] < 0.85 * rows[0]["l1"]
    assert rows[-1]["psnr"] > rows[0]["psnr"]
    best = max(rows, key=lambda row: row["psnr"])
    assert best["psnr"] > best["bicubic_psnr"] + 0.2
    assert best["ssim"] > best["bicubic_ssim"]
    assert sorted(p.name for p in (trained / "results" / "train" / "degrade" / "val" / "lr").iterdir()) \
        == ["coffee.png"]


def test_export_loads_in_spandrel(trained):
    from remaster.models.loading import load_model

    descriptor = load_model(trained / "models" / "mine.safetensors")
    assert descriptor.architecture.id == "Compact"
    assert descriptor.scale == 2


def test_more_iterations_resume_from_the_last_checkpoint(trained, demo_disc, tiny_model):
    disc_config(trained, demo_disc, [str(tiny_model)], iterations=350, checkpoint_every=50)
    snakemake(trained, "train", "--cores", "2")
    log = (trained / "logs" / "train" / "train.log").read_text()
    assert "resuming from iter_00000300.pt (iteration 300)" in log
    assert "iteration 100:" not in log and "iteration 350:" in log
    assert [row["iteration"] for row in metrics(trained)] == [100, 200, 300, 350]


def test_the_trained_model_upscales_a_disc(trained, demo_disc):
    model = trained / "models" / "mine.safetensors"
    disc_config(trained, demo_disc, [str(model)], iterations=350, checkpoint_every=50)
    snakemake(trained, "--cores", "2", "--resources", "gpu=1")
    master = trained / "results" / "mine.mkv"
    assert frame_count(master) == 24
    stream = media.ffprobe_json(master, "-select_streams", "v:0")["streams"][0]
    assert (stream["width"], stream["height"]) == (1280, 960)  # 4:3 at 480 lines, square pixels, ×2
