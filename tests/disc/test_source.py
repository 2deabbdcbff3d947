"""What `source:` points at: the title's VOBs in play order, one-line errors for bad paths."""


from __future__ import annotations

import pytest

from remaster.disc.source import resolve_source
from remaster.run.errors import RemasterError


def test_title_vobs_are_in_play_order_without_the_menu(demo_disc):
    source = resolve_source(str(demo_disc))
    assert [p.name for p in source.parts] == ["VTS_01_1.VOB", "VTS_01_2.VOB"] and source.needs_reading
    assert resolve_source(str(demo_disc.parent)).parts == source.parts  # the folder holding VIDEO_TS works too


def test_bad_sources_are_one_line_errors(tmp_path):
    with pytest.raises(RemasterError, match="source not found"):
        resolve_source(str(tmp_path / "missing"))
    with pytest.raises(RemasterError, match="no title VOBs"):
        resolve_source(str(tmp_path))
