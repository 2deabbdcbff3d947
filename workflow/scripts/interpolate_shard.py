"""Snakemake adapter: interpolate one upscaled shard to factor × its frame rate."""

import json
from pathlib import Path

from remaster.interpolate import interpolate_file
from remaster.logs import reported, step_logger
from remaster.shards import shard_bounds

log = step_logger("interpolate_shard", snakemake.log[0])
with reported(log):
    facts = json.loads(Path(snakemake.input.facts).read_text())
    start, end = shard_bounds(facts["frame_count"], snakemake.params.shard_frames, int(snakemake.wildcards.shard))
    interpolate_file(
        Path(snakemake.input.shard),
        Path(snakemake.output.shard),
        following=Path(snakemake.input.following) if snakemake.input.get("following") else None,
        expected_frames=end - start,
        fps=facts["fps"],
        settings=snakemake.params.settings,
        label=f"shard {snakemake.wildcards.shard}",
        log=log,
        threads=snakemake.threads,
    )
