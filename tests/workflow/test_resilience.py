"""Days of GPU work never lost: killed runs resume, damaged discs finish in sync, bad input fails in one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import pytest

from support.workflow import (
    REPO,
    SNAKEMAKE,
    ffprobe,
    frame_count,
    frame_hashes,
    job_stats,
    make_compact,
    planned_jobs,
    snakemake,
    write_config,
)

SHARD_FRAMES = 8  # 24 frames → shards 0000, 0001, 0002
FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}
RUN = ("--cores", "2", "--resources", "gpu=1")
FRAME = Fraction(1001, 30000)


def start(workdir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """The plain command, in a process group of its own (so that the whole run can be killed at once)."""
    return subprocess.Popen([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *RUN, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})})


def kill_when(proc: subprocess.Popen, condition, what: str, timeout: float = 300) -> None:
    """SIGKILL the run's whole process group as soon as `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"never saw {what}:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def started_after(log: Path, moment: float):
    """A condition: the job writing `log` has started since `moment` (its log is rewritten at its start)."""
    return lambda: log.exists() and log.stat().st_mtime > moment


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.mkv")}


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> Path:
    """A Compact model heavy enough (~0.5 s a frame on 2 cores) that a shard can be killed mid-way."""
    return make_compact(tmp_path_factory.mktemp("slow") / "slow compact.safetensors", num_feat=32, num_conv=8)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_disc, slow_model):
    """An uninterrupted run; its source folder has spaces and a quote, its master quotes and unicode."""
    workdir = tmp_path_factory.mktemp("reference")
    disc = workdir / "my 'disc' copy" / "VIDEO_TS"
    shutil.copytree(demo_disc, disc)
    output = "masters/l'été \"final\".mkv"
    write_config(workdir, source=disc, output=output, models=[str(slow_model)], shard_frames=SHARD_FRAMES,
                 encoder=FAST_ENCODER)
    snakemake(workdir, *RUN)
    return workdir / output


def test_awkward_output_and_source_paths(reference):
    assert reference.is_file() and frame_count(reference) == 24
    assert not list(reference.parents[1].rglob(".*.partial"))
    assert planned_jobs(reference.parents[1]) == {}


@pytest.fixture(scope="module")
def killed(tmp_path_factory, demo_disc, slow_model):
    workdir = tmp_path_factory.mktemp("killed")
    # upscaled shards kept (keep_upscaled), so that a killed encode or mux must not redo any of them
    write_config(workdir, source=demo_disc, output="film.mkv", models=[str(slow_model)], shard_frames=SHARD_FRAMES,
                 encoder=FAST_ENCODER, keep_upscaled=True)
    return workdir


def test_kill_mid_upscale_redoes_only_that_shard(killed, reference):
    workdir = killed
    upscaled = workdir / "results" / "film" / "upscale_shard"
    partial, final = upscaled / ".0001.mkv.partial", upscaled / "0001.mkv"
    log = workdir / "logs" / "film" / "upscale_shard" / "0001.log"
    proc = start(workdir)
    # frames of shard 0001 are done (its encoder has written them) and the shard is not finished
    kill_when(proc, lambda: partial.exists() and partial.stat().st_size > 0 and not final.exists(),
              "shard 0001 half done")
    assert "frames" in log.read_text() and not final.exists()
    before = mtimes(upscaled)
    # (Snakemake may run the shards in any order: those finished before the kill must be kept)
    # the stale lock of the killed run does not stop the plain command (no --unlock needed)
    rerun = snakemake(workdir, *RUN)
    jobs = job_stats(rerun.stdout + rerun.stderr)
    assert jobs["upscale_shard"] == 3 - len(before)  # the killed shard and those never started, nothing else
    after = mtimes(upscaled)
    assert all(after[name] == mtime for name, mtime in before.items())  # finished shards kept as they were
    assert not list(workdir.rglob(".*.partial"))
    assert frame_hashes(workdir / "film.mkv") == frame_hashes(reference)


