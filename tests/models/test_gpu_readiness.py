"""Issue 14's findings, each reproduced on the CPU through the one run path (each failed before the fix)."""

from __future__ import annotations

import gc
import logging
import subprocess
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from remaster.frames import budget, commands, convert, engine
from remaster.frames.runner import Runner
from remaster.frames.yuv import rgb_to_yuv420p10
from remaster.models import fastpaths
from remaster.models import loading as models
from remaster.models import precision as precisions
from remaster.models.check import check_chain
from remaster.models.loading import load_chain, load_chain_steps
from remaster.output.preview import still_runner, upscale_still
from remaster.run.errors import RemasterError
from remaster.run.settings import ModelStep, UpscaleSettings
from support.workflow import make_compact

LOG = logging.getLogger("test_gpu_readiness")
ODD = (1, 3, 29, 37)  # not a multiple of any window size nor of a training size


def save(model: torch.nn.Module, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in model.eval().state_dict().items()}, str(path))
    return path


def swin2sr() -> torch.nn.Module:
    from spandrel.architectures.Swin2SR import Swin2SR

    torch.manual_seed(0)
    return Swin2SR(window_size=8, embed_dim=24, depths=[2, 2], num_heads=[2, 2], img_size=32,
                   upsampler="pixelshuffledirect")


def swinir(embed_dim: int = 24, heads: int = 2) -> torch.nn.Module:
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    return SwinIR(upscale=2, img_size=32, window_size=8, embed_dim=embed_dim, depths=[2, 2], num_heads=[heads, heads],
                  mlp_ratio=2, upsampler="nearest+conv", resi_connection="1conv")


def rgt() -> torch.nn.Module:
    from spandrel.architectures.RGT import RGT

    torch.manual_seed(0)
    return RGT(embed_dim=24, depth=[2, 2], num_heads=[2, 2], img_size=32)


# --- precision: the fp32 shift mask added to half-precision attention -----------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("build", [swin2sr, swinir, rgt], ids=["Swin2SR", "SwinIR", "RGT"])
def test_half_precision_attention_runs_at_an_odd_frame_size(tmp_path, build):
    path = save(build(), tmp_path / "model.safetensors")
    reference = load_chain_steps([ModelStep(path, precision="fp32")], device="cpu")
    halves = [name for name in precisions.supported_precisions(reference.steps[0]) if name != "fp32"]
    assert "bf16" in halves  # what `auto` gave these on a GPU, and what crashed there
    frame = torch.rand(ODD)
    for precision in halves:
        chain = load_chain_steps([ModelStep(path, precision=precision)], device="cpu")  # proven at load
        with torch.inference_mode():
            out, ref = chain(frame).float(), reference(frame)
        assert chain.runs[0].dtype == models.DTYPES[precision]
        assert (out - ref).abs().mean() < precisions.PROVE_TOLERANCE


@pytest.mark.unit
def test_auto_proves_what_a_gpu_would_run_and_falls_back_with_a_reason(tmp_path, caplog):
    from spandrel.architectures.FFTformer import FFTformer

    torch.manual_seed(0)
    swin = save(swin2sr(), tmp_path / "swin2sr.safetensors")
    fft = save(FFTformer(dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1), tmp_path / "fft.safetensors")
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        chain = load_chain_steps([ModelStep(swin), ModelStep(fft)], device="cpu", log=LOG, as_gpu=True)
    # Swin2SR claims bf16 and, with the mask fixed, runs it; FFTformer claims bf16 but casts inside its FFT
    assert [run.dtype for run in chain.runs] == [torch.bfloat16, torch.float32]
    assert [run.tf32 for run in chain.runs] == [False, True]  # an fp32 fallback keeps TF32's speed on a GPU
    assert "FFTformer does not run at bf16" in caplog.text and "using fp32" in caplog.text
    # the CPU itself runs fp32 on auto: its half precisions are emulated and slower
    assert precisions.candidate_dtypes(chain.steps[0], torch.device("cpu")) == [torch.float32]


