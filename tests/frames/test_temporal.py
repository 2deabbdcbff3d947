"""The temporal-stability stage: TemporalFix equal to the original, its windows at the title's ends, shards that
join seamlessly, its run path (out-of-memory recovery), its settings."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from remaster.frames import engine, shards, temporal
from remaster.frames.temporal import TemporalChain, TemporalStage, mirror, window_indices
from remaster.frames.yuv import frame_words, rgb_to_yuv420p10
from remaster.models.temporalfix import RADIUS, TemporalFix, load_temporalfix
from remaster.run import records
from remaster.run.errors import RemasterError
from remaster.run.settings import ModelStep, TemporalSettings, UpscaleSettings, from_config
from support.workflow import REPO

WEIGHTS = REPO / "resources" / "models" / "temporalfix"
REFERENCE = REPO / "tests" / "data" / "temporalfix_reference.safetensors"
LOG = logging.getLogger("test_temporal")


def weights() -> Path:
    if not (WEIGHTS / "temporalfix_s2.safetensors").is_file():
        pytest.fail(f"{WEIGHTS}: TemporalFix weights missing; run setup.sh (python -m remaster.models.bundled)")
    return WEIGHTS


@pytest.mark.unit
@pytest.mark.parametrize(("name", "strength"), [("s2", 2.0), ("s1_5", 1.5)])
def test_network_equals_the_original(name, strength):
    """The port, on the bundled safetensors, gives the original code's fp32 output (made by
    tests/data/make_temporalfix_reference.py from vs-temporalfix 2.4.1's own module and .pth): bit for bit
    with the thread count that made it, within a few float32 ulps with another (oneDNN splits its sums by
    thread); a wrong weight, warp or blend differs by orders of magnitude more."""
    reference = load_file(str(REFERENCE))
    network = load_temporalfix(weights(), strength)
    with torch.inference_mode():
        out = network(reference["input"])
    assert float((out - reference[name]).abs().max()) <= 2e-6
    # and it does something: the centre frame is changed, by less than the noise it averages away
    change = (out - reference["input"][:, RADIUS]).abs().mean()
    assert 0.005 < change < 0.05


@pytest.mark.unit
def test_plugin_windows_at_the_ends_are_mirrored():
    """`mirror` gives vs-temporalfix's gen_shifts windows (reflection without repeating the edge frame)."""
    for length in range(4, 12):
        frames = list(range(length))
        padded = frames[1:RADIUS + 1][::-1] + frames + frames[-2:-RADIUS - 2:-1]  # as gen_shifts pads the clip
        for frame in frames:
            assert window_indices(frame, length) == padded[frame:frame + 2 * RADIUS + 1]
    assert [mirror(i, 1) for i in (-3, 0, 3)] == [0, 0, 0]  # a one-frame title: its window is itself
    assert window_indices(0, 2) == [1, 0, 1, 0, 1, 0, 1]


@pytest.mark.unit
@pytest.mark.parametrize(("total", "shard_frames"), [(24, 10), (24, 7), (9, 2), (5, 1), (3, 2), (7, 7)])
def test_every_frame_sees_the_same_window_in_a_shard_as_in_the_whole_title(total, shard_frames):
    """The context arithmetic: a shard reads `read_range`, and each of its frames' windows, taken among the
    frames read, are the frames the window holds in the whole title (mirrored only at the title's ends)."""
    for k in range(records.shard_count(total, shard_frames)):
        start, end = records.shard_bounds(total, shard_frames, k)
        first, last = shards.read_range(start, end, total, RADIUS)
        assert first == max(0, start - RADIUS) and last == min(total, end + RADIUS)
        for frame in range(start, end):
            local = [first + index for index in window_indices(frame - first, last - first)]
            assert local == window_indices(frame, total), (start, end, frame)


@pytest.mark.unit
def test_read_range_refuses_a_shard_outside_the_title():
    with pytest.raises(RemasterError, match="not within"):
        shards.read_range(5, 12, 10, 3)


def panned(frames: int, height: int, width: int) -> torch.Tensor:
    """A textured picture panned 0.7 pixel a frame, with noise that changes every frame (a per-frame upscaler's
    shimmer); it can leave [0, 1]: the stage clamps, as the plugin does."""
    generator = torch.Generator().manual_seed(3)
    ys, xs = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    return torch.stack([torch.stack([0.5 + 0.4 * torch.sin((xs + 0.7 * t) / 4 + c) * torch.cos(ys / 5)
                                     for c in range(3)]) + 0.05 * torch.randn(3, height, width, generator=generator)
                        for t in range(frames)])


