"""End to end on a generated disc: the master, reruns that redo only what is stale, and the plan."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from support.workflow import (
    ffprobe,
    frame_count,
    planned_jobs,
    snakemake,
    stream_bytes,
    write_config,
)

SHARD_FRAMES = 10  # 24 frames → shards of 10, 10 and 4
FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, demo_disc, tiny_model):
    """One finished run of the demo-like disc; later tests in this file build on its working folder."""
    workdir = tmp_path_factory.mktemp("work")
    config = dict(source=demo_disc, output="masters/my disc.mkv", models=[str(tiny_model)],
                  shard_frames=SHARD_FRAMES, encoder=FAST_ENCODER, keep_upscaled=True)
    write_config(workdir, **config)
    result = snakemake(workdir, "--cores", "2", "--resources", "gpu=1")
    return workdir, config, result


def source_title(disc: Path, workdir: Path) -> Path:
    """The title as the player reads it: VTS_01_1 and VTS_01_2 joined."""
    joined = workdir / "reference.vob"
    with open(joined, "wb") as out:
        for part in ("VTS_01_1.VOB", "VTS_01_2.VOB"):
            out.write((disc / part).read_bytes())
    return joined


def test_dry_run_plans_one_upscale_job_per_shard(tmp_path, demo_disc, tiny_model):
    write_config(tmp_path, source=demo_disc, output="out.mkv", models=[str(tiny_model)], shard_frames=SHARD_FRAMES,
                 encoder=FAST_ENCODER)
    before = planned_jobs(tmp_path)
    # shards are known once the title is prepared (its frame count after inverse telecine or deinterlacing)
    assert before.get("prepare_title") == 1 and "upscale_shard" not in before
    snakemake(tmp_path, "--cores", "1", "plan")
    after = planned_jobs(tmp_path)
    assert after["upscale_shard"] == 3 and after["extract_shard"] == 3 and after["encode_shard"] == 3
    assert after["mux_master"] == 1 and "probe_source" not in after and "prepare_title" not in after


def test_an_absolute_output_logs_without_a_double_slash(tmp_path, demo_disc, tiny_model):
    master = tmp_path / "masters" / "film.mkv"  # absolute, as a user names a disk elsewhere
    write_config(tmp_path, source=demo_disc, output=str(master), models=[str(tiny_model)], shard_frames=SHARD_FRAMES,
                 encoder=FAST_ENCODER)
    dry = snakemake(tmp_path, "-n", "-p")
    text = dry.stdout + dry.stderr
    assert "mux_master_absolute" in text and f"output: {master}" in text
    assert f"log: logs/masters{master}.log" in text
    assert "//" not in text.replace("://", "")  # Snakemake warned of the double slash at every start


def test_master_matches_the_source(run, demo_disc):
    workdir, _, _ = run
    master = workdir / "masters" / "my disc.mkv"
    assert master.is_file()
    source = source_title(demo_disc, workdir)
    assert frame_count(master) == frame_count(source) == 24

    video = json.loads(ffprobe(master, "-select_streams", "v:0", "-show_entries",
                               "stream=width,height,display_aspect_ratio", "-of", "json"))["streams"][0]
    # 720×480 at 4:3 is 640×480 in square pixels; ×2 is 1280×960
    assert (video["width"], video["height"]) == (1280, 960)
    assert video["display_aspect_ratio"] == "4:3"

    for track in (0, 1):
        original = stream_bytes(source, f"0:a:{track}", "ac3")
        assert original and stream_bytes(master, f"0:a:{track}", "ac3") == original

    frame = Fraction(1001, 30000)
    duration = float(ffprobe(master, "-show_entries", "format=duration", "-of", "csv=p=0").strip())
    assert abs(duration - float(24 * frame)) <= float(frame) + 0.034  # ac3 frames (32 ms) may end a bit later
    video_start = float(ffprobe(master, "-select_streams", "v:0", "-show_entries", "stream=start_time",
                                "-of", "csv=p=0").strip())
    assert abs(video_start - 0.0053) < 0.002  # the source's video starts 5.3 ms after its audio


def test_progress_is_logged_per_shard(run):
    workdir, _, _ = run
    log = (workdir / "logs" / "my_disc" / "upscale_shard" / "0000.log").read_text()
    assert "10/10 frames" in log and "fps" in log and "ETA" in log


def test_second_run_does_nothing(run):
    workdir, _, _ = run
    assert planned_jobs(workdir) == {}


def test_deleted_shard_alone_is_redone(run):
    workdir, _, _ = run
    upscaled = workdir / "results" / "my_disc" / "upscale_shard"
    # the other shards (their ShardResult records beside them too: 0001.json is rewritten with 0001.mkv)
    kept = {p.name: p.stat().st_mtime_ns for p in upscaled.iterdir() if not p.name.startswith("0001.")}
    (upscaled / "0001.mkv").unlink()
    assert planned_jobs(workdir) == {"extract_shard": 1, "upscale_shard": 1, "encode_shard": 1, "mux_master": 1,
                                     "verify_master": 1, "summarize_run": 1, "all": 1}
    snakemake(workdir, "--cores", "2", "--resources", "gpu=1")
    assert {p.name: p.stat().st_mtime_ns for p in upscaled.iterdir() if not p.name.startswith("0001.")} == kept
    assert (upscaled / "0001.mkv").is_file()
    assert planned_jobs(workdir) == {}


def test_encoder_change_redoes_no_gpu_work(run):
    workdir, config, _ = run
    write_config(workdir, **{**config, "encoder": {**FAST_ENCODER, "crf": 30}})
    try:
        assert planned_jobs(workdir) == {"encode_shard": 3, "mux_master": 1, "verify_master": 1, "summarize_run": 1,
                                         "all": 1}
    finally:
        write_config(workdir, **config)


def test_model_change_makes_every_upscaled_shard_stale(run, tmp_path):
    workdir, config, _ = run
    from support.workflow import make_compact

    other = make_compact(tmp_path / "other.safetensors", seed=1)
    write_config(workdir, **{**config, "models": [str(other)]})
    try:
        jobs = planned_jobs(workdir)
    finally:
        write_config(workdir, **config)
    assert jobs["upscale_shard"] == 3 and jobs["encode_shard"] == 3
    assert "probe_source" not in jobs and "extract_audio" not in jobs


def test_no_partial_file_is_left(run):
    workdir, _, _ = run
    assert not [p for p in workdir.rglob(".*.partial")]


def test_single_video_file_is_taken_as_is(tmp_path, demo_disc, tiny_model):
    """A video file (here one VOB copied under an awkward name) goes straight to the probe."""
    awkward = tmp_path / "-my 'film' ä.vob"
    shutil.copy(demo_disc / "VTS_02_1.VOB", awkward)
    write_config(tmp_path, source=str(awkward), output="film.mkv", models=[str(tiny_model)], shard_frames=100,
                 encoder=FAST_ENCODER)
    snakemake(tmp_path, "--cores", "2")
    assert frame_count(tmp_path / "film.mkv") == frame_count(awkward) == 10
    assert not (tmp_path / "results" / "film" / "read_title").exists()
