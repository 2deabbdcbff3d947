"""The shard table: every frame in exactly one shard, in play order."""


from __future__ import annotations

import pytest

from remaster.run import records
from remaster.run.errors import RemasterError


def test_shard_bounds_cover_every_frame_once():
    frames = [i for k in range(records.shard_count(25, 10)) for i in range(*records.shard_bounds(25, 10, k))]
    assert frames == list(range(25))
    assert records.shard_names(25, 10) == ["0000", "0001", "0002"]
    with pytest.raises(RemasterError):
        records.shard_bounds(25, 10, 3)