@pytest.mark.unit
def test_an_explicit_precision_that_does_not_run_is_one_line_naming_model_step_device(tmp_path):
    from spandrel.architectures.FFTformer import FFTformer

    torch.manual_seed(0)
    fft = save(FFTformer(dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1), tmp_path / "fft.safetensors")
    with pytest.raises(RemasterError) as caught:
        load_chain_steps([ModelStep(fft, precision="bf16")], device="cpu")
    message = str(caught.value)
    assert "\n" not in message and "fft.safetensors" in message and "models[1]" in message
    assert "cpu" in message and "bf16" in message and "fp32" in message


@pytest.mark.unit
def test_start_up_check_records_the_proven_precision(tmp_path):
    path = save(swin2sr(), tmp_path / "swin2sr.safetensors")
    report = check_chain([ModelStep(path)])
    step = report.steps[0]
    assert step.proven_precision == "bf16" and step.proven_on == "cpu"


@pytest.mark.unit
def test_preview_runs_swinir_in_bf16_through_the_run_path(tmp_path):
    path = save(swinir(), tmp_path / "swinir.safetensors")
    settings = UpscaleSettings(models=(ModelStep(path, precision="bf16"),), device="cpu")
    chain = load_chain_steps(list(settings.models), device="cpu")
    frame = np.random.default_rng(0).integers(0, 256, (29, 37, 3), dtype=np.uint8)
    still = upscale_still(still_runner(chain, (58, 74), settings, LOG), frame)
    assert still.shape == (58, 74, 3) and still.dtype == np.uint8


# --- a one-channel model as the chain's last step --------------------------------------------------------


@pytest.mark.unit
def test_a_grey_output_model_last_in_the_chain_gives_rgb(tmp_path):
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    grey = save(Compact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2, upscale=2), tmp_path / "grey.safetensors")
    chain = load_chain([grey], device="cpu")
    frames = torch.randint(0, 256, (2, 29, 37, 3), dtype=torch.uint8)
    with torch.inference_mode():
        out = convert.process(chain, frames, (58, 74), 0, 16)  # the conversion clamps in place
        tiled = convert.process(chain, frames, (58, 74), 16, 4)
    assert out.shape == (2, 58, 74, 3)
    assert torch.equal(out[..., 0], out[..., 1]) and torch.equal(out[..., 1], out[..., 2])
    assert (out.int() - tiled.int()).abs().max() <= 1


# --- out of memory: in the conversions, from cuDNN/cuBLAS, and the planner's probes ----------------------


class ToyChain:
    """×1 chain of one real conv; `fail` raises the given error on the first `times` calls."""

    def __init__(self, fail: BaseException | None = None, times: int = 1):
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.steps = []
        self.device, self.dtype, self.scale, self.min_size = torch.device("cpu"), torch.float32, 1, 1
        self.fail, self.times = fail, times

    def __call__(self, batch, tile=0, overlap=16):
        if self.fail is not None and self.times > 0:
            self.times -= 1
            raise self.fail
        return self.conv(batch)


@pytest.mark.unit
@pytest.mark.parametrize("error", [RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
                                   RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"),
                                   torch.OutOfMemoryError("CUDA out of memory")], ids=["cudnn", "cublas", "torch"])
def test_library_allocation_failures_are_retried_as_out_of_memory(error):
    runner = Runner(ToyChain(error), (8, 8), batch_size=4, tile=0, overlap=0, log=LOG, label="t")
    frames = torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8)
    results = list(runner.run(frames, 4))
    assert sum(take for _, take in results) == 4 and runner.batch_size == 2


@pytest.mark.unit
def test_out_of_memory_in_the_conversion_back_is_retried():
    calls = []

    def finish(result):
        calls.append(len(result))
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (converting)")
        return convert.to_frames(result)

    runner = Runner(ToyChain(), (8, 8), batch_size=4, tile=0, overlap=0, log=LOG, label="t", finish=finish)
    frames = torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8)
    done = list(runner.run(frames, 4))
    assert calls == [4, 2, 2] and [take for _, take in done] == [2, 2] and done[0][0].dtype == torch.uint16


