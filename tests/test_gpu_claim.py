"""Several GPUs in one machine: each job claims one of its own and gives it back however it ends (CPU)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from remaster import gpuclaim
from remaster.errors import RemasterError

GPUS = ["cuda-GPU-aaaa", "cuda-GPU-bbbb", "cuda-GPU-cccc"]

# a job: claims one of GPUS, prints which, holds it for `hold` seconds (or until killed), exits
JOB = """
import sys, time
sys.path.insert(0, {scripts!r})
from remaster import gpuclaim
held = gpuclaim.claim({keys!r}, {folder!r}, wait=30)
print(held.index, held.key, flush=True)
time.sleep({hold})
"""


def start_job(folder: Path, hold: float) -> subprocess.Popen:
    code = JOB.format(scripts=str(REPO / "workflow" / "scripts"), keys=GPUS, folder=str(folder), hold=hold)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def claimed(job: subprocess.Popen) -> str:
    return job.stdout.readline().split()[1]


@pytest.mark.unit
def test_concurrent_jobs_each_get_a_gpu_of_their_own(tmp_path):
    jobs = [start_job(tmp_path, hold=3) for _ in GPUS]
    try:
        keys = [claimed(job) for job in jobs]
    finally:
        for job in jobs:
            job.kill()
            job.wait()
    assert sorted(keys) == sorted(GPUS)


@pytest.mark.unit
def test_a_job_beyond_the_gpus_waits_for_one_to_come_free(tmp_path):
    jobs = [start_job(tmp_path, hold=60) for _ in GPUS]
    try:
        keys = [claimed(job) for job in jobs]
        late = start_job(tmp_path, hold=0)
        time.sleep(1.5)
        assert late.poll() is None  # still waiting: every GPU is held
        jobs[1].send_signal(signal.SIGKILL)  # a job killed hard: no cleanup code runs
        jobs[1].wait()
        assert claimed(late) == keys[1]  # the dead job's GPU, at once
        late.wait(timeout=30)
    finally:
        for job in jobs:
            job.kill()
            job.wait()


@pytest.mark.unit
def test_a_claim_is_given_back_and_taken_again(tmp_path):
    first = gpuclaim.claim(GPUS[:1], tmp_path)
    with pytest.raises(RemasterError, match="every GPU of this machine"):
        gpuclaim.claim(GPUS[:1], tmp_path, wait=0)  # flock is per open file: even this process is refused
    first.release()
    again = gpuclaim.claim(GPUS[:1], tmp_path, wait=0)
    assert again.key == GPUS[0] and again.path.read_text().strip() == str(os.getpid())
    again.release()


@pytest.mark.unit
def test_the_cpu_needs_no_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("REMASTER_GPU_CLAIMS", str(tmp_path / "claims"))
    with gpuclaim.job_device("cpu", logging.getLogger("t")) as device:
        assert device.type == "cpu"
    assert not (tmp_path / "claims").exists() or not list((tmp_path / "claims").iterdir())
