"""The upscale engine: out-of-memory backoff, batches, fast paths, torch.compile, and the benchmark (CPU)."""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from remaster.frames import budget, commands, engine
from remaster.models import fastpaths
from remaster.models.loading import load_chain, load_model, run_tiled
from remaster.run.errors import RemasterError
from remaster.run.settings import ModelStep, UpscaleSettings, from_config
from support.workflow import REPO, make_compact

FRAMES = 10
WIDTH, HEIGHT = 64, 48
LOG = logging.getLogger("test_engine")


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    """A 10-frame FFV1 shard of a pattern that differs in every frame, 64×48, like a shard of the prepared title."""
    path = tmp_path_factory.mktemp("shard") / "shard.mkv"
    pattern = (f"color=c=gray:s={WIDTH}x{HEIGHT}:r=24,format=yuv420p,"
               "geq=lum='mod(3*X+5*Y+17*N,256)':cb='mod(X+9*N,256)':cr='mod(2*Y+11*N,256)'")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", pattern,
                    "-frames:v", str(FRAMES), "-pix_fmt", "yuv420p", "-c:v", "ffv1", "-f", "matroska", str(path)],
                   check=True)
    return path


def settings(model: Path | None = None, **overrides) -> UpscaleSettings:
    return UpscaleSettings(models=(ModelStep(model or Path("fake.safetensors")),), device="cpu", **overrides)


def upscale(shard: Path, out: Path, config: UpscaleSettings, chain=None, frames: int = FRAMES):
    return engine.upscale_file(shard, out, expected_frames=frames, fps="24", matrix="bt601", settings=config,
                               label="test", log=LOG, threads=1, chain=chain)


def decoded(path: Path) -> np.ndarray:
    """Every frame of a video as RGB24, shape (frames, h, w, 3)."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                           check=True).stdout.strip().split(",")
    width, height = int(probe[0]), int(probe[1])
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, height, width, 3)


class FakeChain:
    """A ×2 nearest-neighbour 'model' that runs out of memory on batches over `most_frames` or taller tiles."""

    def __init__(self, most_frames: int = 1 << 30, most_height: int = 1 << 30):
        self.steps = [SimpleNamespace(architecture=SimpleNamespace(name="Fake"))]
        self.device, self.dtype, self.scale, self.min_size = torch.device("cpu"), torch.float32, 2, 1
        self.most_frames, self.most_height = most_frames, most_height
        self.failures = 0
        self.frames_done: list[str] = []  # md5 of every whole frame the model finished, in order

    def __call__(self, batch: torch.Tensor, tile: int = 0, overlap: int = 16) -> torch.Tensor:
        if tile:  # a Chain tiles each of its steps: so does this one-step fake
            return run_tiled(self, batch, tile, overlap, scale=2)
        if batch.shape[0] > self.most_frames or batch.shape[2] > self.most_height:
            self.failures += 1
            raise torch.OutOfMemoryError("fake: out of memory")
        if batch.shape[2:] == (HEIGHT, WIDTH):
            self.frames_done += [hashlib.md5(frame.numpy().tobytes()).hexdigest() for frame in batch]
        return F.interpolate(batch, scale_factor=2, mode="nearest")


@pytest.mark.parametrize("limits", [{"most_frames": 1}, {"most_frames": 1, "most_height": 40}],
                         ids=["batch", "batch-then-tile"])
def test_out_of_memory_shrinks_and_redoes_the_same_frames(shard, tmp_path, limits):
    reference = FakeChain()
    upscale(shard, tmp_path / "reference.mkv", settings(batch_size=1), reference)
    assert len(reference.frames_done) == FRAMES and len(set(reference.frames_done)) == FRAMES

    failing = FakeChain(**limits)
    result = upscale(shard, tmp_path / "out.mkv", settings(batch_size=4, tile_overlap=4), failing)

    assert failing.failures >= 2  # 4 → 2 → 1 frames (and then whole frame → tile)
    assert result.frames == FRAMES and result.batch_size == 1
    if "most_height" in limits:
        assert 0 < result.tile < HEIGHT
    else:  # every frame finished exactly once, in order
        assert failing.frames_done == reference.frames_done
    assert np.array_equal(decoded(tmp_path / "out.mkv"), decoded(tmp_path / "reference.mkv"))


def test_out_of_memory_at_the_smallest_tile_is_an_error(shard, tmp_path):
    with pytest.raises(RemasterError, match="out of GPU memory"):
        upscale(shard, tmp_path / "out.mkv", settings(batch_size=2), FakeChain(most_frames=1, most_height=8))
    assert not (tmp_path / "out.mkv").exists()


def test_a_frame_count_mismatch_keeps_no_shard(shard, tmp_path):
    with pytest.raises(RemasterError, match="frame count mismatch"):
        upscale(shard, tmp_path / "out.mkv", settings(batch_size=3), FakeChain(), frames=FRAMES + 1)
    assert not list(tmp_path.iterdir())


def test_batches_give_the_frames_batch_one_gives(shard, tmp_path):
    model = make_compact(tmp_path / "compact.safetensors", num_feat=8, num_conv=2)
    chain = load_chain([model], device="cpu")
    # stored losslessly: the engine's arithmetic is compared, not a lossy encoder's decisions
    one = upscale(shard, tmp_path / "one.mkv", settings(model, batch_size=1, form="lossless"), chain)
    three = upscale(shard, tmp_path / "three.mkv", settings(model, batch_size=3, form="lossless"), chain)
    assert one.frames == three.frames == FRAMES and three.batch_size == 3
    a, b = decoded(tmp_path / "one.mkv").astype(int), decoded(tmp_path / "three.mkv").astype(int)
    assert a.shape == b.shape == (FRAMES, HEIGHT * 2, WIDTH * 2, 3)
    # batched convolutions sum in another order (oneDNN picks its kernels by batch size and CPU), and a
    # random-weight model amplifies that: on some CPUs a few codes differ. A frame out of place or run
    # twice differs everywhere (the pattern moves 17 codes a frame), so each frame must match its twin.
    difference = np.abs(a - b)
    assert difference.max() <= 4
    assert difference.reshape(FRAMES, -1).mean(axis=1).max() < 0.05


def psnr_10bit(a: Path, b: Path) -> tuple[float, float]:
    """Mean and lowest per-frame PSNR of two 10-bit videos, as ffmpeg's psnr filter measures it (peak 1023)."""
    from remaster.run import media

    result = subprocess.run([media.tool("ffmpeg"), "-nostdin", "-i", str(a), "-i", str(b), "-lavfi",
                             "[0:v]setpts=N[a];[1:v]setpts=N[b];[a][b]psnr", "-f", "null", "-"],
                            capture_output=True, text=True, check=True).stderr
    found = re.search(r"average:([\d.]+|inf) min:([\d.]+|inf)", result)
    return float(found.group(1)), float(found.group(2))