@pytest.mark.unit
def test_an_error_that_is_not_memory_is_one_line_naming_the_step(tmp_path):
    chain = load_chain([make_compact(tmp_path / "c.safetensors")], device="cpu")
    with pytest.raises(models.StepError) as caught, torch.inference_mode():
        chain(torch.rand(1, 2, 16, 16))  # two channels: the conv refuses them
    message = str(caught.value)
    assert "\n" not in message and "models[1] (RealESRGAN Compact) failed on cpu at fp32" in message


class ProbeKit:
    """A device's memory counters, for the planner's probe on the CPU."""

    def synchronize(self): ...
    def reset_peak(self): ...
    def empty_cache(self): ...
    def allocated(self): return 0
    def peak(self): return 1


@pytest.mark.unit
def test_a_failed_memory_probe_frees_its_activations_before_the_next():
    alive: list[weakref.ref] = []

    class Hungry(ToyChain):
        def __call__(self, batch, tile=0, overlap=16):
            activation = torch.empty(1 << 20)
            alive.append(weakref.ref(activation))
            raise torch.OutOfMemoryError("CUDA out of memory")

    frame_bytes = budget.measure_frame_bytes(Hungry(), ProbeKit(), (8, 8), (8, 8), 0, 0)
    gc.disable()  # only reference counting may free it: the handler must not keep the traceback alive
    try:
        assert frame_bytes is None and alive and alive[0]() is None
    finally:
        gc.enable()


# --- tiling never reaches a colourizer ------------------------------------------------------------------


@pytest.mark.unit
def test_a_chain_wide_tile_never_tiles_the_colourizer(tmp_path):
    pytest.importorskip("spandrel_extra_arches")
    from spandrel_extra_arches.architectures.DDColor import DDColor

    torch.manual_seed(0)
    ddcolor = save(DDColor(encoder_name="convnext-t", nf=512, num_output_channels=2, last_norm="Spectral",
                           num_queries=8, num_scales=3, dec_layers=1), tmp_path / "ddcolor.safetensors")
    doubler = make_compact(tmp_path / "x2.safetensors")
    chain = load_chain_steps([ModelStep(ddcolor), ModelStep(doubler)], device="cpu", tile=32, tile_overlap=8)
    assert [run.tile for run in chain.runs] == [0, 32]
    grey = torch.rand(1, 1, 48, 80).expand(-1, 3, -1, -1).contiguous()
    with torch.inference_mode():
        whole = chain(grey)
        tiled = chain(grey, tile=32, overlap=8)  # the out-of-memory fallback's tile
    torch.testing.assert_close(tiled, whole, atol=2e-3, rtol=1e-3)


# --- the SwinIR fast path: one mask for the model, fused-kernel head sizes -------------------------------


@pytest.mark.unit
def test_swinir_blocks_share_one_mask_per_size(tmp_path):
    chain = load_chain([save(swinir(), tmp_path / "s.safetensors")], device="cpu")
    with torch.inference_mode():
        chain(torch.rand(ODD))
    blocks = [m for m in chain.steps[0].model.modules() if getattr(m, "shift_size", 0) > 0]
    assert len(blocks) >= 2
    caches = {id(block._remaster_masks) for block in blocks}
    assert len(caches) == 1 and len(blocks[0]._remaster_masks) == 1


@pytest.mark.unit
def test_swinir_head_dimension_30_is_padded_and_equal(monkeypatch):
    model = swinir(embed_dim=60, heads=2).eval()  # head dimension 30, as SwinIR-M's 180/6
    fast = swinir(embed_dim=60, heads=2).eval()
    fast.load_state_dict(model.state_dict())
    fastpaths.patch_model(fast)
    seen = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append(q.shape[-1])
        return original(q, k, v, **kwargs)

    monkeypatch.setattr(fastpaths, "PAD_HEADS_ON", {"cpu"})
    monkeypatch.setattr(fastpaths.F, "scaled_dot_product_attention", spy)
    frames = torch.rand(1, 3, 24, 40)
    with torch.inference_mode():
        torch.testing.assert_close(fast(frames), model(frames), atol=1e-5, rtol=1e-4)
    assert seen and set(seen) == {32}


# --- float to the 10-bit encode ----------------------------------------------------------------------------


