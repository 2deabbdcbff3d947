"""The mux's helpers: the concat list quotes awkward paths."""


from __future__ import annotations

from pathlib import Path

from remaster.output.mux import concat_list


def test_concat_list_quotes_awkward_paths():
    text = concat_list([Path("/a/it's here.mkv")])
    assert text == "file '/a/it'\\''s here.mkv'\n"
