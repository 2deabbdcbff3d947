"""The architecture matrix: every architecture spandrel (and spandrel-extra-arches) can build, with small
random weights, at two odd frame sizes, through the real run path — the start-up check, the upscale job
and preview — at every precision the project would choose for it on a GPU, compared with fp32.

    .venv/bin/python -m pytest tests/test_arch_matrix.py -m arch_matrix -q        # a few minutes, 2 cores
    REMASTER_MATRIX_SLOW=1 ...                                                    # the face models too
    REMASTER_MATRIX_REPORT=matrix.json ...                                        # what docs/models.md lists

Tolerance: the chosen precision must stay within 2/255 mean absolute difference of fp32 (clamped output).
The start-up proof admits a precision at 1/255 on its own frame; these frames and sizes differ, and random
weights amplify rounding more than trained ones, so the matrix allows twice that. A broken precision (a
dtype fault, overflow to inf/NaN, a lost mask) lands orders of magnitude beyond it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from remaster.frames import engine
from remaster.frames.runner import Runner
from remaster.frames.yuv import even
from remaster.models import loading as models
from remaster.models.check import check_chain
from remaster.models.loading import load_chain_steps
from remaster.output.preview import still_runner, upscale_still
from remaster.run.errors import RemasterError
from remaster.run.settings import ModelStep, UpscaleSettings
from support.arch_zoo import BUILDS, REFUSED, SLOW

pytestmark = pytest.mark.arch_matrix

LOG = logging.getLogger("test_arch_matrix")
SIZES = [(17, 23), (29, 37)]  # (h, w): odd, prime, below and above most windows and training sizes
MATRIX_TOLERANCE = 2 / 255
RESULTS: dict[str, dict] = {}


def frames(height: int, width: int, count: int = 2) -> np.ndarray:
    """Smooth gradients with fine texture, uint8 RGB (count, h, w, 3): the same on every run."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for k in range(count):
        r = x / max(width - 1, 1)
        g = y / max(height - 1, 1)
        b = 0.5 + 0.35 * np.sin(0.9 * x + 0.7 * y + k)
        out.append(np.stack([r, g, b], axis=-1))
    return (np.clip(np.stack(out), 0, 1) * 255).round().astype(np.uint8)


def run(chain, shot: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The frames through the run path's Runner (the engine's and preview's), float out, clamped."""
    runner = Runner(chain, size, batch_size=len(shot), tile=0, overlap=16, log=LOG, label="matrix")
    with torch.inference_mode():
        parts = [result.float().clamp(0, 1) for result, _ in runner.run(torch.from_numpy(shot), len(shot))]
    return torch.cat(parts)


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    """Two frames of the larger odd size as a lossless shard, for the upscale job."""
    height, width = SIZES[1]
    path = tmp_path_factory.mktemp("matrix") / "shard.mkv"
    raw = frames(height, width).tobytes()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    f"{width}x{height}", "-framerate", "24", "-i", "pipe:0", "-pix_fmt", "yuv444p", "-c:v", "ffv1",
                    "-f", "matroska", str(path)], input=raw, check=True)
    return path


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    target = os.environ.get("REMASTER_MATRIX_REPORT")
    if target and RESULTS:
        Path(target).write_text(json.dumps(RESULTS, indent=2, sort_keys=True) + "\n")


