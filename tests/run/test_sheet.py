"""A season in one run: the `discs:` sheet, its titles, one DAG for every master, and config layering."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from support.workflow import REPO, make_compact, planned_jobs, snakemake, write_config

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
FAST_ENCODER = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": "yuv420p"}
EPISODE_FRAMES = 24  # 0.8 s of NTSC each
SHORT_FRAMES = 9  # a 0.3 s trailer: shorter than min_title_seconds, skipped


def run_config(**extra) -> dict:
    """A validated run config (the schema's defaults filled in), as Snakemake hands it to the sheet."""
    from snakemake.utils import validate

    config = {"models": ["m.safetensors"], **extra}
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def season_disc(folder: Path) -> Path:
    """A dvdauthor VIDEO_TS: title set 1 holds two episodes (titles 1 and 2), title set 2 a short trailer."""
    from remaster.demo import write_program_stream

    work = folder / "season"
    work.mkdir(parents=True, exist_ok=True)
    vobs = []
    for name, frames in (("ep1", EPISODE_FRAMES), ("ep2", EPISODE_FRAMES), ("trailer", SHORT_FRAMES)):
        vobs.append(work / f"{name}.mpg")
        write_program_stream(vobs[-1], frames, storage=(352, 240), audio_tracks=1)
    xml = work / "dvd.xml"
    xml.write_text(f"""<dvdauthor dest="{work / 'DVD'}">
  <vmgm />
  <titleset>
    <titles>
      <video format="ntsc" aspect="4:3" />
      <audio lang="en" />
      <pgc><vob file="{vobs[0]}" /></pgc>
      <pgc><vob file="{vobs[1]}" /></pgc>
    </titles>
  </titleset>
  <titleset>
    <titles>
      <video format="ntsc" aspect="4:3" />
      <audio lang="en" />
      <pgc><vob file="{vobs[2]}" /></pgc>
    </titles>
  </titleset>
</dvdauthor>
""")
    shutil.rmtree(work / "DVD", ignore_errors=True)
    result = subprocess.run(["dvdauthor", "-x", str(xml)], capture_output=True, text=True,
                            env={"VIDEO_FORMAT": "NTSC", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-500:]
    return work / "DVD" / "VIDEO_TS"


def pal_vob(folder: Path) -> Path:
    from remaster.demo import write_program_stream

    path = folder / "pal disc.vob"
    write_program_stream(path, 20, fps="25/1", storage=(352, 288), audio_tracks=1)
    return path


def capture_file(folder: Path) -> Path:
    """A small capture: 20 progressive frames of H.264 with AAC, as a grabber writes an MKV."""
    path = folder / "capture.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25:duration=0.8", "-f", "lavfi", "-i",
                    "sine=frequency=500:sample_rate=48000:duration=0.8", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def write_sheet(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["\t".join(columns)] + ["\t".join(str(row.get(c, "")) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the sheet, without running anything -------------------------------------------------------------

@pytest.mark.unit
def test_plain_config_is_a_sheet_of_one(demo_disc):
    from remaster.run.sheet import masters

    found = masters(run_config(source=str(demo_disc), output="out/my film.mkv"), SCHEMA)
    assert list(found) == ["my_film"]
    assert found["my_film"].output == Path("out/my film.mkv") and found["my_film"].title is None


@pytest.mark.unit
def test_sheet_rows_override_the_run_value_and_empty_cells_keep_it(tmp_path, demo_disc):
    from remaster.run.sheet import masters

    sheet = write_sheet(tmp_path / "discs.tsv", [
        {"source": demo_disc, "output": "a.mkv", "scale": 3, "audio_languages": "[eng, fra]"},
        {"source": demo_disc, "output": "b.mkv", "scale": "", "audio_languages": ""},
    ])
    found = masters(run_config(discs=str(sheet), scale=2), SCHEMA)
    assert found["a"].settings.upscale.scale == 3 and found["a"].settings.frontend.audio_languages == ("eng", "fra")
    assert found["b"].settings.upscale.scale == 2 and found["b"].settings.frontend.audio_languages == ()


@pytest.mark.unit
def test_sheet_typo_is_one_line_naming_row_and_column(tmp_path, demo_disc):
    from remaster.run.errors import RemasterError
    from remaster.run.sheet import masters

    sheet = write_sheet(tmp_path / "discs.tsv", [{"source": demo_disc, "output": "a.mkv", "dispaly_aspect": "4:3"}])
    with pytest.raises(RemasterError) as error:
        masters(run_config(discs=str(sheet)), SCHEMA)
    message = str(error.value)
    assert "\n" not in message and "row 2" in message and "column 3 'dispaly_aspect'" in message
    assert "did you mean 'display_aspect'?" in message


@pytest.mark.unit
def test_sheet_bad_value_names_row_and_column(tmp_path, demo_disc):
    from remaster.run.errors import RemasterError
    from remaster.run.sheet import masters

    sheet = write_sheet(tmp_path / "discs.tsv", [
        {"source": demo_disc, "output": "a.mkv", "crop": ""},
        {"source": demo_disc, "output": "b.mkv", "crop": "sideways"},
    ])
    with pytest.raises(RemasterError, match=r"row 3, column 'crop': 'sideways' does not match"):
        masters(run_config(discs=str(sheet)), SCHEMA)


@pytest.mark.unit
def test_two_rows_with_one_output_are_refused(tmp_path, demo_disc):
    from remaster.run.errors import RemasterError
    from remaster.run.sheet import masters

    sheet = write_sheet(tmp_path / "discs.tsv", [{"source": demo_disc, "output": "x/a.mkv"},
                                                 {"source": demo_disc, "output": "y/a.mkv"}])
    with pytest.raises(RemasterError, match=r"row 3: master y/a.mkv has the same name 'a' as x/a.mkv \(row 2\)"):
        masters(run_config(discs=str(sheet)), SCHEMA)


@pytest.mark.unit
def test_play_all_and_short_titles_are_not_episodes():
    from remaster.disc.dvd import Cell, Title
    from remaster.run.sheet import episodes

    def title(number, vts, seconds, sectors):
        cells = tuple(Cell(1, n + 1, first, last, seconds / len(sectors)) for n, (first, last) in enumerate(sectors))
        return Title(number, vts, 1, seconds, cells, ())

    titles = [
        title(1, 1, 1300, [(0, 99), (100, 199)]),  # play all: episodes 2 and 3 one after the other
        title(2, 1, 650, [(0, 99)]),
        title(3, 1, 650, [(100, 199)]),
        title(4, 2, 40, [(0, 9)]),  # a trailer
        title(5, 3, 700, [(0, 50)]),  # an episode alone in its title set
    ]
    assert [t.number for t in episodes(titles, min_seconds=120)] == [2, 3, 5]


@pytest.fixture(scope="module")
def season(tmp_path_factory) -> Path:
    return season_disc(tmp_path_factory.mktemp("season"))


def test_titles_of_an_authored_disc(season):
    """dvdauthor's IFOs: two episodes in title set 1, a trailer in title set 2; `all` keeps the episodes."""
    from remaster.run.sheet import episodes, list_titles

    titles = list_titles(season)
    assert [(t.number, t.vts) for t in titles] == [(1, 1), (2, 1), (3, 2)]
    assert titles[0].cells != titles[1].cells
    assert [t.number for t in episodes(titles, min_seconds=0.5)] == [1, 2]


@pytest.mark.unit
def test_demo_values_never_reach_a_user_config(tmp_path):
    """The repository's base config holds no value; the demo's (scale: 2) is loaded only when no disc is named."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    assert base == {} and demo["scale"] == 2
    for key, spec in SCHEMA["properties"].items():
        assert not (key in ("source", "output") and "default" in spec), f"the schema gives {key} a disc's value"


def test_demo_scale_does_not_reach_a_user_run(tmp_path, demo_disc):
    """`snakemake --configfile mine.yaml` with a ×4 model and no `scale`: the master is ×4, not the demo's ×2."""
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    model = make_compact(tmp_path / "x4.safetensors", scale=4)
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"source": str(demo_disc), "output": "mine.mkv", "models": [str(model)]}))
    # --configfile takes several files: the target goes first
    snakemake(tmp_path, "results/mine/check_models/models.json", "--cores", "1", "--configfile", str(mine))
    assert json.loads((tmp_path / "results/mine/check_models/models.json").read_text())["scale"] == 4


def test_sheet_typo_stops_the_run_in_one_line(tmp_path, demo_disc, tiny_model):
    sheet = write_sheet(tmp_path / "discs.tsv", [{"source": demo_disc, "output": "a.mkv", "scael": 2}])
    write_config(tmp_path, discs=str(sheet), models=[str(tiny_model)])
    result = snakemake(tmp_path, "-n", check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-2000:]
    assert "row 2, column 3 'scael'" in errors[0] and "did you mean 'scale'?" in errors[0]


# --- the season, end to end ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def season_run(tmp_path_factory, season, tiny_model):
    """Three discs in one sheet and one snakemake call: two episodes of a VIDEO_TS, a PAL VOB, a capture."""
    workdir = tmp_path_factory.mktemp("season_run")
    sheet = write_sheet(workdir / "season.tsv", [
        {"source": season, "output": "masters/season1", "title_number": "all", "display_aspect": ""},
        {"source": pal_vob(workdir), "output": "masters/pal.mkv", "title_number": "", "display_aspect": "4:3"},
        {"source": capture_file(workdir), "output": "masters/capture.mkv", "title_number": "",
         "display_aspect": "", "scan": "progressive"},
    ])
    config = dict(discs=str(sheet), models=[str(tiny_model)], shard_frames=16, encoder=FAST_ENCODER,
                  min_title_seconds=0.5)
    write_config(workdir, **config)
    result = snakemake(workdir, "--cores", "2", "--resources", "gpu=1", timeout=1200)
    return workdir, config, result


MASTERS = {"season1_title_01": "masters/season1/title_01.mkv", "season1_title_02": "masters/season1/title_02.mkv",
           "pal": "masters/pal.mkv", "capture": "masters/capture.mkv"}


def test_one_call_makes_four_verified_masters(season_run):
    workdir, _, result = season_run
    for disc, master in MASTERS.items():
        assert (workdir / master).is_file(), master
        verify = json.loads((workdir / "results" / disc / "verify_master" / "verify.json").read_text())
        assert verify["ok"] and all(check["ok"] for check in verify["checks"]), (disc, verify)
    # the trailer (shorter than min_title_seconds) is no master
    assert sorted(p.name for p in (workdir / "masters" / "season1").iterdir()) == ["title_01.mkv", "title_02.mkv"]
    # every shard of every title was a job of its own, as each title's shard table lists them
    from remaster.run.records import Prepared

    tables = {disc: Prepared.load(workdir / "results" / disc / "prepare_title" / "prepared.json").shards
              for disc in MASTERS}
    assert all(len(shards) >= 2 for shards in tables.values()), tables
    assert result.stderr.count("rule upscale_shard:") == sum(len(shards) for shards in tables.values())
    # each master holds its own title's pictures, every one once: an episode is not the title set
    frames = {disc: Prepared.load(workdir / "results" / disc / "prepare_title" / "prepared.json").frame_count
              for disc in MASTERS}
    assert frames == {"season1_title_01": EPISODE_FRAMES, "season1_title_02": EPISODE_FRAMES, "pal": 20,
                      "capture": 20}, frames
    from remaster.run import media

    for disc, master in MASTERS.items():
        assert media.count_packets(workdir / master) == frames[disc], disc


def test_shard_table_and_results_are_records(season_run):
    from remaster.run.records import Prepared, ShardResult

    workdir, _, _ = season_run
    prepared = Prepared.load(workdir / "results/pal/prepare_title/prepared.json")
    assert [(s.name, s.start, s.end) for s in prepared.shards] == [("0000", 0, 16), ("0001", 16, 20)]
    result = ShardResult.load(workdir / "results/pal/upscale_shard/0001.json")
    assert result.shard == "0001" and result.frames == 4 and result.device == "cpu"
    timings = (workdir / "results/pal/summarize_run/timings.tsv").read_text().splitlines()
    assert timings[2].split("\t")[:2] == ["0001", "4"] and len(timings) == 3


def test_upscaled_shards_are_not_kept_by_default(season_run):
    workdir, _, _ = season_run
    assert not list(workdir.glob("results/*/upscale_shard/*.mkv"))
    assert {p.parts[-3] for p in workdir.glob("results/*/upscale_shard/*.json")} == set(MASTERS)


def test_runtime_settings_plan_no_job(season_run):
    """device, batch_size and tile say how to run, not what comes out: changing them plans nothing."""
    workdir, _, _ = season_run
    assert planned_jobs(workdir) == {}
    assert planned_jobs(workdir, "--config", "device=cpu", "batch_size=2", "tile=64") == {}


def test_removed_episode_shard_redoes_only_that_shard_and_master(season_run):
    workdir, _, _ = season_run
    encoded = workdir / "results" / "season1_title_02" / "encode_shard" / "0001.mkv"
    others = {p: p.stat().st_mtime_ns for disc, m in MASTERS.items() if disc != "season1_title_02"
              for p in [workdir / m, *(workdir / "results" / disc / "encode_shard").iterdir()]}
    encoded.unlink()
    assert planned_jobs(workdir) == {"extract_shard": 1, "upscale_shard": 1, "encode_shard": 1, "mux_master": 1,
                                     "verify_master": 1, "summarize_run": 1, "all": 1}
    snakemake(workdir, "--cores", "2", "--resources", "gpu=1")
    assert encoded.is_file()
    assert {p: p.stat().st_mtime_ns for p in others} == others
    assert planned_jobs(workdir) == {}


def test_one_report_with_a_section_per_master(season_run):
    import zipfile

    workdir, _, _ = season_run
    snakemake(workdir, "--report", "report.zip")
    archive = zipfile.ZipFile(workdir / "report.zip")
    page = archive.read(next(n for n in archive.namelist() if n.endswith("/report.html"))).decode()
    # the report's table of contents: category (the master's disc) → subcategory → files
    categories = json.loads(re.search(r"var categories = (\{.*?\});", page, re.S).group(1))
    assert set(categories) == set(MASTERS)
    for disc, sections in categories.items():
        assert set(sections) == {"1. Source", "2. Preview", "3. Verification", "4. Run"}, (disc, sections)
        assert f"results/{disc}/verify_master/verify.html" in sections["3. Verification"]


def test_a_failing_title_fails_alone(tmp_path, demo_disc, tiny_model):
    """A disc that cannot be read fails its own jobs; the sheet's other master is made, the run names the bad one."""
    broken = tmp_path / "broken.vob"
    broken.write_bytes(b"\x00\x00\x01\xba" + b"\xff" * 4096)  # a pack header and nothing readable
    sheet = write_sheet(tmp_path / "discs.tsv", [{"source": demo_disc, "output": "good.mkv"},
                                                 {"source": broken, "output": "broken.mkv"}])
    write_config(tmp_path, discs=str(sheet), models=[str(tiny_model)], shard_frames=100, encoder=FAST_ENCODER)
    result = snakemake(tmp_path, "--cores", "2", "--resources", "gpu=1", check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert (tmp_path / "good.mkv").is_file() and not (tmp_path / "broken.mkv").exists()
    assert json.loads((tmp_path / "results/good/verify_master/verify.json").read_text())["ok"]
    # Snakemake's error block of the failed job names its files, all under the broken disc's folders
    failed = text[text.index("Error in rule"):].split("Logfile", 1)[0]
    assert re.search(r"output: results/broken/", failed) and "/good/" not in failed, failed[:3000]


@pytest.mark.unit
def test_ffv1_options_are_one_list():
    from remaster.run.ffv1 import ffv1_args

    args = ffv1_args(16)
    assert dict(zip(args[::2], args[1::2])) == {"-c:v": "ffv1", "-level": "3", "-g": "1", "-slices": "16",
                                                "-slicecrc": "1"}
    assert "-slicecrc" not in ffv1_args(4, crc=False)


@pytest.mark.unit
def test_run_disk_need_is_the_whole_sheets(tmp_path):
    """The pre-flight check adds every master's need; deleting upscaled shards cuts a film's to a fraction."""
    from remaster.run.disk import check_run, master_need
    from remaster.run.errors import RemasterError

    film = 140_000 / 30  # seconds of a 140,000-frame film
    # before: every upscaled shard kept as FFV1; the default: two compact shards in flight of fourteen
    kept, default = master_need(film, 2, 10_000, True, form="lossless"), master_need(film, 2, 10_000, False)
    assert kept.frames == default.frames == 140_001
    assert default.total < 0.25 * kept.total
    needs = {f"episode_{n}": master_need(1300, 2, 10_000, False) for n in range(24)}
    total = check_run(needs, tmp_path, free=10**15)
    assert total == sum(need.total for need in needs.values())
    with pytest.raises(RemasterError, match=r"the run needs about \d+\.\d GB \(24 masters, .* GB are free"):
        check_run(needs, tmp_path / "results", free=total - 1)
