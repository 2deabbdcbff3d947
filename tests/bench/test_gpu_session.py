"""The GPU session script and the stage benchmark run end to end on the CPU with tiny sizes."""

from __future__ import annotations

import re
import subprocess
import sys

from support.workflow import REPO


def test_gpu_session_runs_end_to_end_on_the_cpu(tmp_path):
    """Every step of tests/bench/gpu_session.sh, with --device cpu, toy models and tiny frames: the script a
    GPU session runs as it is must not be first run on the GPU's clock."""
    figures = tmp_path / "figures.txt"
    result = subprocess.run(["bash", str(REPO / "tests" / "bench" / "gpu_session.sh"), "--device", "cpu", "--tiny",
                             "--out", str(figures)], capture_output=True, text=True, timeout=400,
                            env={"PYTHON": sys.executable, "PATH": __import__("os").environ["PATH"]})
    text = figures.read_text()
    assert result.returncode == 0, text[-4000:]
    steps = re.findall(r"^== (.+?): exit (\d+)", text, re.MULTILINE)
    assert [name for name, _ in steps] == ["machine", "gpu tests", "swinir fast path", "stage ceilings",
                                           "bench_upscale compact", "bench_upscale esrgan", "bench_upscale swinir",
                                           "bench_interpolate"]
    assert all(code == "0" for _, code in steps), steps
    assert re.search(r"swinir_fast_path: 480x368 batch 2 on cpu .*: ok", text)
    assert re.search(r"^ceiling_compact: \w+ \d+\.\d$", text, re.MULTILINE)
    assert len(re.findall(r"^pipeline_vs_forward_only: \d+\.\d+$", text, re.MULTILINE)) == 3
    assert re.search(r"^forward_only: [\d.]+ interpolated frames/s", text, re.MULTILINE)