def test_every_spandrel_architecture_is_in_the_matrix():
    """A new spandrel architecture must be added to tests/support/arch_zoo.py (or to NOT_BUILT with a reason)."""
    from spandrel import MAIN_REGISTRY

    from support.arch_zoo import NOT_BUILT

    ids = {entry.architecture.id for entry in MAIN_REGISTRY}
    if models.EXTRA_ARCHES:
        from spandrel_extra_arches import EXTRA_REGISTRY

        ids |= {entry.architecture.id for entry in EXTRA_REGISTRY}
    covered = {name.split()[0] for name in BUILDS} | {"PLKSR"} | set(NOT_BUILT)
    assert ids - covered == set()


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_architecture(name, tmp_path, shard):
    if name in SLOW and not os.environ.get("REMASTER_MATRIX_SLOW"):
        pytest.skip("slow on two CPU cores: REMASTER_MATRIX_SLOW=1 runs it")
    if "extra" in BUILDS[name].__code__.co_names or "extra=True" in str(BUILDS[name].__code__.co_consts):
        pytest.importorskip("spandrel_extra_arches")
    torch.manual_seed(0)
    try:
        module = BUILDS[name]().eval()
    except ImportError as error:
        pytest.skip(f"not installed: {error}")
    path = tmp_path / "model.safetensors"
    # clones: some architectures (MPRNet) share weights between modules, which safetensors refuses
    save_file({key: value.detach().clone().contiguous() for key, value in module.state_dict().items()}, str(path))
    del module

    if name in REFUSED:  # the start-up check refuses it in one line, before any shard
        with pytest.raises(RemasterError) as caught:
            check_chain([ModelStep(path)])
        assert "\n" not in str(caught.value) and str(path) in str(caught.value)
        RESULTS[name] = {"refused": REFUSED[name]}
        return

    # the start-up check: loads through the run path, proves the GPU's precisions on the CPU
    entry = check_chain([ModelStep(path)]).steps[0]
    chosen = entry.proven_precision
    claimed = list(entry.precisions)
    result = {"architecture": entry.architecture, "scale": entry.scale, "claims": claimed,
              "chosen": chosen, "channels": [entry.input_channels, entry.output_channels],
              "refused": {}, "difference": {}}

    reference = load_chain_steps([ModelStep(path, precision="fp32")], device="cpu")
    shots = {size: frames(*size) for size in SIZES}
    scale = entry.scale
    references = {}
    for size, shot in list(shots.items()):
        try:
            references[size] = run(reference, shot, (size[0] * scale, size[1] * scale))
        except RemasterError as error:  # spandrel's code fails this size even at fp32: one line, no traceback
            assert "\n" not in str(error) and "models[1]" in str(error)
            result.setdefault("fails_at", {})[f"{size[1]}x{size[0]}"] = str(error).split(": ", 2)[-1][:160]
            del shots[size]
    assert shots, f"{name} runs neither odd size"
    for precision in claimed:
        if precision == "fp32":
            continue
        try:
            chain = load_chain_steps([ModelStep(path, precision=precision)], device="cpu")
        except RemasterError as error:  # not proven: auto must not have chosen it, and the line says why
            assert precision != chosen and "\n" not in str(error)
            result["refused"][precision] = str(error).split(": ", 3)[-1][:160]
            continue
        for size, shot in shots.items():
            out = run(chain, shot, (size[0] * scale, size[1] * scale))
            difference = float((out - references[size]).abs().mean())
            result["difference"][f"{precision} {size[1]}x{size[0]}"] = round(difference * 255, 3)
            if precision == chosen:
                assert difference <= MATRIX_TOLERANCE, (precision, size, difference * 255)
        del chain

    RESULTS[name] = result
    if SIZES[1] not in shots:
        return
    # the upscale job at the chosen precision (auto on a GPU would pick it; here it is asked for)
    height, width = SIZES[1]
    settings = UpscaleSettings(models=(ModelStep(path, precision=chosen),), device="cpu", batch_size=2)
    job = engine.upscale_file(shard, tmp_path / "out.mkv", expected_frames=2, fps="24", matrix="bt709",
                              settings=settings, label=name, log=LOG)
    assert job.frames == 2 and (job.width, job.height) == (even(width * scale), even(height * scale))

    # preview's still, through the same Runner
    chain = load_chain_steps(list(settings.models), device="cpu")
    still = upscale_still(still_runner(chain, (height * scale, width * scale), settings, LOG), shots[SIZES[1]][0])
    assert still.shape == (height * scale, width * scale, 3)
