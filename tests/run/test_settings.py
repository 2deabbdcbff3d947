"""Settings built from the config: bad values are one-line errors."""


from __future__ import annotations

import pytest

from remaster.run.errors import RemasterError
from remaster.run.settings import from_config
from remaster.run.sheet import disc_name

BASE = {"source": "x", "output": "out.mkv", "models": ["m.safetensors"], "shard_frames": 10, "encoder": {}}


def test_settings_refuse_bad_values():
    with pytest.raises(RemasterError, match="shard_frames"):
        from_config({**BASE, "shard_frames": -5})
    with pytest.raises(RemasterError, match="TorchScript"):
        from_config({**BASE, "models": ["model.pt"]})
    with pytest.raises(RemasterError, match="must end in .mkv"):
        from_config({**BASE, "output": "my film (1961).mp4"})


def test_a_disc_is_named_after_its_output():
    assert disc_name("my film (1961)") == "my_film_1961"