def ramp_shard(path: Path, width: int = 128, height: int = 8, frames: int = 2) -> Path:
    """A grey ramp of every 8-bit level from 64 to 127 (two pixels each), lossless: what the model sees."""
    pattern = (f"color=c=gray:s={width}x{height}:r=24,format=yuv420p,"
               f"geq=lum='64+floor(X/2)':cb=128:cr=128")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", pattern, "-frames:v", str(frames),
                    "-pix_fmt", "yuv420p", "-c:v", "ffv1", "-f", "matroska", str(path)], check=True)
    return path


def contrast_model(path: Path) -> Path:
    """A ×1 Compact computing 0.7·x + 0.1 (identity body, PReLU slopes 1, last conv −0.3·x + 0.1, plus x):
    a grade that puts every 8-bit level of its input between two 8-bit levels of its output."""
    from spandrel.architectures.Compact import Compact

    model = Compact(num_feat=3, num_conv=1, upscale=1)
    identity = torch.zeros(3, 3, 3, 3)
    for channel in range(3):
        identity[channel, channel, 1, 1] = 1
    with torch.no_grad():
        for conv, weight, bias in ((model.body[0], identity, 0.0), (model.body[2], identity, 0.0),
                                   (model.body[4], -0.3 * identity, 0.1)):
            conv.weight.copy_(weight)
            conv.bias.fill_(bias)
        model.body[1].weight.fill_(1)
        model.body[3].weight.fill_(1)
    return save(model, path)


def luma10(path: Path) -> np.ndarray:
    """The master's 10-bit luma plane(s), frames × h × w."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    width, height = (int(v) for v in probe.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
                          "yuv420p10le", "pipe:1"], capture_output=True, check=True).stdout
    frame = width * height * 3 // 2
    data = np.frombuffer(raw, dtype="<u2").reshape(-1, frame)
    return data[:, :width * height].reshape(-1, height, width).astype(np.float64)


def residual_rms(master: np.ndarray, ideal: np.ndarray) -> float:
    """RMS (10-bit codes) of the master's luma around its best linear fit to the ideal luma: what is left
    is rounding (banding), not swscale's range mapping."""
    gain, offset = np.polyfit(ideal.ravel(), master.ravel(), 1)
    return float(np.sqrt(((master - (gain * ideal + offset)) ** 2).mean()))


def test_the_models_float_output_reaches_the_10bit_master_unrounded(tmp_path):
    """A model's output between 8-bit levels reaches the 10-bit master; an 8-bit hand-off rounded it away.

    Both masters go through the same encoder (`commands.encoder_command`): one from the engine, one from the
    same float frames rounded to 8 bits first, as the engine handed them over before issue 14.
    """
    shard = ramp_shard(tmp_path / "ramp.mkv")
    model = contrast_model(tmp_path / "contrast.safetensors")
    settings = UpscaleSettings(models=(ModelStep(model),), device="cpu", batch_size=1)
    out = tmp_path / "out.mkv"
    engine.upscale_file(shard, out, expected_frames=2, fps="24", matrix="bt709", settings=settings, label="ramp",
                        log=LOG)
    # the float the model chain gave, from the very frames the engine decoded
    raw = subprocess.run(commands.decoder_command(shard, "bt709"), capture_output=True, check=True).stdout
    frames = torch.from_numpy(np.frombuffer(raw, np.uint8).reshape(-1, 8, 128, 3).copy())
    chain = load_chain([model], device="cpu")
    with torch.inference_mode():
        ideal = convert.run_chain(chain, convert.to_model(frames, torch.float32), (8, 128), 0, 16).clamp(0, 1)
    rounded = (ideal * 255).round() / 255  # 8-bit levels
    eight = tmp_path / "eight.mkv"
    subprocess.run(commands.encoder_command(eight, 128, 8, "24", form=settings.form), check=True,
                   input=rgb_to_yuv420p10(rounded).numpy().astype("<u2").tobytes())
    ideal_y = 64 + 876 * ideal.mean(dim=1).numpy().astype(np.float64)  # grey: R = G = B
    inner = (slice(None), slice(None), slice(None))
    rms16 = residual_rms(luma10(out)[inner], ideal_y[inner])
    rms8 = residual_rms(luma10(eight)[inner], ideal_y[inner])
    LOG.info("banding: 16-bit hand-off %.3f codes RMS, 8-bit hand-off %.3f codes RMS", rms16, rms8)
    print(f"banding_rms_10bit_codes: 16-bit {rms16:.3f}, 8-bit {rms8:.3f}")
    # 10-bit rounding alone is 1/sqrt(12) = 0.29 codes RMS; 8-bit rounding adds (876/255)/sqrt(12) = 0.99
    assert rms16 < 0.45, rms16
    assert rms8 > 0.8 and rms8 > 2.5 * rms16, (rms8, rms16)


