"""Snakemake adapter: cut one shard of frames, losslessly, out of the title."""

import json
from pathlib import Path

from remaster.logs import reported, step_logger
from remaster.shards import extract_shard, shard_bounds

log = step_logger("extract_shard", snakemake.log[0])
with reported(log):
    probe = json.loads(Path(snakemake.input.probe).read_text())
    timestamps = [float(line) for line in Path(snakemake.input.frames).read_text().split()]
    start, end = shard_bounds(probe["frame_count"], snakemake.params.shard_frames, int(snakemake.wildcards.shard))
    extract_shard(Path(snakemake.input.title), Path(snakemake.output.shard), timestamps, start, end, log)