def _stage(network: TemporalChain, *, before: int, after: int, frames: int, size=(32, 48)) -> TemporalStage:
    return TemporalStage(network, size, before=before, after=after, frames=frames, log=LOG, label="test")


def _run_stage(stage: TemporalStage, upscaled: torch.Tensor, batch: int) -> list[torch.Tensor]:
    out = []
    for start in range(0, len(upscaled), batch):
        part = upscaled[start:start + batch]
        out += [frame for frame, _ in stage.feed(part, len(part))]
    out += [frame for frame, _ in stage.flush()]
    return out


@pytest.mark.unit
def test_stage_in_shards_equals_one_long_stage():
    """Shards reading their context frames give the frames one long shard gives, at the boundaries too; without
    the context (each shard alone, mirrored at its own edges) the boundary frames differ."""
    title = panned(11, 32, 48)
    network = TemporalChain(load_temporalfix(weights(), 1.5), torch.device("cpu"), torch.float32)
    whole = _run_stage(_stage(network, before=0, after=0, frames=11), title, batch=4)
    assert len(whole) == 11
    pieces, alone = [], []
    for start, end in ((0, 4), (4, 8), (8, 11)):
        first, last = shards.read_range(start, end, 11, RADIUS)
        stage = _stage(network, before=start - first, after=last - end, frames=end - start)
        pieces += _run_stage(stage, title[first:last], batch=3)
        alone += _run_stage(_stage(network, before=0, after=0, frames=end - start), title[start:end], batch=2)
    assert all(torch.equal(a, b) for a, b in zip(pieces, whole, strict=True))
    assert not torch.equal(alone[3], whole[3]) and not torch.equal(alone[4], whole[4])


@pytest.mark.unit
def test_stage_refuses_missing_or_extra_frames():
    network = TemporalChain(load_temporalfix(weights(), 1), torch.device("cpu"), torch.float32)
    frames = torch.rand(5, 3, 32, 48)
    stage = _stage(network, before=1, after=1, frames=4)
    list(stage.feed(frames[:4], 4))
    with pytest.raises(RemasterError, match="got 4 of the 6 frames"):
        list(stage.flush())
    stage = _stage(network, before=0, after=0, frames=4)
    with pytest.raises(RemasterError, match="more than the 4 frames"):
        list(stage.feed(frames, 5))


@pytest.mark.unit
def test_stage_gives_the_writers_yuv_where_the_engine_asks_for_it():
    """On a GPU the engine hands the stage `rgb_to_yuv420p10`: its output is then the writer's 10-bit words,
    the same values the float output would give."""
    network = TemporalChain(load_temporalfix(weights(), 1), torch.device("cpu"), torch.float32)
    frames = panned(4, 32, 48)
    floats = _run_stage(_stage(network, before=0, after=0, frames=4), frames, batch=4)
    stage = TemporalStage(network, (32, 48), before=0, after=0, frames=4, log=LOG, label="test",
                          finish=rgb_to_yuv420p10)
    words = _run_stage(stage, frames, batch=4)
    assert all(w.dtype == torch.uint16 and w.shape == (1, frame_words(48, 32)) for w in words)
    assert all(torch.equal(w, rgb_to_yuv420p10(f)) for w, f in zip(words, floats, strict=True))


class TightMemory(torch.nn.Module):
    """TemporalFix that runs out of memory on inputs wider than `most_width` (as a GPU would on a big frame)."""

    def __init__(self, network: TemporalFix, most_width: int):
        super().__init__()
        self.network, self.most_width, self.failures = network, most_width, 0

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if windows.shape[-1] > self.most_width:
            self.failures += 1
            raise torch.OutOfMemoryError("fake: out of memory")
        return self.network(windows)


@pytest.mark.unit
def test_out_of_memory_tiles_the_frame_and_redoes_it():
    """The stage runs through the engine's Runner: out of memory halves the tile and the frame is redone; the
    tiles overlap by enough that the result stays close to the whole frame's."""
    network = load_temporalfix(weights(), 2)
    frames = panned(7, 96, 256)
    whole = _run_stage(_stage(TemporalChain(network, torch.device("cpu"), torch.float32), before=3, after=3, frames=1,
                              size=(96, 256)), frames, batch=7)
    tight = TightMemory(network, most_width=200)
    stage = _stage(TemporalChain(tight, torch.device("cpu"), torch.float32), before=3, after=3, frames=1,
                   size=(96, 256))
    tiled = _run_stage(stage, frames, batch=7)
    assert tight.failures == 1 and stage.runner.tile == 128
    assert len(tiled) == 1 and tiled[0].shape == whole[0].shape
    assert float((tiled[0] - whole[0]).abs().mean()) < 0.01


