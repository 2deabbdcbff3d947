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

from remaster.models import claims
from remaster.run.errors import RemasterError
from support.workflow import REPO

GPUS = ["cuda-GPU-aaaa", "cuda-GPU-bbbb", "cuda-GPU-cccc"]

# a job: claims one of GPUS, prints which, holds it for `hold` seconds (or until killed), exits
JOB = """
import sys, time
sys.path.insert(0, {scripts!r})
from remaster.models import claims
held = claims.claim({keys!r}, {folder!r}, wait=30)
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
    first = claims.claim(GPUS[:1], tmp_path)
    with pytest.raises(RemasterError, match="every GPU of this machine"):
        claims.claim(GPUS[:1], tmp_path, wait=0)  # flock is per open file: even this process is refused
    first.release()
    again = claims.claim(GPUS[:1], tmp_path, wait=0)
    assert again.key == GPUS[0] and again.path.read_text().strip() == str(os.getpid())
    again.release()


@pytest.mark.unit
def test_the_cpu_needs_no_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("REMASTER_GPU_CLAIMS", str(tmp_path / "claims"))
    with claims.job_device("cpu", logging.getLogger("t")) as device:
        assert device.type == "cpu"
    assert not (tmp_path / "claims").exists() or not list((tmp_path / "claims").iterdir())


# --- the device layer, on a machine without a GPU ----------------------------------------------------------


@pytest.mark.unit
def test_devices_without_a_gpu_are_plain_and_errors_are_one_line():
    import torch

    from remaster.models.devices import Device, is_out_of_memory, resolve

    assert resolve("cpu") == torch.device("cpu")
    cpu = Device(torch.device("cpu"))
    assert not cpu.has_streams and not cpu.pinned and cpu.record() is None and cpu.memory() is None
    assert cpu.supports(torch.float32) and not cpu.supports(torch.bfloat16)  # auto runs fp32 on the CPU
    if not torch.cuda.is_available():
        with pytest.raises(RemasterError, match="device: cuda:1 asked for, but torch sees no cuda") as caught:
            resolve("cuda:1")
        assert "\n" not in str(caught.value)
    with pytest.raises(RemasterError, match="not a device torch knows"):
        resolve("gpu0")
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("CUDA error: an illegal memory access was encountered"))
