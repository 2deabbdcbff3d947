"""Frame interpolation: the IFNet 4.6 layout, the shard schedule (originals untouched, cuts held, duplicates
dropped), and the workflow end to end at twice the frame rate with the audio bit for bit."""

from __future__ import annotations

import json
import logging
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from remaster.frames import interpolate as interp
from remaster.models.rife import IFNet, expected_keys, load_ifnet, warp
from remaster.run.errors import RemasterError
from remaster.run.settings import InterpolateSettings, from_config
from support.rife import SMALL, make_ifnet
from support.workflow import ffprobe, frame_count, snakemake, stream_bytes, write_config

WIDTH, HEIGHT = 96, 64
LOG = logging.getLogger("test_interpolate")


@pytest.fixture(scope="module")
def ifnet_file(tmp_path_factory) -> Path:
    return make_ifnet(tmp_path_factory.mktemp("rife") / "rife46 random.safetensors")


def picture(seed: int, shift: int = 0, tone: tuple[int, int] = (200, 800)) -> np.ndarray:
    """A 10-bit 4:2:0 frame (yuv420p10le words): random blocks of luma in `tone`, moved `shift` pixels right."""
    rng = np.random.default_rng(seed)
    # luma and chroma chosen inside the RGB gamut, so the colour round trip is exact to a code
    y = rng.integers(*tone, (HEIGHT // 8, WIDTH // 8 + 2)).repeat(8, 0).repeat(8, 1)
    y = np.roll(y, shift, axis=1)[:, :WIDTH]
    u = np.full((HEIGHT // 2, WIDTH // 2), 512 + 30 * (seed % 3 - 1))
    v = np.full((HEIGHT // 2, WIDTH // 2), 512 - 30 * (seed % 2))
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).astype(np.uint16)


def write_clip(path: Path, frames: list[np.ndarray], fps: str = "30000/1001") -> Path:
    """An FFV1 yuv420p10le shard like upscale_shard's, holding exactly `frames`."""
    proc = subprocess.run(interp.encoder_command(path, WIDTH, HEIGHT, fps), input=b"".join(f.tobytes() for f in frames),
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return path


def read_clip(path: Path) -> list[np.ndarray]:
    return list(interp._frames(path, interp.frame_words(WIDTH, HEIGHT)))


def rate(path: Path) -> float:
    """The video's frame rate as ffprobe reads it; Matroska keeps millisecond timestamps, so 60000/1001 reads
    as a close fraction (19001/317): compared to a thousandth of a frame per second."""
    return float(Fraction(ffprobe(path, "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate", "-of",
                                  "csv=p=0").strip()))


def settings(model: Path, **options) -> InterpolateSettings:
    return InterpolateSettings(**{"factor": 2, "model": model, "device": "cpu", **options})


# --- the network ---------------------------------------------------------------------------------------------

def test_layout_is_practical_rife_46():
    keys = expected_keys()
    assert len(keys) == 4 * (4 + 8 * 3 + 2)  # conv0 (2 convs), 8 ResConvs (conv, beta), lastconv
    assert keys["block0.conv0.0.0.weight"] == (96, 7, 3, 3)  # img0, img1, timestep
    assert keys["block1.conv0.0.0.weight"] == (64, 12, 3, 3)  # + warped frames, mask, flow
    assert keys["block0.convblock.7.beta"] == (1, 192, 1, 1)
    assert keys["block2.convblock.0.conv.weight"] == (96, 96, 3, 3)
    assert keys["block3.lastconv.0.weight"] == (64, 24, 4, 4)  # ConvTranspose2d(c, 4·6) + PixelShuffle(2)
    assert sum(np.prod(shape) for shape in keys.values()) == 5_306_256


def test_flownet_pkl_and_safetensors_load_the_same(tmp_path):
    pkl = make_ifnet(tmp_path / "flownet.pkl", prefix="module.")  # as Practical-RIFE's train_log/flownet.pkl
    safe = make_ifnet(tmp_path / "flownet.safetensors")
    a, b = torch.rand(1, 3, 40, 72), torch.rand(1, 3, 40, 72)
    with torch.inference_mode():
        assert torch.equal(load_ifnet(pkl)(a, b, 0.5), load_ifnet(safe)(a, b, 0.5))
    state = torch.load(pkl, weights_only=True)
    state.pop("module.block2.convblock.3.beta")
    torch.save(state, tmp_path / "broken.pkl")
    with pytest.raises(RemasterError, match="not a RIFE IFNet 4.5/4.6 state dict.*lacks block2.convblock.3.beta"):
        load_ifnet(tmp_path / "broken.pkl")
    torch.save({**torch.load(pkl, weights_only=True), "module.encode.0.weight": torch.zeros(16, 3, 3, 3)},
               tmp_path / "v47.pkl")
    with pytest.raises(RemasterError, match="unexpected encode.0.weight"):
        load_ifnet(tmp_path / "v47.pkl")
    # a pickle that would run code is refused by the one weights-only reader every model goes through
    torch.save({"weights": torch.zeros(1), "hook": Path("x")}, tmp_path / "code.pkl")
    with pytest.raises(RemasterError, match=r"code.pkl: cannot be read as model weights: it is not a PyTorch "
                                            r"checkpoint of plain tensors") as error:
        load_ifnet(tmp_path / "code.pkl")
    assert "weights_only=False" not in str(error.value)


def test_warp_and_blend():
    image = torch.rand(1, 3, 8, 10)
    assert torch.allclose(warp(image, torch.zeros(1, 2, 8, 10)), image, atol=1e-6)
    shifted = warp(image, torch.ones(1, 2, 8, 10) * torch.tensor([1.0, 0.0]).view(1, 2, 1, 1))
    assert torch.allclose(shifted[..., :-1], image[..., 1:], atol=1e-5)  # x + 1: the pixel to the right
    # no flow and no mask (last layers zeroed): the frame in between is the plain average of the two
    model = IFNet(SMALL).eval()
    for block in model.blocks:
        torch.nn.init.zeros_(block.lastconv[0].weight)
        torch.nn.init.zeros_(block.lastconv[0].bias)
    a, b = torch.rand(2, 3, 40, 72), torch.rand(2, 3, 40, 72)
    with torch.inference_mode():
        out = model(a, b, torch.tensor([0.25, 0.75]))
    assert out.shape == a.shape and torch.allclose(out, (a + b) / 2, atol=1e-5)


def test_colour_round_trip_is_within_a_code():
    frames = torch.from_numpy(np.stack([picture(1), picture(2, 3)]))
    back = interp.rgb_to_yuv(interp.yuv_to_rgb(frames, WIDTH, HEIGHT)).numpy().astype(int)
    assert np.abs(back - frames.numpy().astype(int)).max() <= 2


# --- the schedule --------------------------------------------------------------------------------------------

def test_slots():
    assert interp.slots_between(3, 4, 2) == [interp.Slot(3), interp.Slot(3, 4, 0.5)]
    assert [s.t for s in interp.slots_between(0, 1, 4)] == [0, 0.25, 0.5, 0.75]
    assert interp.slots_between(3, 4, 2, cut=True) == [interp.Slot(3), interp.Slot(3)]  # a cut: held, not blended
    assert interp.slots_between(5, None, 3) == [interp.Slot(5)] * 3  # the title's last frame
    # a duplicate dropped between key frames 0 and 2: output times 0, ½, 1, 1½ all fall between them
    assert [(s.first, s.second, s.t) for s in interp.slots_between(0, 2, 2)] == [
        (0, None, 0.0), (0, 2, 0.25), (0, 2, 0.5), (0, 2, 0.75)]
    assert interp.output_fps("30000/1001", 2) == "60000/1001" and interp.output_fps("25", 3) == "75/1"


def test_shard_doubles_its_frames_keeps_originals_and_holds_cuts(tmp_path, ifnet_file):
    # frames 0–5 one picture panning, 6–9 a darker one: a hard cut between 5 and 6; the next shard starts at 10
    night = (80, 400)
    source = [picture(1, 2 * k) for k in range(6)] + [picture(7, k, night) for k in range(4)]
    shard = write_clip(tmp_path / "0000.mkv", source)
    following = write_clip(tmp_path / "0001.mkv", [picture(7, 4, night), picture(7, 5, night)])
    out = tmp_path / "out.mkv"
    result = interp.interpolate_file(shard, out, following=following, expected_frames=10, fps="30000/1001",
                                     settings=settings(ifnet_file), label="test", log=LOG)
    frames = read_clip(out)
    assert len(frames) == 20 == frame_count(out) and result.cuts == 1
    assert rate(out) == pytest.approx(60000 / 1001, abs=1e-3)
    duration = float(ffprobe(out, "-show_entries", "format=duration", "-of", "csv=p=0"))
    assert abs(duration - 20 * 1001 / 60000) < 0.002
    for k, original in enumerate(source):  # originals pass through bit for bit at even positions
        assert np.array_equal(frames[2 * k], original), k
    assert np.array_equal(frames[11], source[5])  # at the cut the earlier frame is held, nothing blended
    made = [frames[2 * k + 1] for k in range(10) if k != 5]
    assert result.interpolated == len(made) == 9
    assert all(not any(np.array_equal(m, s) for s in source) for m in made)  # the others are new frames


def test_last_shard_holds_its_last_frame(tmp_path, ifnet_file):
    source = [picture(3, k) for k in range(4)]
    out = tmp_path / "out.mkv"
    interp.interpolate_file(write_clip(tmp_path / "0002.mkv", source), out, following=None, expected_frames=4,
                            fps="30000/1001", settings=settings(ifnet_file, factor=3), label="test", log=LOG)
    frames = read_clip(out)
    assert len(frames) == 12  # factor × frames: the master keeps the source's duration
    assert all(np.array_equal(frames[9 + i], source[3]) for i in range(3))
    assert all(np.array_equal(frames[3 * k], source[k]) for k in range(4))


def test_drop_duplicates_retimes_onto_the_grid(tmp_path, ifnet_file):
    # 16 fps film stored at 24: of every 3 frames the second repeats the first (a, a, b, c, c, d, …)
    unique = [picture(5, 3 * k) for k in range(6)]
    source = [unique[i] for i in (0, 0, 1, 2, 2, 3, 4, 4, 5)]
    out = tmp_path / "out.mkv"
    result = interp.interpolate_file(write_clip(tmp_path / "0000.mkv", source, "24000/1001"), out, following=None,
                                     expected_frames=9, fps="24000/1001",
                                     settings=settings(ifnet_file, drop_duplicates=True), label="test", log=LOG)
    frames = read_clip(out)
    assert len(frames) == 18 and result.dropped == 3
    assert rate(out) == pytest.approx(48000 / 1001, abs=1e-3)
    for k in (0, 2, 3, 5, 6, 8):  # kept frames stay where they were, untouched
        assert np.array_equal(frames[2 * k], source[k])
    for k in (1, 4, 7):  # a repeat's slot is a new frame between its neighbours, not the repeat
        assert not np.array_equal(frames[2 * k], source[k])


def test_settings_from_config(tmp_path):
    base = {"source": "x.mkv", "output": "o.mkv", "models": ["m.safetensors"], "shard_frames": 10}
    assert not from_config(base).interpolate.enabled
    on = from_config({**base, "interpolate": {"factor": 2, "model": "flownet.pkl"}, "device": "cpu"}).interpolate
    assert on.enabled and on.model == Path("flownet.pkl") and on.device == "cpu"
    with pytest.raises(RemasterError, match="needs a model"):
        from_config({**base, "interpolate": {"factor": 2}})
    with pytest.raises(RemasterError, match="TorchScript"):
        from_config({**base, "interpolate": {"factor": 2, "model": "rife.pt"}})


# --- end to end ----------------------------------------------------------------------------------------------

def test_workflow_doubles_the_rate_and_keeps_audio(tmp_path, demo_disc, tiny_model, ifnet_file):
    write_config(tmp_path, source=demo_disc, output="master.mkv", models=[str(tiny_model)], shard_frames=10,
                 scale=1,  # 640×480 frames keep the CPU interpolation quick
                 encoder={"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"},
                 interpolate={"factor": 2, "model": str(ifnet_file)})
    snakemake(tmp_path, "--cores", "2", "--resources", "gpu=1")
    master = tmp_path / "master.mkv"
    assert frame_count(master) == 48  # 2 × 24: every shard 2 × its frames, the last frame held once
    assert rate(master) == pytest.approx(60000 / 1001, abs=1e-3)
    duration = float(ffprobe(master, "-show_entries", "format=duration", "-of", "csv=p=0"))
    assert abs(duration - 24 * 1001 / 30000) <= 1001 / 30000 + 0.034  # ac3 frames may end a bit later
    title = tmp_path / "title.vob"
    title.write_bytes((demo_disc / "VTS_01_1.VOB").read_bytes() + (demo_disc / "VTS_01_2.VOB").read_bytes())
    for track in (0, 1):
        original = stream_bytes(title, f"0:a:{track}", "ac3")
        assert original and stream_bytes(master, f"0:a:{track}", "ac3") == original
    verify = json.loads((tmp_path / "results" / "master" / "verify_master" / "verify.json").read_text())
    assert verify["ok"], verify
    checks = {c["name"]: c for c in verify["checks"]}
    assert checks["frame_count"]["found"] == 48 and checks["chapters"]["ok"]
    # the interpolated shards are 2 × 10, 2 × 10 and 2 × 4 frames, each into the next shard's first frame
    shards = sorted((tmp_path / "results" / "master" / "interpolate_shard").glob("*.mkv"))
    assert [frame_count(s) for s in shards] == [20, 20, 8]
    assert rate(shards[0]) == pytest.approx(60000 / 1001, abs=1e-3)


# --- precision and inf/NaN (issue 22) -----------------------------------------------------------------------


class NanAtHalf(IFNet):
    """IFNet that gives NaN at half precision on batches whose first frame is bright: an overflow the
    proving pair did not show."""

    def forward(self, img0, img1, timestep=0.5, scale=1.0):
        out = super().forward(img0, img1, timestep, scale)
        if out.dtype != torch.float32 and float(img0[0].float().mean()) > 0.45:
            out = out.clone()
            out[:, :, ::2] = float("nan")
        return out


@pytest.mark.unit
def test_nan_from_a_half_precision_interpolation_is_redone_at_fp32(ifnet_file, caplog):
    from remaster.models.rife import read_state_dict

    model = NanAtHalf(SMALL)
    model.load_state_dict(read_state_dict(ifnet_file))
    reference = interp.Interpolator(settings(ifnet_file, precision="fp32"), log=LOG)
    half = interp.Interpolator(settings(ifnet_file, precision="fp16"), model, LOG)
    assert half.dtype == torch.float16
    words = interp.frame_words(WIDTH, HEIGHT)
    pairs = [(picture(1, 0, (80, 300)), picture(1, 4, (80, 300))), (picture(2, 0, (700, 900)), picture(2, 4, (700, 900)))]
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        for first, second in pairs:
            made = half([first], [second], [0.5], WIDTH, HEIGHT)
            want = reference([first], [second], [0.5], WIDTH, HEIGHT)
            assert made.shape == (1, words)
            luma_words = made[:, :WIDTH * HEIGHT].astype(int)
            assert luma_words.min() >= 64  # no NaN cast to 0: never a black (or green) pixel
            assert np.abs(luma_words - want[:, :WIDTH * HEIGHT].astype(int)).max() <= 24
    assert half.recovered == 1 and "RIFE gave inf or NaN at float16" in caplog.text


@pytest.mark.unit
def test_an_explicit_interpolation_precision_that_does_not_run_is_one_line(ifnet_file):
    class Broken(IFNet):
        def forward(self, img0, img1, timestep=0.5, scale=1.0):
            if img0.dtype == torch.bfloat16:
                raise RuntimeError("no bf16 kernel\nmore")
            return super().forward(img0, img1, timestep, scale)

    with pytest.raises(RemasterError, match="RIFE does not run on cpu at bf16 \\(no bf16 kernel\\)"):
        interp.Interpolator(settings(ifnet_file, precision="bf16"), Broken(SMALL))
