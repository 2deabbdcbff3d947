"""Loading model files safely and running them as a chain."""


from __future__ import annotations

from pathlib import Path

import pytest
import torch

from remaster.models.loading import load_chain, load_model
from remaster.run.errors import RemasterError
from support.workflow import make_compact


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
    from remaster.models.loading import run_tiled

    chain = load_chain([make_compact(tmp_path / "a.safetensors", num_conv=1)], device="cpu")
    frame = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        whole = chain(frame)
        tiled = run_tiled(chain, frame, tile=16, overlap=8)
    assert torch.allclose(whole, tiled, atol=1e-5)