def test_the_compact_upscaled_form_is_near_lossless_and_smaller(shard, tmp_path):
    """The default upscaled_form (x264 CRF 4) against FFV1 on a real model's output of a pattern that changes
    every pixel of every frame (the hardest case for a lossy coder): >= 50 dB PSNR, at most half the bytes."""
    model = make_compact(tmp_path / "compact.safetensors", num_feat=8, num_conv=2)
    chain = load_chain([model], device="cpu")
    compact = upscale(shard, tmp_path / "compact.mkv", settings(model, batch_size=1), chain)
    lossless = upscale(shard, tmp_path / "lossless.mkv", settings(model, batch_size=1, form="lossless"), chain)
    assert compact.frames == lossless.frames == FRAMES
    mean, lowest = psnr_10bit(tmp_path / "compact.mkv", tmp_path / "lossless.mkv")
    ratio = (tmp_path / "compact.mkv").stat().st_size / (tmp_path / "lossless.mkv").stat().st_size
    print(f"compact upscaled form: {mean:.2f} dB mean, {lowest:.2f} dB lowest frame, {ratio:.0%} of FFV1's bytes")
    assert lowest >= 50, (mean, lowest)
    assert mean < 100  # not lossless by accident: the comparison can tell the two apart
    assert ratio <= 0.5, ratio


def test_an_unknown_upscaled_form_is_one_line(tmp_path):
    with pytest.raises(RemasterError, match="upscaled_form: 'jpeg'"):
        commands.encoder_command(tmp_path / "x.mkv", 64, 48, "24", form="jpeg")


def test_memory_plans_are_arithmetic():
    mib = 2**20
    assert budget.batch_for_memory(1000 * mib, 100 * mib) == 8
    assert budget.batch_for_memory(50 * mib, 100 * mib) == 1
    assert budget.batch_for_memory(10**6 * mib, mib) == budget.MOST_BATCH
    tile = budget.tile_for_memory(1000 * mib, 4096.0, overlap=16)
    assert tile % 16 == 0 and (tile + 32) ** 2 * 4096 <= 1000 * mib * budget.MEMORY_FRACTION
    assert budget.tile_for_memory(mib, 1e6, overlap=16, least=48) == 48


