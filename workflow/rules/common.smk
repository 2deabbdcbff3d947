"""Config loading and input functions; no rules here, and nothing heavy (this runs in every job).

Every step works on one master, the `{disc}` wildcard: a row of the `discs:` sheet (one per title with
`title_number: all`), or the single `source`/`output` of a plain config (a sheet of one). Per-master values
come from MASTERS[wildcards.disc]; nothing below is a parse-time value of one disc.
"""

import os
import re
from dataclasses import asdict
from pathlib import Path

import yaml
from snakemake.iocontainers import Wildcards
from snakemake.logging import logger
from snakemake.utils import validate

from remaster.run import disk as remaster_disk
from remaster.run import media, preflight
from remaster.run import sheet as remaster_sheet
from remaster.disc.probe import Probe
from remaster.disc.source import title_seconds
from remaster.run.errors import RemasterError
from remaster.run.records import Prepared

SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"

# no disc named at all: the demo's own config (its values never reach a config that names a disc)
if "source" not in config and "discs" not in config:
    demo = yaml.safe_load((Path(workflow.basedir) / "config/demo.yaml").read_text())
    config.update({**demo, **config})

# every mistake in the config or the machine is one line (preflight.fail), never a traceback
try:
    preflight.check_config_keys(config, SCHEMA)
except RemasterError as error:
    preflight.fail(str(error))

# fills in the schema's defaults: they live there and nowhere else
validate(config, "../schemas/config.schema.yaml")

try:
    MASTERS = remaster_sheet.masters(config, yaml.safe_load(SCHEMA.read_text()))
    for _master in MASTERS.values():
        preflight.check_output(_master.output)
    # the ffmpeg in use, refused when it cannot read a source of the run (a VIDEO_TS folder needs dvdvideo)
    FFMPEG = preflight.check_tools({m.source.kind for m in MASTERS.values()})
except RemasterError as error:
    preflight.fail(str(error))
logger.info(f"ffmpeg: {FFMPEG}")

# a run killed by SIGKILL or a power loss leaves Snakemake's lock: remove it when its process is gone
for stale in preflight.clear_stale_locks():
    logger.warning(f"removed the lock of a killed run: {stale}")

DISCS = list(MASTERS)
# the master's file is the user's path; its rule matches exactly these paths and maps them back to a disc
DISC_OF = {str(m.output): disc for disc, m in MASTERS.items()}


# the masters with a reference release to score against (reference:); none: no compare_reference job
REFERENCED = [disc for disc, m in MASTERS.items() if m.settings.reference]
for _disc in REFERENCED:
    if not MASTERS[_disc].settings.reference.is_file():
        preflight.fail(
            f"reference: {MASTERS[_disc].settings.reference}: no such file; name a video file of the same "
            "title (e.g. a Blu-ray remux) or leave reference empty"
        )


def master_name(path):
    """A master's path as the {master} wildcard holds it: an absolute one without its leading slash (rule
    mux_master_absolute puts it back), so its log is logs/masters/abs/path.mkv.log, not logs/masters//abs…
    """
    return path.lstrip("/")


def disc_of(wildcards):
    """The disc whose master the {master} wildcard names (relative, or absolute without its slash)."""
    return DISC_OF.get(wildcards.master) or DISC_OF[f"{ROOT}{wildcards.master}"]


# the file system's root, in front of an absolute master's {master} (rule mux_master_absolute)
ROOT = os.path.sep


SHARD_FRAMES = int(config["shard_frames"])
KEEP_UPSCALED = bool(config["keep_upscaled"])
RESULTS = "results/{disc}"
LOGS = "logs/{disc}"
BENCHMARKS = "benchmarks/{disc}"
ENV = "../envs/remaster.yaml"
PROBE = f"{RESULTS}/probe_source/probe.json"
PLAN = f"{RESULTS}/plan_disc/plan.json"
PREPARED = f"{RESULTS}/prepare_title/prepared.json"


wildcard_constraints:
    shard=r"\d{4}",
    disc="|".join(re.escape(d) for d in DISCS),
    master="|".join(re.escape(master_name(path)) for path in DISC_OF),


def settings(wildcards):
    """The settings of the wildcards' master."""
    return MASTERS[wildcards.disc].settings


def per_disc(getter):
    """A params function: `getter` applied to the master's settings (evaluated per job, compared per disc)."""
    return lambda wildcards: getter(MASTERS[wildcards.disc].settings)


def model_files(wildcards):
    return [str(step.path) for step in settings(wildcards).upscale.models]


def reader_rule(wildcards) -> str | None:
    """Which step reads the source into the one title file, read_title (a DVD) or join_vobs (VOB files);
    None for a video file, which is read as it is."""
    source = MASTERS[wildcards.disc].source
    if source.is_dvd:
        return "read_title"
    return "join_vobs" if source.needs_reading else None


def title_file(wildcards):
    """The file the rest of the workflow reads: the DVD title as read_title wrote it, the joined VOBs, or the
    user's single file as is."""
    reader = reader_rule(wildcards)
    if reader is None:
        return str(MASTERS[wildcards.disc].source.parts[0])
    return getattr(rules, reader).output.title.format(disc=wildcards.disc)


def disc_record(wildcards):
    """The record of the title the reading rule chose (disc.json), or none for a video file."""
    reader = reader_rule(wildcards)
    return (
        []
        if reader is None
        else getattr(rules, reader).output.disc.format(disc=wildcards.disc)
    )


def prepared(wildcards) -> Prepared:
    """The prepared title's record (frames, rate, shard table), once its prepare_title checkpoint has run."""
    return Prepared.load(
        checkpoints.prepare_title.get(disc=wildcards.disc).output.facts
    )


