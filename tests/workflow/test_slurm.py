"""On a real SLURM cluster: every shard of every disc of a sheet is a SLURM job of its own with its own GPU.

The module brings up the single-node test cluster of tests/slurm/cluster.sh (two fake GPUs) and takes it
down again at the end (unless it was already running). It runs a two-row `discs:` sheet (two generated
discs) once through `snakemake --profile profiles/slurm`, as docs/cluster.md says, and once locally, and
compares them: the shards of both discs are separate jobs of one run.
Where the cluster cannot be started (not root, no SLURM packages and no apt) the tests are skipped; with
the environment variable CI set they fail instead.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from support.workflow import REPO, SNAKEMAKE, frame_hashes, planned_jobs, write_config

pytestmark = pytest.mark.slurm

CLUSTER_SH = REPO / "tests" / "slurm" / "cluster.sh"
# snakemake runs with -d <work dir>: the profile is given by its absolute path
SLURM_ARGS = ("--profile", str(REPO / "profiles" / "slurm"), "--slurm-init-seconds-before-status-checks", "5")
RUN_TIMEOUT = 900  # seconds for the whole run on the cluster (two discs: about 6 minutes on 2 CPU cores)
SHARD_FRAMES = 8  # 24 frames → 3 shards, 16 frames → 2: 5 upscale jobs on a cluster with 2 GPUs
# the SLURM plugin names a job's folder and comment by its wildcards joined with "_": {disc}_{shard}
SHARDS = ("demo_0000", "demo_0001", "demo_0002", "second_0000", "second_0001")
FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}
OUTPUTS = {"demo": ("masters/demo.mkv", 24), "second": ("masters/second.mkv", 16)}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str):
    if in_ci():
        pytest.fail(f"SLURM test cluster unavailable: {reason} (CI is set, so the slurm tests must run)",
                    pytrace=False)
    pytest.skip(f"SLURM test cluster unavailable: {reason}")


def cluster_sh(command: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER_SH), command], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    """The local SLURM cluster, up; down again afterwards if this fixture started it."""
    if os.geteuid() != 0:
        unavailable("tests/slurm/cluster.sh needs root (run the tests as root, as CI does)")
    status = cluster_sh("status", timeout=60)
    already_up = "slurmctld: running" in status.stdout and "slurmd: running" in status.stdout
    try:
        # installs slurmctld slurmd slurm-client munge with apt-get where missing (fresh Debian 12)
        up = cluster_sh("up", timeout=900)
    except subprocess.TimeoutExpired:
        cluster_sh("down", timeout=120)
        unavailable("`cluster.sh up` did not finish within 900 s")
    if up.returncode != 0:
        cluster_sh("down", timeout=120)
        unavailable(f"`cluster.sh up` failed:\n{up.stderr[-3000:]}")
    yield
    if not already_up:
        down = cluster_sh("down", timeout=120)
        assert down.returncode == 0, down.stderr


def run_id(console: str) -> str | None:
    match = re.search(r"SLURM run ID: ([0-9a-f-]+)", console)
    return match.group(1) if match else None


def run_on_cluster(workdir: Path, *args: str) -> str:
    """`snakemake --profile profiles/slurm` in `workdir`, its console; on failure or timeout its jobs cancelled."""
    console_file = workdir.parent / f"{workdir.name}-console.log"
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *SLURM_ARGS, *args]
    # a pytest started inside a SLURM job must not make Snakemake think it is a job step
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    ok = False
    with open(console_file, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            returncode = proc.wait(timeout=RUN_TIMEOUT)
            ok = returncode == 0
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Snakemake's Ctrl-C: it cancels its SLURM jobs itself
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            console = console_file.read_text(errors="replace")
            if not ok and run_id(console):
                # whatever is left of this run (its SLURM jobs are named after the run ID)
                subprocess.run(["scancel", "--name", run_id(console)], capture_output=True, timeout=60)
    if returncode is None:
        pytest.fail(f"{' '.join(cmd)} did not finish within {RUN_TIMEOUT} s; its jobs were cancelled:\n"
                    f"{console[-6000:]}\n{slurm_queue()}", pytrace=False)
    if not ok:
        pytest.fail(f"{' '.join(cmd)} failed ({returncode}):\n{console[-8000:]}", pytrace=False)
    return console


def slurm_queue() -> str:
    return subprocess.run(["squeue", "-t", "all", "-o", "%i %j %k %T %M %b %R"], capture_output=True, text=True,
                          timeout=60).stdout


def submissions(console: str, rule: str) -> dict[str, int]:
    """SLURM job id by wildcards (the shard), from 'Job N has been submitted with SLURM jobid J (log: ...)'."""
    found = {}
    for match in re.finditer(r"has been submitted with SLURM jobid (\d+) \(log: (.+?)\)", console):
        log = Path(match.group(2))
        if f"/slurm_logs/rule_{rule}/" in match.group(2):
            found[log.parent.name] = int(match.group(1))
    return found


def slurm_records(name: str) -> dict[int, dict]:
    """The cluster's record of every job of one run (finished ones stay for MinJobAge)."""
    out = subprocess.run(["squeue", "-t", "all", "-h", "-n", name, "-O",
                          "JobID:12,Comment:60,tres-per-job:24,State:16,StartTime:22,EndTime:22"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    records = {}
    for line in out.splitlines():
        job, comment, tres, state, start, end = line.split()
        records[int(job)] = dict(comment=comment, tres=tres, state=state, start=timestamp(start), end=timestamp(end))
    return records


def timestamp(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # N/A, Unknown: never started
        return None


def most_running(console: str, rule: str) -> int:
    """The most jobs of `rule` Snakemake had started (or submitted) and not yet finished at one time."""
    running: set[str] = set()
    most = 0
    current_rule = None
    for line in console.splitlines():
        line = line.strip()
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            current_rule = match.group(1)
        elif (match := re.match(r"^jobid: (\d+)$", line)) and current_rule == rule:
            running.add(match.group(1))
            most = max(most, len(running))
            current_rule = None
        elif match := re.match(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", line):
            running.discard(match.group(1))
    return most


@pytest.fixture(scope="module")
def config(tmp_path_factory, demo_disc, tiny_model) -> dict:
    """A two-row sheet: the 24-frame demo disc and a second, 16-frame one."""
    from remaster.demo import make_disc

    folder = tmp_path_factory.mktemp("sheet")
    second = make_disc(folder / "second", frames=OUTPUTS["second"][1])
    sheet = folder / "discs.tsv"
    sheet.write_text(f"source\toutput\n{demo_disc}\t{OUTPUTS['demo'][0]}\n{second}\t{OUTPUTS['second'][0]}\n")
    return dict(discs=str(sheet), models=[str(tiny_model)], shard_frames=SHARD_FRAMES, encoder=FAST_ENCODER)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, config):
    """The same disc run on this machine, as the README says (the workflow profile limits it to one GPU)."""
    workdir = tmp_path_factory.mktemp("local-work")
    write_config(workdir, **config)
    # 8 cores (Snakemake only counts them) would let two upscale jobs (threads: 4) run at once: only the
    # `gpu: 1` of profiles/default keeps them apart
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "8"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return workdir, result.stdout + result.stderr


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, config):
    """One finished run on the cluster: its work dir, console, and the cluster's records of its jobs."""
    workdir = tmp_path_factory.mktemp("slurm-work")
    write_config(workdir, **config)
    console = run_on_cluster(workdir)
    name = run_id(console)
    assert name, console[-3000:]
    return workdir, console, slurm_records(name)


def test_local_run_keeps_one_gpu_job_at_a_time(local_run):
    workdir, console = local_run
    assert all((workdir / output).is_file() for output, _ in OUTPUTS.values())
    assert console.count("localrule upscale_shard:") == len(SHARDS)
    assert most_running(console, "upscale_shard") == 1


def test_every_shard_is_a_slurm_job_with_a_gpu(slurm_run):
    workdir, console, records = slurm_run
    jobs = submissions(console, "upscale_shard")
    assert sorted(jobs) == list(SHARDS), console[-3000:]
    assert len(set(jobs.values())) == len(SHARDS)
    for shard, job in jobs.items():
        record = records[job]
        disc, number = shard.rsplit("_", 1)
        assert record["comment"] == f"rule_upscale_shard_wildcards_{shard}"
        assert record["tres"] == "gres:gpu:1", record
        assert record["state"] == "COMPLETED", record
        # inside the job: SLURM's job id and the GPU it allocated (the fake node has GPUs 0 and 1)
        first = (workdir / "logs" / disc / "upscale_shard" / f"{number}.log").read_text().splitlines()[0]
        assert re.search(rf"SLURM job {job}, CUDA_VISIBLE_DEVICES=[01]$", first), first
    # the steps around the upscale are SLURM jobs too, and finished
    assert records and all(record["state"] == "COMPLETED" for record in records.values()), records


def test_shards_are_upscaled_side_by_side_on_different_gpus(slurm_run):
    workdir, console, records = slurm_run
    # Snakemake hands a title's shards to SLURM at once (profiles/default's `gpu: 1` counts per job there;
    # the second disc's may start a little later, when its own prepare_title checkpoint is done) ...
    assert most_running(console, "upscale_shard") >= 3
    # ... and SLURM runs two at a time, one per GPU
    jobs = submissions(console, "upscale_shard")
    gpu = {}
    for shard, job in jobs.items():
        disc, number = shard.rsplit("_", 1)
        log = workdir / "logs" / disc / "upscale_shard" / f"{number}.log"
        gpu[job] = re.search(r"CUDA_VISIBLE_DEVICES=(\S+)", log.read_text()).group(1)
    overlapping = [(a, b) for a in jobs.values() for b in jobs.values()
                   if a < b and records[a]["start"] < records[b]["end"] and records[b]["start"] < records[a]["end"]]
    assert overlapping, {job: (records[job]["start"], records[job]["end"]) for job in jobs.values()}
    for a, b in overlapping:
        assert gpu[a] != gpu[b], (a, b, gpu)


def test_masters_match_a_local_run(slurm_run, local_run):
    for output, frames in OUTPUTS.values():
        hashes = frame_hashes(slurm_run[0] / output)
        assert len(hashes) == frames
        assert hashes == frame_hashes(local_run[0] / output)


def test_second_run_plans_nothing(slurm_run):
    workdir = slurm_run[0]
    assert planned_jobs(workdir, *SLURM_ARGS) == {}
