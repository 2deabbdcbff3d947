"""Shards read from the prepared title hold exactly its frames."""


from __future__ import annotations

import dataclasses
import hashlib
import logging
import subprocess

import pytest

from remaster.disc.probe import probe_title
from remaster.disc.voblist import concat_files
from remaster.frames import shards
from remaster.run import records


def test_each_shard_is_cut_frame_exactly(tmp_path, demo_disc):
    """Shards read from the prepared title hold exactly its frames, in order, each once."""
    from remaster.frontend.plan import make_plan
    from remaster.frontend.prepare import prepare_title
    from remaster.run.settings import FrontEndSettings

    title = tmp_path / "title.vob"
    concat_files([demo_disc / "VTS_01_1.VOB", demo_disc / "VTS_01_2.VOB"], title)
    description, timestamps = probe_title(title)
    assert description.frame_count == len(timestamps) == 24
    plan = make_plan(description, FrontEndSettings(scan="progressive"), title=title, scale=2)
    prepared = tmp_path / "prepared.mkv"
    facts = prepare_title(title, plan, prepared, expected_seconds=description.video.duration,
                          log=logging.getLogger("test"))
    assert facts["frame_count"] == 24 and (facts["width"], facts["height"]) == (640, 480)
    from remaster.frames import commands

    def rgb_frames(cut=None) -> list[str]:
        raw = subprocess.run(commands.decoder_command(prepared, "bt601", cut=cut), capture_output=True,
                             check=True).stdout
        size = 640 * 480 * 3
        return [hashlib.md5(raw[n:n + size]).hexdigest() for n in range(0, len(raw), size)]

    whole = rgb_frames()
    assert len(whole) == 24 and len(set(whole)) > 12  # frames differ, so a shifted cut would show
    for method in ("seek", "select"):  # the checked seek, and the fallback by frame number
        pieces = []
        for k in range(records.shard_count(24, 7)):
            start, end = records.shard_bounds(24, 7, k)
            cut = shards.plan_cut(prepared, start, end, facts["fps"], logging.getLogger("test"))
            assert cut.method == "seek", cut  # the prepared title's clock is its rate's
            pieces += rgb_frames(dataclasses.replace(cut, method=method))
        assert pieces == whole, method


@pytest.mark.unit
def test_the_cut_record_round_trips_and_a_damaged_one_is_named(tmp_path):
    """extract_shard writes the cut, upscale_shard reads it back: the same fields, the keys other tools read."""
    path = tmp_path / "0001.json"
    cut = shards.Cut(start=7, end=17, method="seek", seek=0.26, context=(3, 0))
    cut.dump(path)
    assert shards.Cut.load(path) == cut
    assert records.read_json(path) == {"start": 7, "end": 17, "method": "seek", "seek": 0.26, "context": [3, 0]}
    first = shards.Cut(start=0, end=7, method="select", seek=None)
    first.dump(path)
    assert shards.Cut.load(path) == first and shards.cut_input_args(first)[2] == "select='between(n,0,6)'"
