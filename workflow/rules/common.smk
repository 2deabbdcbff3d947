"""Config loading and input functions; no rules here, and nothing heavy (this runs in every job)."""

import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

from remaster import preflight
from remaster import settings as remaster_settings
from remaster.errors import RemasterError
from remaster.shards import shard_names
from remaster.source import resolve_source

# every mistake in the config or the machine is one line (preflight.fail), never a traceback
try:
    preflight.check_config_keys(
        config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    )
except RemasterError as error:
    preflight.fail(str(error))

validate(config, "../schemas/config.schema.yaml")

try:
    SETTINGS = remaster_settings.from_config(config)
    SOURCE = resolve_source(SETTINGS.source)
    preflight.check_output(SETTINGS.output)
    FFMPEG = preflight.check_tools(SOURCE.kind)
except RemasterError as error:
    preflight.fail(str(error))

logger.info(f"ffmpeg: {FFMPEG}")

# a run killed by SIGKILL or a power loss leaves Snakemake's lock: remove it when its process is gone
for stale in preflight.clear_stale_locks():
    logger.warning(f"removed the lock of a killed run: {stale}")

DISC = SETTINGS.disc
RESULTS = f"results/{DISC}"
LOGS = f"logs/{DISC}"
BENCHMARKS = f"benchmarks/{DISC}"
MASTER = str(SETTINGS.output)
ENV = "../envs/remaster.yaml"
PROBE = f"{RESULTS}/probe_source/probe.json"
PLAN = f"{RESULTS}/plan_disc/plan.json"
PREPARED = f"{RESULTS}/prepare_title/prepared.json"


wildcard_constraints:
    shard=r"\d{4}",


def title_file(wildcards=None):
    """The file the rest of the workflow reads: the DVD title as read_title wrote it, or the user's file as is."""
    if SOURCE.needs_reading:
        return f"{RESULTS}/read_title/{SOURCE.title_name}"
    return str(SOURCE.parts[0])


@lru_cache
def _read_probe(path):
    with open(path) as handle:
        return json.load(handle)


def prepared_data():
    """The prepared title's facts (frame count, rate), once the prepare_title checkpoint has run."""
    return _read_probe(checkpoints.prepare_title.get().output.facts)


def probe_data():
    """The probe's JSON; it exists whenever the prepare_title checkpoint has run."""
    checkpoints.prepare_title.get()
    return _read_probe(PROBE)


def shards(wildcards=None):
    return shard_names(prepared_data()["frame_count"], SETTINGS.shard_frames)


def upscaled_shards(wildcards):
    return expand(f"{RESULTS}/upscale_shard/{{shard}}.mkv", shard=shards())


def following_upscaled_shard(wildcards):
    """The next shard's upscaled file, whose first frame closes a shard's last interpolated pair; none after the last."""
    names = shards()
    index = names.index(wildcards.shard)
    return (
        f"{RESULTS}/upscale_shard/{names[index + 1]}.mkv"
        if index + 1 < len(names)
        else []
    )


def encoded_shards(wildcards):
    return expand(f"{RESULTS}/encode_shard/{{shard}}.mkv", shard=shards())


def audio_tracks(wildcards):
    """The copied audio tracks, when the title has any."""
    return f"{RESULTS}/extract_audio/audio.mka" if probe_data()["audio"] else []


def subtitle_tracks(wildcards):
    """The copied subtitle streams and closed captions, when the title has any."""
    probe = probe_data()
    return (
        f"{RESULTS}/extract_subtitles/subtitles.mks"
        if probe["subtitles"] or probe["video"].get("closed_captions")
        else []
    )


def check_models_at_start():
    """Load every model once before any job runs: an unusable file fails the run at its start, not after hours.

    Runs in Snakemake's main process only (not in cluster jobs), so torch is imported here and not at parse
    time. The check_models rule writes the same facts for the report; it is not an input of the shard rules,
    so re-checking never makes a shard stale.
    """
    from remaster.models import check_chain

    # who holds this run's locks, so that the next run can tell a killed run's lock from a live one
    preflight.record_lock_owner(getattr(workflow.persistence, "_lockfile", {}).values())
    upscale = SETTINGS.upscale
    # a model this workflow is about to train (snakemake train) is checked once it exists
    trained = Path(str((config.get("train") or {}).get("output", "")))
    steps = [s for s in upscale.models if s.path.exists() or s.path != trained]
    try:
        if len(steps) == len(upscale.models):
            check_chain(
                steps,
                scale=upscale.scale,
                precision=upscale.precision,
                tile=upscale.tile,
            )
        if SETTINGS.interpolate.enabled:
            from remaster.rife import load_ifnet

            load_ifnet(SETTINGS.interpolate.model)
    except RemasterError as error:
        preflight.fail(str(error))
