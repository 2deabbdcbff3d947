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


def probe_data():
    """The probe's JSON, once the probe checkpoint has run."""
    return _read_probe(checkpoints.probe_source.get().output.probe)


def shards(wildcards=None):
    return shard_names(probe_data()["frame_count"], SETTINGS.shard_frames)


def upscaled_shards(wildcards):
    return expand(f"{RESULTS}/upscale_shard/{{shard}}.mkv", shard=shards())


def encoded_shards(wildcards):
    return expand(f"{RESULTS}/encode_shard/{{shard}}.mkv", shard=shards())


def audio_tracks(wildcards):
    """The copied audio tracks, when the title has any."""
    return f"{RESULTS}/extract_audio/audio.mka" if probe_data()["audio"] else []
