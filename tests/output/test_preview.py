"""See before you wait: `snakemake preview` shows before/after stills long before the full run is done, and
`snakemake --report` gathers the probe, the stills, the verification, the timings and the disk used."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remaster.output.preview import GAP, preview_frames
from support.workflow import snakemake, write_config

SHARD_FRAMES = 10
FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}
RESULTS = Path("results") / "my_disc"
STILLS = 6


def ran_rules(result) -> set[str]:
    return set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", result.stdout + result.stderr, re.MULTILINE))


@pytest.fixture(scope="module")
def previewed(tmp_path_factory, demo_disc, tiny_model):
    """`snakemake preview` on a fresh working folder, then the full run after it; both timed."""
    workdir = tmp_path_factory.mktemp("preview")
    write_config(workdir, source=demo_disc, output="masters/my disc.mkv", models=[str(tiny_model)],
                 shard_frames=SHARD_FRAMES, encoder=FAST_ENCODER)
    start = time.monotonic()
    preview = snakemake(workdir, "preview", "--cores", "2", "--resources", "gpu=1")
    preview_seconds = time.monotonic() - start
    start = time.monotonic()
    full = snakemake(workdir, "--cores", "2", "--resources", "gpu=1")
    full_seconds = time.monotonic() - start
    print(f"preview {preview_seconds:.1f} s (from nothing), rest of the full run {full_seconds:.1f} s")
    return workdir, preview, preview_seconds, full, full_seconds


def test_preview_needs_no_upscaled_shard(previewed):
    _, preview, _, full, _ = previewed
    ran = ran_rules(preview)
    assert "preview_title" in ran
    assert not ran & {"prepare_title", "extract_shard", "upscale_shard", "encode_shard", "mux_master"}
    assert "preview_title" not in ran_rules(full)  # the full run reuses it


def test_preview_is_done_well_before_the_full_run(previewed):
    _, _, preview_seconds, _, full_seconds = previewed
    assert preview_seconds < full_seconds


def test_stills_put_bicubic_beside_the_models_result(previewed):
    workdir = previewed[0]
    folder = workdir / RESULTS / "preview"
    plan = json.loads((workdir / RESULTS / "plan_disc" / "plan.json").read_text())
    out_w, out_h = (2 * v for v in plan["model_input"])  # the tiny model is ×2
    for n in range(1, STILLS + 1):
        still = np.asarray(Image.open(folder / f"still_{n}.png").convert("RGB"))
        assert still.shape == (out_h, 2 * out_w + GAP, 3)
        before, after = still[80:, :out_w].astype(int), still[80:, out_w + GAP:].astype(int)  # below the labels
        # the same frame on both sides (close), but the model changed it (not equal)
        assert 0.5 < np.abs(before - after).mean() < 40
    shown = json.loads((folder / "frames.json").read_text())
    assert [s["frame"] for s in shown] == preview_frames(24, STILLS) == [2, 6, 10, 14, 18, 22]


def test_flip_animates_before_and_after(previewed):
    flip = Image.open(previewed[0] / RESULTS / "preview" / "flip.png")
    assert flip.format == "PNG" and flip.is_animated and flip.n_frames == 6  # three stills, before and after


def test_preview_frames_spread_over_a_long_film():
    frames = preview_frames(140_000, STILLS)
    assert frames[0] > 10_000 and frames[-1] < 130_000 and frames == sorted(set(frames))
    assert preview_frames(3, STILLS) == [0, 0, 1, 1, 2, 2]  # a title shorter than the preview repeats frames


def test_summary_pages(previewed):
    workdir = previewed[0]
    summary = workdir / RESULTS / "summarize_run"
    timings = [line.split("\t") for line in (summary / "timings.tsv").read_text().splitlines()]
    assert timings[0][:4] == ["shard", "frames", "upscale_s", "fps"]
    assert [(row[0], row[1], row[4]) for row in timings[1:]] == [("0000", "10", "cpu"), ("0001", "10", "cpu"),
                                                                    ("0002", "4", "cpu")]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in timings[1:])
    disk = {line.split("\t")[0]: line.split("\t") for line in (summary / "disk.tsv").read_text().splitlines()[1:]}
    assert int(disk["upscale_shard"][2]) > 0 and int(disk["master"][2]) > 0
    assert int(disk["total"][2]) >= int(disk["upscale_shard"][2]) + int(disk["master"][2])
    assert "what the probe found" in (summary / "probe.html").read_text()


def test_report_holds_the_stills_and_the_checks(previewed):
    workdir = previewed[0]
    snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text()
    for name in ("still_1.png", f"still_{STILLS}.png", "flip.png", "probe.html", "verify.html", "flicker.tsv",
                 "timings.html", "disk.html"):
        assert name in html, name
    assert "data:image/png" in html  # the stills are embedded: the report is one file to send
