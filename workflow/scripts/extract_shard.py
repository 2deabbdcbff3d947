"""Snakemake adapter: cut one shard of frames out of the prepared title."""

import json
from pathlib import Path

from remaster.logs import reported, step_logger
from remaster.shards import cut_shard, shard_bounds

log = step_logger("extract_shard", snakemake.log[0])
with reported(log):
    facts = json.loads(Path(snakemake.input.facts).read_text())
    start, end = shard_bounds(facts["frame_count"], snakemake.params.shard_frames, int(snakemake.wildcards.shard))
    cut_shard(Path(snakemake.input.prepared), Path(snakemake.output.shard), start, end, facts["fps"], log)
