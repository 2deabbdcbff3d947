"""Snakemake adapter: cut one shard of frames out of the prepared title."""

from pathlib import Path

from remaster.logs import reported, step_logger
from remaster.records import Prepared
from remaster.shards import cut_shard

log = step_logger("extract_shard", snakemake.log[0])
with reported(log):
    prepared = Prepared.load(snakemake.input.facts)
    shard = prepared.shard(snakemake.wildcards.shard)
    cut_shard(Path(snakemake.input.prepared), Path(snakemake.output.shard), shard.start, shard.end, prepared.fps, log)