# --- batches: some architectures' code assumes one frame ---------------------------------------------------


@pytest.mark.unit
def test_a_model_that_mishandles_batches_runs_frames_one_at_a_time(tmp_path, caplog):
    from spandrel.architectures.SeemoRe import SeemoRe

    torch.manual_seed(0)
    path = save(SeemoRe(scale=2, num_experts=2, num_layers=1, embedding_dim=16), tmp_path / "seemore.safetensors")
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        chain = load_chain_steps([ModelStep(path)], device="cpu", log=LOG)
    assert chain.runs[0].batched is False and "one at a time" in caplog.text
    frames = torch.rand(3, 3, 29, 37)
    with torch.inference_mode():
        together = chain(frames)
        alone = torch.cat([chain(frame) for frame in frames.split(1)])
    torch.testing.assert_close(together, alone)


@pytest.mark.unit
def test_a_device_error_mid_shard_is_one_line_and_keeps_no_file(tmp_path):
    shard = ramp_shard(tmp_path / "ramp.mkv")
    chain = ToyChain(RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors..."))
    settings = UpscaleSettings(models=(ModelStep(Path("toy.safetensors")),), device="cpu", batch_size=1)
    with pytest.raises(RemasterError) as caught:
        engine.upscale_file(shard, tmp_path / "out.mkv", expected_frames=2, fps="24", matrix="bt709",
                            settings=settings, label="shard 3", log=LOG, chain=chain)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("shard 3:") and "on cpu failed: CUDA error" in message
    assert not (tmp_path / "out.mkv").exists()


# --- inf/NaN from a half precision on real frames (issue 22) ------------------------------------------------


def nan_at_half_precision_on_bright_frames(descriptor) -> None:
    """Make a loaded spandrel model give NaN, at half precision only, on bright batches: an fp16 overflow
    that the small proving frame did not show. Its fp32 weights (read again from its file) are clean."""
    model = descriptor.model
    original = model.forward

    def forward(x):
        out = original(x)
        if x.dtype != torch.float32 and float(x.float().mean()) > 0.5:
            out = out.clone()
            out[:, :, ::3] = float("nan")
        return out

    model.forward = forward


@pytest.mark.unit
def test_nan_from_a_half_precision_batch_is_redone_at_fp32_and_logged(tmp_path, caplog):
    path = make_compact(tmp_path / "c.safetensors")
    chain = load_chain_steps([ModelStep(path, precision="fp16")], device="cpu", log=LOG, as_gpu=True)
    reference = load_chain([path], device="cpu")
    assert chain.runs[0].dtype == torch.float16
    nan_at_half_precision_on_bright_frames(chain.steps[0])
    torch.manual_seed(1)
    batches = [torch.rand(2, 3, 24, 32) * 0.4 + 0.6 * (number % 2) for number in range(4)]  # dark, bright, ...
    with caplog.at_level(logging.WARNING, logger=LOG.name), torch.inference_mode():
        for frames in batches:
            out = chain(frames)
            assert out.dtype == torch.float32 and torch.isfinite(out).all()
            # fp16, or the fp32 redo: never a black (NaN → 0) pixel
            assert (out - reference(frames)).abs().max() < 0.01
    assert chain.recovered == 2 and list(chain.fallbacks) == [1]
    assert "gave inf or NaN at fp16" in caplog.text and "redoing it at fp32" in caplog.text


@pytest.mark.unit
def test_nan_at_fp32_is_a_one_line_error_not_black_frames(tmp_path):
    path = make_compact(tmp_path / "c.safetensors")
    chain = load_chain_steps([ModelStep(path)], device="cpu", log=LOG)
    original = chain.steps[0].model.forward
    chain.steps[0].model.forward = lambda x: original(x) * float("nan")
    with pytest.raises(RemasterError, match=r"models\[1\] \(RealESRGAN Compact\) gives inf or NaN at fp32") as caught:
        with torch.inference_mode():
            chain(torch.rand(1, 3, 24, 32))
    assert "\n" not in str(caught.value)


@pytest.mark.unit
def test_a_bf16_step_does_not_round_the_chains_output(tmp_path):
    """bf16 first, a finer step after it: the chain hands the encoder float32, not the first step's bf16
    (8 mantissa bits: 1/256 steps in [0.5, 1), the banding the 16-bit hand-off removes)."""
    first = make_compact(tmp_path / "c.safetensors")
    grade = contrast_model(tmp_path / "contrast.safetensors")
    chain = load_chain_steps([ModelStep(first, precision="bf16"), ModelStep(grade, precision="fp32")], device="cpu",
                             log=LOG, as_gpu=True)
    assert [run.dtype for run in chain.runs] == [torch.bfloat16, torch.float32]
    frames = (torch.arange(48 * 64, dtype=torch.uint8).reshape(1, 48, 64, 1) % 251).expand(1, 48, 64, 3).contiguous()
    with torch.inference_mode():
        out = chain(convert.to_model(frames, chain.dtype))
        codes = convert.process(chain, frames, (96, 128), 0, 16).numpy().astype(np.int64)
    assert out.dtype == torch.float32
    bright = out[(out >= 0.5) & (out < 1)]
    assert bright.numel() > 100
    off_grid = ((bright * 256) - (bright * 256).round()).abs()
    assert float(off_grid.max()) > 0.05  # values between bf16's 1/256 steps survive
    levels = codes[codes >= 32768] / 65535 * 256  # the 16-bit codes sent to the encoder, in bf16 steps
    assert np.abs(levels - levels.round()).max() > 0.05


# --- SwinIR's fast path at HD sizes and in batches (issue 22) ---------------------------------------------


def tiny_swinir(heads: int = 6) -> torch.nn.Module:
    """SwinIR with 4-pixel windows and 6 heads: windows × heads pass CUDA's 65,535 at 480×368, cheaply."""
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    return SwinIR(upscale=1, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[heads], mlp_ratio=1,
                  upsampler="", resi_connection="1conv").eval()


def record_attention(monkeypatch, layout=lambda out: out) -> list[tuple[int, int]]:
    """Every SDPA call's (batch, heads) axes; `layout` may re-lay the output out as a CUDA kernel does."""
    seen: list[tuple[int, int]] = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append(tuple(q.shape[:2]))
        return layout(original(q, k, v, **kwargs))

    monkeypatch.setattr(fastpaths.F, "scaled_dot_product_attention", spy)
    return seen


@pytest.mark.unit
def test_swinir_attention_stays_within_the_cuda_grid_at_hd_sizes(monkeypatch):
    """480×368 in 4-pixel windows is 11,040 windows: × 6 heads = 66,240, over CUDA's grid.y of 65,535
    ("invalid configuration argument" on a GPU; 1280×960 does this to SwinIR-M). Calls are chunked."""
    model = tiny_swinir()
    fast = tiny_swinir()
    fastpaths.patch_model(fast)
    seen = record_attention(monkeypatch)
    frames = torch.rand(1, 3, 368, 480)
    with torch.inference_mode():
        torch.testing.assert_close(fast(frames), model(frames), atol=1e-5, rtol=1e-4)
    assert max(heads for _, heads in seen) <= fastpaths.GRID_MOST and max(batch for batch, _ in seen) <= fastpaths.GRID_MOST
    assert sum(batch * heads for batch, heads in seen) == 11040 * 6 * 2  # both blocks, every window and head


@pytest.mark.unit
def test_swinir_attention_chunks_on_both_axes_and_gives_the_same(monkeypatch):
    model = tiny_swinir(heads=2)
    fast = tiny_swinir(heads=2)
    fastpaths.patch_model(fast)
    monkeypatch.setattr(fastpaths, "GRID_MOST", 7)  # frames × windows and windows × heads both over it
    seen = record_attention(monkeypatch)
    frames = torch.rand(3, 3, 20, 24)
    with torch.inference_mode():
        torch.testing.assert_close(fast(frames), model(frames), atol=1e-5, rtol=1e-4)
    assert seen and all(batch <= 7 and heads <= 7 for batch, heads in seen)
    assert all(heads % 2 == 0 for _, heads in seen)  # a call never splits one window's heads


@pytest.mark.unit
def test_swinir_runs_batches_when_attention_output_is_laid_out_transposed(monkeypatch, tmp_path):
    """CUDA's SDPA kernels return (B, H, N, d) laid out as (B, N, H, d): `.view` then refused batches > 1 and
    prove_batches marked SwinIR unbatched (frames one at a time)."""
    record_attention(monkeypatch, layout=lambda out: out.transpose(1, 2).contiguous().transpose(1, 2))
    path = save(tiny_swinir(), tmp_path / "swinir.safetensors")
    chain = load_chain_steps([ModelStep(path)], device="cpu", log=LOG)
    assert chain.runs[0].batched is True
    frames = torch.rand(2, 3, 29, 37)
    with torch.inference_mode():
        together = chain(frames)
        alone = torch.cat([chain(frame) for frame in frames.split(1)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.unit
def test_events_the_reader_and_writer_wait_on_are_blocking():
    """A thread waiting on a non-blocking CUDA event spins on a core; a blocking one sleeps."""
    from types import SimpleNamespace

    from remaster.models.devices import Device

    made = []

    class Event:
        def __init__(self, **options):
            made.append(options)

        def record(self, stream):
            pass

    kit = Device(torch.device("cpu"))
    kit.kind, kit.has_streams = "cuda", True
    kit.backend = SimpleNamespace(Event=Event, current_stream=lambda device: "stream")
    assert kit.record() is not None
    assert made == [{"blocking": True}]


# --- several jobs per GPU (issue 22) -------------------------------------------------------------------------


@pytest.mark.unit
def test_gpu_jobs_per_device_lets_n_jobs_claim_each_gpu_spread_first(tmp_path):
    from remaster.models import claims

    keys = ["cuda-GPU-a", "cuda-GPU-b"]
    held = [claims.claim(keys, tmp_path, wait=0, per_device=2) for _ in range(4)]
    try:
        assert [claim.index for claim in held] == [0, 1, 0, 1]  # both GPUs busy before either is shared
        with pytest.raises(RemasterError, match=r"2 job\(s\) each.*--resources gpu=4 or fewer"):
            claims.claim(keys, tmp_path, wait=0, per_device=2)
        held.pop(2).release()
        assert claims.claim(keys, tmp_path, wait=0, per_device=2).index == 0
    finally:
        for claim in held:
            claim.release()
    one = claims.claim(keys, tmp_path / "one", wait=0)
    assert one.path.name == "cuda-GPU-a.lock"  # the default, one job per GPU, keeps its lock names


@pytest.mark.unit
def test_gpu_jobs_per_device_is_a_run_wide_key():
    from remaster.run.settings import _schema, from_config
    from remaster.run.sheet import run_keys

    base = {"source": "disc.vob", "output": "out.mkv", "models": ["m.safetensors"]}
    assert "gpu_jobs_per_device" in run_keys(_schema())  # not a sheet column: jobs on one GPU belong to the run
    assert from_config(base).upscale.jobs_per_device == 1
    settings = from_config({**base, "gpu_jobs_per_device": 3})
    assert settings.upscale.jobs_per_device == 3 and settings.interpolate.jobs_per_device == 3


@pytest.mark.unit
def test_tf32_for_an_fp32_fallback_is_set_and_restored_readably():
    from remaster.models.loading import tf32_matmuls

    before = torch.backends.cuda.matmul.allow_tf32
    with tf32_matmuls(torch.device("cuda", 0), True):
        assert torch.backends.cuda.matmul.allow_tf32 is True  # readable inside: library code reads this flag
    assert torch.backends.cuda.matmul.allow_tf32 == before
    with tf32_matmuls(torch.device("cpu"), True):
        assert torch.backends.cuda.matmul.allow_tf32 == before  # the CPU has no TF32