def test_kill_mid_encode_redoes_only_that_encode(killed, reference):
    workdir = killed
    encoded = workdir / "results" / "film" / "encode_shard"
    # an encoded shard is an intermediate: with the master present Snakemake would not redo it, so both go
    (encoded / "0001.mkv").unlink()
    (workdir / "film.mkv").unlink()
    upscaled = mtimes(workdir / "results" / "film" / "upscale_shard")
    moment = time.time()
    proc = start(workdir)
    # an 8-frame encode takes a fraction of a second: kill as soon as the job has started
    kill_when(proc, started_after(workdir / "logs" / "film" / "encode_shard" / "0001.log", moment),
              "the encode of shard 0001 running")
    assert not (encoded / "0001.mkv").exists()
    rerun = snakemake(workdir, *RUN)
    jobs = job_stats(rerun.stdout + rerun.stderr)
    assert jobs.get("encode_shard") == 1 and "upscale_shard" not in jobs and "extract_shard" not in jobs
    assert mtimes(workdir / "results" / "film" / "upscale_shard") == upscaled
    assert not list(workdir.rglob(".*.partial"))
    assert frame_hashes(workdir / "film.mkv") == frame_hashes(reference)


def test_kill_mid_mux_leaves_no_master_taken_as_done(killed, reference):
    workdir = killed
    master = workdir / "film.mkv"
    master.unlink()
    encoded = mtimes(workdir / "results" / "film" / "encode_shard")
    moment = time.time()
    proc = start(workdir)
    kill_when(proc, started_after(workdir / "logs" / "film" / "mux_master.log", moment), "the mux running")
    assert not master.exists()
    rerun = snakemake(workdir, *RUN)
    jobs = job_stats(rerun.stdout + rerun.stderr)
    assert jobs.get("mux_master") == 1 and "encode_shard" not in jobs and "upscale_shard" not in jobs
    assert mtimes(workdir / "results" / "film" / "encode_shard") == encoded
    assert not list(workdir.rglob(".*.partial"))
    assert frame_hashes(master) == frame_hashes(reference)