@pytest.mark.unit
def test_settings_turn_the_stage_on_and_make_shards_stale():
    base = {"source": "x", "output": "out.mkv", "models": ["m.safetensors"]}
    off = from_config(base).upscale
    assert off.temporal == TemporalSettings(strength=0.0) and off.temporal.context == 0
    assert off.staleness_key() == {"models": ["m.safetensors"], "scale": None}  # unchanged: no rerun
    on = from_config({**base, "temporal": {"strength": 1.5}}).upscale
    assert on.temporal.context == RADIUS and on.staleness_key()["temporal"]["strength"] == 1.5
    assert on.temporal.files() == [f"resources/models/temporalfix/temporalfix_s{n}.safetensors" for n in (1, 2)]
    assert temporal.for_shard(off, None, 4, None, (8, 8), LOG, "x") is None


# --- through the engine: the shard job's read plan and upscale, two shards against one ---------------------

FRAMES, WIDTH, HEIGHT = 12, 64, 48


@pytest.fixture(scope="module")
def title(tmp_path_factory) -> Path:
    """A 12-frame intra-only FFV1 'prepared title' whose picture moves every frame."""
    path = tmp_path_factory.mktemp("title") / "prepared.mkv"
    pattern = (f"color=c=gray:s={WIDTH}x{HEIGHT}:r=25,format=yuv420p,"
               "geq=lum='128+90*sin((X+2*N)/5)*cos(Y/6)':cb='128+40*sin((Y+N)/7)':cr='128+40*cos(X/9)'")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", pattern, "-frames:v", str(FRAMES),
                    "-c:v", "ffv1", "-f", "matroska", str(path)], check=True)
    return path


def _decoded(path: Path, width: int, height: int) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
                          "rgb48le", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint16).reshape(-1, height, width, 3)


def test_shards_with_the_stage_join_like_one_long_shard(tmp_path, title, tiny_model):
    """The shard job (read plan with context → model chain → TemporalFix → lossless store): two shards give
    every frame one long shard gives, the two at their boundary included."""
    settings = UpscaleSettings(models=(ModelStep(tiny_model),), device="cpu", form="lossless",
                               temporal=TemporalSettings(strength=2.0, weights=weights()))

    def shard_job(start: int, end: int, name: str) -> np.ndarray:
        cut = shards.plan_cut(title, start, end, "25", LOG, context=settings.temporal.context, total=FRAMES)
        out = tmp_path / f"{name}.mkv"
        result = engine.upscale_file(title, out, expected_frames=end - start, fps="25", matrix="bt601",
                                     settings=settings, label=name, log=LOG, threads=1, cut=cut)
        assert result.frames == end - start
        return _decoded(out, 2 * WIDTH, 2 * HEIGHT)

    long = shard_job(0, FRAMES, "long")
    first, second = shard_job(0, 5, "first"), shard_job(5, FRAMES, "second")
    assert len(long) == FRAMES and len(first) == 5 and len(second) == 7
    assert np.array_equal(np.concatenate([first, second]), long)


# --- end to end: the workflow with the stage on ----------------------------------------------------------


def test_workflow_with_the_stage_on(tmp_path, demo_disc, tiny_model):
    """A 10-frame file in shards of 4, 4 and 2 with temporal.strength 2: every frame reaches the master, each
    shard job ran TemporalFix on its frames and its neighbours', and the title's ends were mirrored."""
    import shutil

    from support.workflow import frame_count, snakemake, write_config

    clip = tmp_path / "clip.vob"
    shutil.copy(demo_disc / "VTS_02_1.VOB", clip)
    write_config(tmp_path, source=str(clip), output="film.mkv", models=[str(tiny_model)], shard_frames=4, scale=0.5,
                 encoder={"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"},
                 temporal={"strength": 2, "weights": str(weights())})
    snakemake(tmp_path, "--cores", "2")
    assert frame_count(tmp_path / "film.mkv") == frame_count(clip) == 10
    logs = {path.stem: path.read_text() for path in (tmp_path / "logs").rglob("upscale_shard/*.log")}
    assert len(logs) == 3 and all("TemporalFix strength 2" in text for text in logs.values()), logs
    reads = "".join(path.read_text() for path in (tmp_path / "logs").rglob("extract_shard/*.log"))
    # frames 0-3 read 0-6, frames 4-7 read 1-9 (the title's last frame: 9), frames 8-9 read 5-9
    assert "frames 0-6:" in reads and "frames 1-9:" in reads and "frames 5-9:" in reads, reads