def small_swinir() -> torch.nn.Module:
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    return SwinIR(upscale=2, img_size=32, window_size=8, embed_dim=24, depths=[2, 2], num_heads=[2, 2],
                  mlp_ratio=2, upsampler="nearest+conv", resi_connection="1conv").eval()


def test_swinir_fast_path_matches_the_original(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "swinir.safetensors"
    save_file({k: v.contiguous() for k, v in small_swinir().state_dict().items()}, str(path))
    original = load_model(path)  # spandrel's own forward
    fast = load_chain([path], device="cpu")  # the run path patches the fast paths in
    assert fastpaths.apply(fast) == []  # already patched, and patching is idempotent
    with torch.inference_mode():
        for shape in [(1, 3, 32, 32), (2, 3, 40, 56), (1, 3, 48, 64)]:  # training size, then video-like sizes
            frames = torch.rand(shape).contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(fast(frames), original(frames), atol=1e-5, rtol=1e-4)
    blocks = [m for m in fast.steps[0].model.modules() if getattr(m, "shift_size", 0) > 0]
    assert blocks and all((8, 4, 48, 64, torch.device("cpu")) in m._remaster_masks for m in blocks)


def test_swinir_fast_path_in_bfloat16_stays_close():
    model = small_swinir()
    fast = copy.deepcopy(model)
    fastpaths.patch_model(fast)
    frames = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        reference = model(frames)
        out = fast.to(torch.bfloat16)(frames.to(torch.bfloat16)).float()
    assert (out - reference).abs().mean() < 0.02


def test_compile_flag_runs_the_compiled_chain(shard, tmp_path, caplog):
    """torch.compile of a tiny Compact takes ~15 s on 2 CPU cores (measured), so it is tested on the CPU."""
    model = make_compact(tmp_path / "compact.safetensors", num_feat=8, num_conv=2)
    plain = upscale(shard, tmp_path / "plain.mkv", settings(model, batch_size=4), load_chain([model], device="cpu"))
    with caplog.at_level(logging.INFO, logger=LOG.name):
        compiled = upscale(shard, tmp_path / "compiled.mkv", settings(model, batch_size=4, compile=True))
    assert "torch.compile warm-up" in caplog.text and ", compiled" in caplog.text
    assert compiled.frames == plain.frames == FRAMES and compiled.warmup_seconds > 0
    a, b = decoded(tmp_path / "plain.mkv").astype(int), decoded(tmp_path / "compiled.mkv").astype(int)
    assert np.abs(a - b).max() <= 1


def test_compile_key_is_read_from_the_config():
    base = {"source": "disc.vob", "output": "out.mkv", "shard_frames": 100, "models": ["m.safetensors"]}
    assert from_config(base).upscale.compile is False
    assert from_config({**base, "compile": True}).upscale.compile is True


def test_bench_smoke():
    bench = REPO / "tests" / "bench" / "bench_upscale.py"
    result = subprocess.run([sys.executable, str(bench), "--arch", "compact", "--size", "48x32", "--frames", "3",
                             "--device", "cpu", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-2:]
    assert re.fullmatch(r"pipeline_vs_forward_only: \d+\.\d+", last[0]), last
    assert re.fullmatch(r"pipeline_vs_seed_loop: \d+\.\d+x", last[1]), last


def test_a_decoder_that_floods_stderr_does_not_block_the_shard(shard, tmp_path, monkeypatch):
    """1 MB of decoder warnings before the frames: a stderr pipe read only at exit fills at 64 KiB and blocks
    ffmpeg, and with it the shard, forever."""
    import threading

    real = commands.decoder_command
    flood = ("import os, sys; sys.stderr.write('warning: damaged macroblock\\n' * 40000); sys.stderr.flush(); "
             "os.execvp(sys.argv[1], sys.argv[1:])")
    monkeypatch.setattr(engine, "decoder_command",
                        lambda *args, **kwargs: [sys.executable, "-c", flood, *real(*args, **kwargs)])
    done = []
    job = threading.Thread(target=lambda: done.append(upscale(shard, tmp_path / "out.mkv", settings(batch_size=2),
                                                              FakeChain())), daemon=True)
    job.start()
    job.join(120)
    assert done and done[0].frames == FRAMES


def test_compiled_kernels_are_kept_for_the_next_shard(shard, tmp_path):
    """The second shard's job (a new process: dynamo's own caches empty) loads the first one's kernels from
    the title's compile cache instead of compiling them again."""
    from torch._dynamo.utils import counters

    model = make_compact(tmp_path / "compact.safetensors", num_feat=8, num_conv=2)
    cache = tmp_path / "upscale_shard" / "compile_cache"
    config = settings(model, batch_size=4, compile=True)
    torch._dynamo.reset()
    counters.clear()
    engine.upscale_file(shard, tmp_path / "a.mkv", expected_frames=FRAMES, fps="24", matrix="bt601", settings=config,
                        label="a", log=LOG, threads=1, compile_cache_dir=cache)
    assert counters["inductor"]["fxgraph_cache_miss"] >= 1 and any(cache.rglob("*.py"))
    torch._dynamo.reset()  # what a new process starts with
    counters.clear()
    second = engine.upscale_file(shard, tmp_path / "b.mkv", expected_frames=FRAMES, fps="24", matrix="bt601",
                                 settings=config, label="b", log=LOG, threads=1, compile_cache_dir=cache)
    assert second.frames == FRAMES
    assert counters["inductor"]["fxgraph_cache_hit"] >= 1 and counters["inductor"]["fxgraph_cache_miss"] == 0


def test_a_missing_compiler_is_reported_as_such(shard, tmp_path, monkeypatch):
    import torch._inductor.config as inductor_config

    model = make_compact(tmp_path / "compact.safetensors", num_feat=8, num_conv=2)
    monkeypatch.setattr(inductor_config.cpp, "cxx", ("no-such-c++-compiler",))
    torch._dynamo.reset()
    with pytest.raises(RemasterError) as caught:  # an empty cache: nothing compiled to load instead
        engine.upscale_file(shard, tmp_path / "out.mkv", expected_frames=FRAMES, fps="24", matrix="bt601",
                            settings=settings(model, batch_size=2, compile=True), label="test", log=LOG, threads=1,
                            compile_cache_dir=tmp_path / "empty cache")
    message = str(caught.value)
    assert "\n" not in message and "torch.compile cannot build kernels" in message and "compile: false" in message
    assert "nvidia-smi" not in message


@pytest.mark.unit
def test_the_writers_yuv_is_bt709_limited_range_to_the_code(tmp_path):
    """The conversion on the device gives BT.709's limited-range codes exactly (white 940, red's Cr 960),
    and ffmpeg's swscale's (which the writer ran before) from rgb48 to within 5 codes: the same chroma
    siting; swscale puts white at 943, a scaling error."""
    from remaster.frames.yuv import frame_words, rgb_to_yuv420p10, yuv420p10_to_rgb

    grey = torch.tensor([0.0, 0.25, 0.5, 0.7, 1.0]).view(5, 1, 1, 1).expand(5, 3, 2, 2)
    codes = rgb_to_yuv420p10(grey).numpy().astype(np.int64)
    assert codes[:, 0].tolist() == [64, 283, 502, 677, 940] and (codes[:, 4:] == 512).all()
    red = rgb_to_yuv420p10(torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)).numpy()[0].tolist()
    assert red == [250] * 4 + [409, 960]

    torch.manual_seed(0)
    smooth = F.interpolate(torch.rand(2, 3, 6, 8), size=(48, 64), mode="bilinear", align_corners=False)
    ours = rgb_to_yuv420p10(smooth).numpy().astype(np.int64)
    assert ours.shape == (2, frame_words(64, 48))
    rgb48 = (smooth * 65535).round().permute(0, 2, 3, 1).numpy().astype("<u2").tobytes()
    theirs = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "64x48",
                             "-i", "pipe:0", "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd"
                             "+full_chroma_int,format=yuv420p10le", "-f", "rawvideo", "pipe:1"],
                            input=rgb48, capture_output=True, check=True).stdout
    theirs = np.frombuffer(theirs, "<u2").reshape(2, -1).astype(np.int64)
    assert np.abs(ours - theirs).max() <= 5 and np.abs(ours - theirs).mean() < 1.5
    back = yuv420p10_to_rgb(torch.from_numpy(ours.astype(np.uint16)), 64, 48)
    assert (back - smooth).abs().mean() < 0.03  # 4:2:0 keeps a quarter of the chroma


@pytest.mark.unit
def test_the_cpu_jobs_numpy_yuv_is_the_devices():
    from remaster.frames.yuv import host_rgb_to_yuv420p10, rgb_to_yuv420p10

    torch.manual_seed(2)
    rgb = (torch.rand(3, 3, 24, 32) * 1.2 - 0.1).contiguous(memory_format=torch.channels_last)  # beyond [0, 1] too
    difference = np.abs(host_rgb_to_yuv420p10(rgb.numpy()).astype(int) - rgb_to_yuv420p10(rgb).numpy().astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.001
