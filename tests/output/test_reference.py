"""The master against a reference release: alignment of a shifted or retimed copy, scores per shard."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from remaster.output import reference
from remaster.run import media
from remaster.run.errors import RemasterError
from remaster.run.records import Prepared, shard_table
from remaster.training import dataset

HR = (128, 96)
FRAMES = 40


def clip(out: Path, *, size=HR, rate="25", start=0, frames=FRAMES, codec=("-c:v", "ffv1"), crop: str = "") -> Path:
    """testsrc2 (moving, distinct frames) from frame `start`, `frames` long, at `size` and `rate` (after
    `crop`, an ffmpeg crop filter's w:h:x:y, when given)."""
    source = f"testsrc2=size={HR[0]}x{HR[1]}:rate=25,trim=start_frame={start}:end_frame={start + frames},setpts=N"
    scale = f"{f'crop={crop},' if crop else ''}scale={size[0]}:{size[1]}:flags=area,format=yuv420p"
    subprocess.run(media.ffmpeg_args("-y", "-f", "lavfi", "-i", source, "-vf", scale, "-r", rate, *codec,
                                     "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                                     media.input_path(out)), check=True)
    return out


@pytest.mark.unit
def test_scoring_size_caps_the_height():
    assert reference.scoring_size(1920, 1080) == (1920, 1080)
    assert reference.scoring_size(3840, 2160) == (1920, 1080)
    assert reference.scoring_size(720, 576) == (720, 576)


@pytest.mark.unit
def test_windows_spread_over_a_long_shard_and_cover_a_short_one():
    assert reference.windows(0, 40, window=30, count=5) == [range(0, 40)]
    spans = reference.windows(1000, 11000, window=30, count=5)
    assert len(spans) == 5 and spans[0].start == 1000 and spans[-1].stop == 11000
    assert all(len(s) == 30 for s in spans)
    assert reference.windows(5, 5) == []


@pytest.mark.unit
def test_a_reader_of_selected_frames_gives_the_same_frames(tmp_path):
    video = clip(tmp_path / "video.mkv", frames=20)
    everything = reference.FrameReader(video, HR)
    selected = reference.FrameReader(video, HR, [range(10, 12), range(3, 5), range(4, 6)])
    try:
        assert reference.merged([range(10, 12), range(3, 5), range(4, 6)]) == [range(3, 6), range(10, 12)]
        for number in (3, 5, 10, 11):
            assert np.array_equal(selected.frame(number), everything.frame(number))
        assert selected.frame(12) is None  # nothing selected after 11
        with pytest.raises(ValueError, match="asked after"):
            everything.frame(2)
    finally:
        everything.close()
        selected.close()


@pytest.mark.unit
def test_a_shifted_copy_is_aligned(tmp_path):
    # the reference starts 6 frames later: master frame m is the reference's frame m - 6
    prepared = clip(tmp_path / "prepared.mkv", size=(64, 48))
    ref = clip(tmp_path / "reference.mkv", start=6, frames=FRAMES - 6)
    timing = reference.master_timing(dataset.fingerprints(prepared)[0], dataset.fingerprints(ref)[0], 25.0, 25.0,
                                     max_offset=2)
    assert timing.ratio == "1"
    assert [timing.hr_frame(m) for m in (6, 10, 30)] == [0, 4, 24]


@pytest.mark.unit
def test_a_pal_speed_up_is_found_and_interpolated_frames_map_by_time(tmp_path):
    # a PAL release (25 fps, film sped up 4%) against the film's own 23.976 fps: the same frames, slower
    prepared = clip(tmp_path / "prepared.mkv", size=(64, 48))
    ref = clip(tmp_path / "reference.mkv", rate="24000/1001")
    timing = reference.master_timing(dataset.fingerprints(prepared)[0], dataset.fingerprints(ref)[0], 25.0,
                                     24000 / 1001, factor=2, max_offset=2)
    assert timing.ratio == "25/23.976" and abs(timing.offset) < 0.05
    # master frame 20 (factor 2) is prepared frame 10, the reference's frame 10
    assert timing.hr_frame(20) == 10


@pytest.mark.unit
def test_reference_is_a_column_of_the_sheet(tmp_path):
    import yaml
    from snakemake.utils import validate

    from remaster.run.sheet import masters
    from support.workflow import REPO

    schema_path = REPO / "workflow" / "schemas" / "config.schema.yaml"
    source = clip(tmp_path / "dvd.mkv", size=(64, 48))
    (tmp_path / "discs.tsv").write_text(f"source\toutput\treference\n{source}\ta.mkv\tbluray.mkv\n{source}\tb.mkv\t\n")
    config = {"models": ["m.safetensors"], "discs": str(tmp_path / "discs.tsv")}
    validate(config, str(schema_path))
    assert config["reference"] == ""  # the schema's default: none
    found = masters(config, yaml.safe_load(schema_path.read_text()))
    assert found["a"].settings.reference == Path("bluray.mkv") and found["b"].settings.reference is None


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A perfect master (the truth itself) of a ×2 prepared title, scored against the truth 3 frames later."""
    folder = tmp_path_factory.mktemp("reference")
    prepared_file = clip(folder / "prepared.mkv", size=(64, 48))
    master = clip(folder / "master.mkv")
    ref = clip(folder / "reference.mkv", start=3, frames=FRAMES - 3)
    prepared = Prepared(FRAMES, "25", shard_table(FRAMES, 16))
    return reference.compare(master, prepared_file, prepared, ref, crops=2, max_offset=2, work=folder)


@pytest.mark.unit
def test_scores_per_shard_of_a_perfect_master(scored):
    timing, scores = scored.timing, scored.scores
    assert timing.hr_frame(3) == 0
    assert [s.shard for s in scores] == ["0000", "0001", "0002"]
    # the first 3 master frames precede the reference: shard 0000 scores 13 of its 16
    assert [s.frames for s in scores] == [13, 16, 8]
    assert scores[0].reference_first == 0 and scores[1].reference_first == 13
    for score in scores:
        assert score.psnr > 50 and score.vmaf > 90  # the same frames, lossless
        assert score.player_psnr < score.psnr - 10  # a ×2 Lanczos of the prepared title is far from it


@pytest.mark.unit
def test_long_shards_are_scored_on_runs_spread_over_them(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "WINDOW", 4)
    monkeypatch.setattr(reference, "WINDOWS", 2)
    prepared_file = clip(tmp_path / "prepared.mkv", size=(64, 48))
    master = clip(tmp_path / "master.mkv")
    ref = clip(tmp_path / "reference.mkv", start=3, frames=FRAMES - 3)
    found = reference.compare(master, prepared_file, Prepared(FRAMES, "25", shard_table(FRAMES, 20)), ref,
                              crops=1, max_offset=2, work=tmp_path)
    # runs [0, 4) and [16, 20) of shard 0000 (frames 0-2 precede the reference), [20, 24) and [36, 40) of 0001
    assert [(s.frames, s.reference_first) for s in found.scores] == [(5, 0), (8, 17)]
    assert all(s.psnr > 50 for s in found.scores) and len(found.crops) == 1


@pytest.mark.unit
def test_an_interpolated_master_is_scored_at_the_source_times(tmp_path):
    # interpolate.factor 2: master frame 2p is prepared frame p upscaled (here: the truth's frame p itself),
    # frame 2p + 1 lies between two source frames (here: a repeat) and is not scored
    prepared_file = clip(tmp_path / "prepared.mkv", size=(64, 48))
    master = clip(tmp_path / "master.mkv", rate="50")
    ref = clip(tmp_path / "reference.mkv", start=3, frames=FRAMES - 3)
    found = reference.compare(master, prepared_file, Prepared(FRAMES, "25", shard_table(FRAMES, 16)), ref,
                              factor=2, crops=1, max_offset=2, work=tmp_path)
    assert [(s.first_frame, s.frames, s.reference_first) for s in found.scores] == [(0, 13, 0), (32, 16, 13),
                                                                                    (64, 8, 29)]
    assert all(s.psnr > 50 for s in found.scores)


@pytest.mark.unit
def test_a_reference_framed_differently_is_scored_where_both_show_the_picture(tmp_path):
    # the reference shows the middle 112×84 of the 128×96 picture (a tighter crop), at 160×120
    prepared_file = clip(tmp_path / "prepared.mkv", size=(64, 48))
    master = clip(tmp_path / "master.mkv")
    ref = clip(tmp_path / "reference.mkv", size=(160, 120), crop="112:84:8:6")
    found = reference.compare(master, prepared_file, Prepared(FRAMES, "25", shard_table(FRAMES, 20)), ref,
                              crops=1, max_offset=2, work=tmp_path)
    master_box, reference_box = found.framing.boxes()
    assert reference_box == (0.0, 0.0, 1.0, 1.0)
    assert np.allclose(master_box, (8 / 128, 6 / 96, 120 / 128, 90 / 96), atol=0.01)
    for score in found.scores:
        assert score.psnr > 28 and score.vmaf > 80 and score.psnr > score.player_psnr + 2
    plain = reference.compare(master, prepared_file, Prepared(FRAMES, "25", shard_table(FRAMES, 20)), ref,
                              crops=0, max_offset=2, work=tmp_path, framing=reference.Framing())
    assert all(s.psnr < f.psnr - 5 for s, f in zip(plain.scores, found.scores))  # unaligned, far worse


@pytest.mark.unit
def test_crops_show_before_after_and_reference(scored):
    images = scored.crops
    assert len(images) == 2
    # three centre crops of the 128×96 scoring size (smaller than CROP), 4-pixel gaps between
    assert images[0].shape == (96, 128 * 3 + 8, 3)


@pytest.mark.unit
def test_the_page_and_tsv_hold_every_shard(scored):
    timing, scores = scored.timing, scored.scores
    table = reference.to_tsv(scores).splitlines()
    assert table[0].split("\t") == reference.COLUMNS and len(table) == 4
    html = reference.reference_page("film", Path("film.mkv"), timing, scores, (128, 96), ["crop_1.png"])
    assert "0002" in html and "VMAF" in html and "crop_1.png" in html and "(low" not in html
    assert "the same picture" in html
    framed = reference.reference_page("film", Path("film.mkv"), timing, scores, (128, 96), [],
                                      reference.Framing(1.1, -0.05, 1.0, 0.0))
    assert "x 0.0%–100.0%, y 0.0%–100.0%: only that part is scored" in framed
    poor = reference.reference_page("film", Path("film.mkv"), replace(timing, score=0.7), scores, (128, 96), [])
    assert "low: the releases may frame or edit the picture differently" in poor


@pytest.mark.unit
def test_a_missing_reference_is_one_line(tmp_path):
    prepared = Prepared(FRAMES, "25", shard_table(FRAMES, 16))
    with pytest.raises(RemasterError, match=r"reference: .*nothing\.mkv: no such file"):
        reference.compare(tmp_path / "m.mkv", tmp_path / "p.mkv", prepared, tmp_path / "nothing.mkv")


def test_the_workflow_scores_the_master_against_a_reference(tmp_path, tiny_model):
    """A 40-frame 64×48 clip through the workflow with reference: its 128×96 original, 4 frames shorter at
    the start: a page, a TSV row per shard with plausible scores, and the crops."""
    from support.workflow import planned_jobs, snakemake, write_config

    x264 = ("-c:v", "libx264", "-preset", "fast", "-crf", "12", "-pix_fmt", "yuv420p")
    source = clip(tmp_path / "dvd.mkv", size=(64, 48), codec=x264)
    truth = clip(tmp_path / "bluray.mkv", start=4, frames=FRAMES - 4, codec=x264)
    config = dict(source=str(source), output="film.mkv", models=[str(tiny_model)], shard_frames=16,
                  encoder={"codec": "libx264", "crf": 18, "preset": "ultrafast", "pix_fmt": "yuv420p"})
    write_config(tmp_path, **config)
    # without reference: no compare_reference job
    assert "compare_reference" not in planned_jobs(tmp_path)
    write_config(tmp_path, **config, reference=str(truth))
    snakemake(tmp_path, "--cores", "2", "--resources", "gpu=1")
    folder = tmp_path / "results" / "film" / "compare_reference"
    rows = [line.split("\t") for line in (folder / "reference.tsv").read_text().splitlines()]
    assert rows[0] == reference.COLUMNS
    table = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [row["shard"] for row in table] == ["0000", "0001", "0002"]
    # master frames 0-3 come before the reference's first frame
    assert [int(row["frames"]) for row in table] == [12, 16, 8]
    assert [int(row["reference_first"]) for row in table] == [0, 12, 28]
    for row in table:
        # a random tiny model: far from the truth, yet the same pictures (an unaligned pair scores near 0 VMAF)
        assert 0 < float(row["vmaf"]) <= 100 and 15 < float(row["psnr"]) < 60
        assert 30 < float(row["player_vmaf"]) <= 100 and float(row["player_psnr"]) > 20
    page = (folder / "reference.html").read_text()
    assert "the master against the reference" in page and "0002" in page
    assert all((folder / f"crop_{n}.png").stat().st_size > 0 for n in (1, 2, 3))
    assert planned_jobs(tmp_path) == {}
