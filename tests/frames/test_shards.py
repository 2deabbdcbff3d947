"""Shards read from the prepared title hold exactly its frames."""


from __future__ import annotations

import hashlib
import logging
import subprocess

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
    assert description["frame_count"] == len(timestamps) == 24
    plan = make_plan(description, FrontEndSettings(scan="progressive"), title=title, scale=2)
    prepared = tmp_path / "prepared.mkv"
    facts = prepare_title(title, plan, prepared, expected_seconds=description["video"]["duration"],
                          log=logging.getLogger("test"))
    assert facts["frame_count"] == 24 and (facts["width"], facts["height"]) == (640, 480)
    from remaster.frames import engine

    def rgb_frames(cut=None) -> list[str]:
        raw = subprocess.run(engine.decoder_command(prepared, "bt601", cut=cut), capture_output=True,
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
            assert cut["method"] == "seek", cut  # the prepared title's clock is its rate's
            pieces += rgb_frames({**cut, "method": method})
        assert pieces == whole, method
