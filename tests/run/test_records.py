"""The records steps hand each other: the shard table (every frame in exactly one shard, in play order) and
the plan, read back as it was written."""


from __future__ import annotations

import re
from fractions import Fraction

import pytest

from remaster.run import records
from remaster.run.errors import RemasterError


def test_shard_bounds_cover_every_frame_once():
    frames = [i for k in range(records.shard_count(25, 10)) for i in range(*records.shard_bounds(25, 10, k))]
    assert frames == list(range(25))
    assert records.shard_names(25, 10) == ["0000", "0001", "0002"]
    with pytest.raises(RemasterError):
        records.shard_bounds(25, 10, 3)


def _plan():
    from pathlib import Path

    from remaster.disc.probe import Probe
    from remaster.frontend.plan import make_plan
    from remaster.run.settings import FrontEndSettings

    probe = Probe.from_dict({
             "title_file": "title.mkv", "frame_count": 2997,
             "format": {"start_time": 0.2, "title": "A Film"},
             "chapters": [{"start": 0.2, "end": 60.2}, {"start": 60.2, "end": 100.2}],
             "video": {"fps": "30000/1001", "dar": "16:9", "sar": "32:27", "width": 720, "height": 480,
                       "duration": 100.0, "start_time": 0.2},
             "audio": [{"index": 1, "codec": "ac3", "language": "en", "start_time": 0.3, "id": "0x80"}],
             "subtitles": [{"index": 2, "codec": "dvd_subtitle", "language": "fr", "id": "0x20"}]})
    return make_plan(probe, FrontEndSettings(scan="telecine"), title=Path("title.mkv"), crop_found=(704, 480, 8, 0))


@pytest.mark.unit
def test_the_plan_reads_back_as_it_was_written(tmp_path):
    from remaster.frontend.plan import Plan

    plan = _plan()
    plan.dump(tmp_path / "plan.json")
    again = Plan.load(tmp_path / "plan.json")
    assert again == plan
    assert again.audio[0].language == "eng" and again.audio[0].offset == 0.1
    assert again.model_input == (854, 480) and again.colour.matrix == "smpte170m"
    assert again.decisions["scan"].override == "scan"


def _record_classes():
    """Every record one step writes and another reads, with a mapping that lacks what it must hold."""
    from remaster.disc.dvd import Title
    from remaster.disc.probe import Probe
    from remaster.disc.reader import Disc
    from remaster.frames.shards import Cut
    from remaster.frontend.plan import Plan
    from remaster.models.check import ModelsReport
    from remaster.output.verify import Verification

    return [(Plan, {"scan": "telecine"}), (Probe, {"title_file": "title.mkv", "video": {"width": 720}}),
            (Disc, {"name": "x", "title": {"number": 1}}), (Title, {"number": 1}), (Cut, {"start": 7}),
            (ModelsReport, {"steps": [{"file": "x2.safetensors"}], "chain_scale": 2, "scale": 2}),
            (Verification, {"master": "master.mkv", "checks": [{"name": "frame_count"}]}),
            (records.Prepared, {"fps": "25", "shards": []}), (records.ShardResult, {"frames": 100})]


@pytest.mark.unit
@pytest.mark.parametrize("index", range(9))
def test_a_damaged_record_is_a_one_line_error_naming_the_file(tmp_path, index):
    """The one loader's promise, for every record: a half-written file, a mapping missing a field, or JSON of
    another shape is one line naming the file (and saying to delete it), never a traceback or a default."""
    import json

    record, incomplete = _record_classes()[index]
    path = tmp_path / "step.json"
    path.write_text(json.dumps(incomplete)[:-3])
    with pytest.raises(RemasterError, match=r"^\S*step\.json: cannot read") as error:
        record.load(path)
    assert "\n" not in str(error.value)
    for wrong in (incomplete, []):
        path.write_text(json.dumps(wrong))
        with pytest.raises(RemasterError, match=rf"^\S*step\.json: not a {re.escape(record.what)} record .*delete it") as error:
            record.load(path)
        assert "\n" not in str(error.value)


@pytest.mark.unit
def test_a_shard_result_reads_back_and_names_a_broken_file(tmp_path):
    result = records.ShardResult(frames=100, seconds=4.0, width=1440, height=1080, device="cuda:0 (NVIDIA H100)",
                                 dtype="fp16", batch_size=4, shard="0003", host="node1")
    result.dump(tmp_path / "0003.json")
    assert records.ShardResult.load(tmp_path / "0003.json") == result and result.fps == 25.0


@pytest.mark.unit
def test_the_prepared_title_reads_back_typed_with_its_shard_table(tmp_path):
    import json

    facts = {"frame_count": 25, "fps": "24000/1001", "width": 640, "height": 480, "duration": 1.043,
             "repeated_frames": 2, "dropped_frames": 0, "seconds": 0.5, "vfr": True,
             "timed": [{"kind": "film", "frames": 25, "start": "0", "step": "1001/24000"}],
             "damaged": [[0.5, 0.6]]}
    prepared = records.Prepared.from_facts(facts, 10)
    prepared.dump(tmp_path / "prepared.json")
    again = records.Prepared.load(tmp_path / "prepared.json")
    assert again == prepared and [s.frames for s in again.shards] == [10, 10, 5]
    assert again.damaged == ((0.5, 0.6),) and again.vfr and again.timed[0].kind == "film"
    assert again.timed[0].end == Fraction(25 * 1001, 24000) and len(again.timed[0].times(2)) == 50
    assert again.shard("0002") == records.Shard("0002", 20, 25)
    # the file keeps the keys the earlier steps wrote: the facts flat, the shard table beside them
    assert {**json.loads((tmp_path / "prepared.json").read_text()), "shards": None} == {**facts, "shards": None}
    assert again.facts() == facts
