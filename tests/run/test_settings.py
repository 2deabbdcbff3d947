"""Settings built from the config: bad values are one-line errors."""


from __future__ import annotations

import pytest

from remaster.run.errors import RemasterError
from remaster.run.settings import from_config

BASE = {"source": "x", "output": "out.mkv", "models": ["m.safetensors"], "shard_frames": 10, "encoder": {}}


def test_settings_refuse_bad_values():
    with pytest.raises(RemasterError, match="shard_frames"):
        from_config({**BASE, "shard_frames": -5})
    with pytest.raises(RemasterError, match="TorchScript"):
        from_config({**BASE, "models": ["model.pt"]})
    settings = from_config({**BASE, "output": "my film (1961).mkv"})
    assert settings.disc == "my_film_1961"