def test_damaged_disc_finishes_in_sync(tmp_path, demo_disc, tiny_model):
    disc = tmp_path / "damaged" / "VIDEO_TS"
    shutil.copytree(demo_disc, disc)
    vob = disc / "VTS_01_1.VOB"
    data = bytearray(vob.read_bytes())
    at = int(len(data) * 0.6) // 2048 * 2048
    sectors = min(40, (len(data) - at) // 2048 - 1)
    data[at:at + sectors * 2048] = bytes(sectors * 2048)
    vob.write_bytes(bytes(data))
    write_config(tmp_path, source=disc, output="damaged.mkv", models=[str(tiny_model)], shard_frames=SHARD_FRAMES,
                 encoder=FAST_ENCODER)
    snakemake(tmp_path, *RUN)
    log = (tmp_path / "logs" / "damaged" / "prepare_title.log").read_text()
    damaged = re.findall(r"damaged: (\d+\.\d+)-(\d+\.\d+) s", log)
    assert damaged, log
    assert all(0 < float(a) < float(b) < 24 * FRAME for a, b in damaged)
    probe = json.loads((tmp_path / "results" / "damaged" / "probe_source" / "probe.json").read_text())
    source_seconds = probe["video"]["duration"]
    master = tmp_path / "damaged.mkv"
    seconds = float(ffprobe(master, "-show_entries", "format=duration", "-of", "csv=p=0").strip())
    assert abs(seconds - source_seconds) <= float(FRAME) + 0.034
    assert abs(frame_count(master) - round(source_seconds / FRAME)) <= 1


def failure(workdir: Path, *args: str, env: dict | None = None) -> str:
    """Run the plain command, expect it to fail, and return what the user saw."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *RUN, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env=env or {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text and not re.search(r'^\s*File "', text, re.M), text
    return text


@pytest.fixture
def config(demo_disc, tiny_model):
    return dict(source=str(demo_disc), output="out.mkv", models=[str(tiny_model)], shard_frames=SHARD_FRAMES,
                encoder=FAST_ENCODER)


@pytest.mark.parametrize("change, expected", [
    ({"source": "no such disc/VIDEO_TS"}, r"no such disc/VIDEO_TS: source not found; check source:"),
    ({"shard_frame": 8}, r"unknown config key 'shard_frame': did you mean 'shard_frames'\?"),
    ({"encoder": {"codek": "libx264"}}, r"unknown config key 'encoder.codek': did you mean 'encoder.codec'\?"),
    ({"shard_frames": -8}, r"shard_frames: -8 must be a positive number"),
    ({"output": "blocker/film.mkv"}, r"blocker is a file, not a folder"),
])
def test_bad_config_is_one_line(tmp_path, config, change, expected):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    write_config(tmp_path, **{**config, **change})
    text = failure(tmp_path)
    assert re.search(expected, text), text


def test_folder_without_vobs(tmp_path, config):
    (tmp_path / "empty").mkdir()
    write_config(tmp_path, **{**config, "source": str(tmp_path / "empty")})
    assert re.search(r"empty: no title VOBs .* point source: at", failure(tmp_path))


def test_file_that_is_not_video(tmp_path, config):
    (tmp_path / "film.mkv").write_text("not a film")
    write_config(tmp_path, **{**config, "source": str(tmp_path / "film.mkv")})
    assert re.search(r"film\.mkv: ffprobe cannot read it as video", failure(tmp_path))


@pytest.mark.parametrize("kind", ["garbage", "wrong kind"])
def test_unusable_model(tmp_path, config, kind):
    model = tmp_path / "model.pth"
    if kind == "garbage":
        model.write_bytes(b"\x00garbage" * 100)
    else:
        import torch

        torch.save({"not": torch.zeros(3)}, model)
    write_config(tmp_path, **{**config, "models": [str(model)]})
    text = failure(tmp_path)
    assert re.search(r"model\.pth: (cannot be read|spandrel does not recognise)", text), text
    assert not (tmp_path / "results" / "out" / "upscale_shard").exists()


def test_not_enough_disk_for_the_next_shard(tmp_path, config):
    write_config(tmp_path, **config)
    text = failure(tmp_path, env={**os.environ, "REMASTER_MIN_FREE_BYTES": str(10**18)})
    assert re.search(r"upscale_shard: not enough disk space for shard \d{4} .* free some space", text), text
    assert not list((tmp_path / "results" / "out" / "upscale_shard").glob("*.mkv"))


def test_ffmpeg_missing(tmp_path, config):
    write_config(tmp_path, **config)
    # REMASTER_FFMPEG names the ffmpeg to run (before the pinned one and PATH): a wrong one is one line
    env = {**os.environ, "REMASTER_FFMPEG": str(tmp_path / "no such" / "ffmpeg")}
    text = failure(tmp_path, env=env)
    assert f"ffmpeg not found: REMASTER_FFMPEG={tmp_path / 'no such' / 'ffmpeg'} is not an executable file" in text, text


def test_two_runs_on_one_disc_and_two_discs_in_one_folder(tmp_path, config):
    write_config(tmp_path, **{**config, "output": "first.mkv"})
    (tmp_path / "config" / "second.yaml").write_text(json.dumps({**config, "output": "second.mkv"}))
    first = start(tmp_path)
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.monotonic() + 120
    while not list(locks.glob("*.lock.owner")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    # the same disc again while the first runs: refused, and the first's lock is not taken as stale
    text = failure(tmp_path)
    assert "locked" in text.lower(), text
    second = start(tmp_path, "--configfile", str(tmp_path / "config" / "second.yaml"))
    outputs = [first.communicate(timeout=600)[0], second.communicate(timeout=600)[0]]
    assert first.returncode == 0 and second.returncode == 0, "\n".join(o[-3000:] for o in outputs)
    hashes = [frame_hashes(tmp_path / name) for name in ("first.mkv", "second.mkv")]
    assert len(hashes[0]) == 24 and hashes[0] == hashes[1]
    assert planned_jobs(tmp_path) == {}
    assert planned_jobs(tmp_path, "--configfile", str(tmp_path / "config" / "second.yaml")) == {}
