"""Config loading and input functions; no rules here, and nothing heavy (this runs in every job)."""

import json
from dataclasses import asdict
from functools import lru_cache

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from remaster import settings as remaster_settings
from remaster.errors import RemasterError
from remaster.shards import shard_names
from remaster.source import resolve_source

validate(config, "../schemas/config.schema.yaml")

try:
    SETTINGS = remaster_settings.from_config(config)
    SOURCE = resolve_source(SETTINGS.source)
except RemasterError as error:
    raise WorkflowError(str(error)) from None

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
    """The file the rest of the workflow reads: the joined VOBs, or the user's single file as is."""
    if SOURCE.needs_concat:
        return f"{RESULTS}/concat_vobs/title.vob"
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


def encoded_shards(wildcards):
    return expand(f"{RESULTS}/encode_shard/{{shard}}.mkv", shard=shards())


def audio_tracks(wildcards):
    """The copied audio tracks, when the title has any."""
    return f"{RESULTS}/extract_audio/audio.mka" if probe_data()["audio"] else []


def subtitle_tracks(wildcards):
    """The copied subtitle streams, when the title has any."""
    return (
        f"{RESULTS}/extract_subtitles/subtitles.mks"
        if probe_data()["subtitles"]
        else []
    )


def check_models_at_start():
    """Load every model once before any job runs: an unusable file fails the run at its start, not after hours.

    Runs in Snakemake's main process only (not in cluster jobs), so torch is imported here and not at parse
    time. The check_models rule writes the same facts for the report; it is not an input of the shard rules,
    so re-checking never makes a shard stale.
    """
    from remaster.models import check_chain

    upscale = SETTINGS.upscale
    try:
        check_chain(
            list(upscale.models),
            scale=upscale.scale,
            precision=upscale.precision,
            tile=upscale.tile,
        )
    except RemasterError as error:
        raise WorkflowError(str(error)) from None
