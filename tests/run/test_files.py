"""Outputs written under a temporary name: a failed write leaves nothing behind."""


from __future__ import annotations

import pytest

from remaster.run import files


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "shard.mkv"
    with pytest.raises(RuntimeError), files.atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.iterdir())
    with files.atomic_output(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