def probe_data(wildcards) -> Probe:
    """The probe's record; it exists whenever the title's prepare_title checkpoint has run."""
    checkpoints.prepare_title.get(disc=wildcards.disc)
    return Probe.load(PROBE.format(disc=wildcards.disc))


def shards(wildcards):
    return [shard.name for shard in prepared(wildcards).shards]


def upscaled_shards(wildcards):
    return expand(
        f"results/{wildcards.disc}/upscale_shard/{{shard}}.mkv", shard=shards(wildcards)
    )


def shard_results(wildcards):
    """Every upscale job's ShardResult JSON, written beside its shard; the report reads these."""
    return expand(
        f"results/{wildcards.disc}/upscale_shard/{{shard}}.json",
        shard=shards(wildcards),
    )


def following_upscaled_shard(wildcards):
    """The next shard's upscaled file, whose first frame closes a shard's last interpolated pair; none after the last."""
    names = shards(wildcards)
    index = names.index(wildcards.shard)
    return (
        f"results/{wildcards.disc}/upscale_shard/{names[index + 1]}.mkv"
        if index + 1 < len(names)
        else []
    )


def encoded_shards(wildcards):
    return expand(
        f"results/{wildcards.disc}/encode_shard/{{shard}}.mkv", shard=shards(wildcards)
    )


def audio_tracks(wildcards):
    """The copied audio tracks, when the title has any."""
    return (
        f"results/{wildcards.disc}/extract_audio/audio.mka"
        if probe_data(wildcards).audio
        else []
    )


def subtitle_tracks(wildcards):
    """The copied subtitle streams and closed captions, when the title has any."""
    probe = probe_data(wildcards)
    return (
        f"results/{wildcards.disc}/extract_subtitles/subtitles.mks"
        if probe.subtitles or probe.video.closed_captions
        else []
    )


def master_file(wildcards):
    return str(MASTERS[wildcards.disc].output)


def reference_file(wildcards):
    """The reference release of the master (reference:), a video file of the same title."""
    return str(MASTERS[wildcards.disc].settings.reference)


def mux_inputs(wildcards):
    """The mux's inputs for the master at path `{master}`: its disc's encoded shards, tracks and records."""
    named = Wildcards(fromdict={"disc": disc_of(wildcards)})
    disc = named.disc
    return {
        "shards": encoded_shards(named),
        "audio": audio_tracks(named),
        "subtitles": subtitle_tracks(named),
        "probe": PROBE.format(disc=disc),
        "plan": PLAN.format(disc=disc),
        "facts": PREPARED.format(disc=disc),
    }


def every_disc(function):
    """An input function of `all`: `function` over every master of the run."""
    return lambda wildcards: [
        path for disc in DISCS for path in function(Wildcards(fromdict={"disc": disc}))
    ]


def upscaled_output(path):
    # keep_upscaled false (the default): deleted once its encoded (and interpolated) shard exists
    return path if KEEP_UPSCALED else temp(path)


def shard_to_encode(wildcards):
    """The interpolated shard when interpolate.factor > 1, else the upscaled one."""
    if settings(wildcards).interpolate.enabled:
        return f"results/{wildcards.disc}/interpolate_shard/{wildcards.shard}.mkv"
    return f"results/{wildcards.disc}/upscale_shard/{wildcards.shard}.mkv"


def check_models_at_start():
    """Load every model once before any job runs: an unusable file fails the run at its start, not after hours.

    Runs in Snakemake's main process only (not in cluster jobs), so torch is imported here and not at parse
    time. The check_models rule writes the same facts for the report; it is not an input of the shard rules,
    so re-checking never makes a shard stale.
    """
    from remaster.models.check import check_chain

    # who holds this run's locks, so that the next run can tell a killed run's lock from a live one
    preflight.record_lock_owner(getattr(workflow.persistence, "_lockfile", {}).values())
    # a model this workflow is about to train (snakemake train) is checked once it exists
    trained = Path(str((config.get("train") or {}).get("output", "")))
    checked = {}
    needs = {}
    for disc, master in MASTERS.items():
        upscale = master.settings.upscale
        key = (upscale.models, upscale.scale, upscale.precision, upscale.tile)
        steps = [s for s in upscale.models if s.path.exists() or s.path != trained]
        try:
            if key not in checked and len(steps) == len(upscale.models):
                checked[key] = check_chain(
                    steps,
                    scale=upscale.scale,
                    precision=upscale.precision,
                    tile=upscale.tile,
                ).scale
            if master.settings.interpolate.enabled:
                from remaster.models.rife import load_ifnet

                load_ifnet(master.settings.interpolate.model)
        except RemasterError as error:
            preflight.fail(
                f"{master.output}: {error}" if len(MASTERS) > 1 else str(error)
            )
        frontend = master.settings.frontend
        needs[disc] = remaster_disk.master_need(
            # the title this master reads, not every title set of the disc
            title_seconds(
                master.source,
                media.tool("ffprobe"),
                title_number=master.settings.title_number,
                angle=master.settings.angle,
            ),
            # a chain about to be trained: its scale is not known yet, ×4 is the most a DVD gets
            checked.get(key) or upscale.scale or 4,
            SHARD_FRAMES,
            KEEP_UPSCALED,
            field_rate=frontend.scan == "interlaced"
            and frontend.deinterlace_rate == "field",
            form=upscale.form,
        )
    # the whole run's need against the free space, before the first job (each shard checks again)
    try:
        total = remaster_disk.check_run(needs, Path("results"))
    except RemasterError as error:
        preflight.fail(str(error))
    logger.info(
        f"disk: the run needs about {total / 1e9:.1f} GB for {len(needs)} master(s) "
        f"(keep_upscaled: {str(KEEP_UPSCALED).lower()})"
    )
