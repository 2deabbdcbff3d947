"""Snakemake adapter: run the model chain over one shard."""

import json
from pathlib import Path

from remaster.engine import upscale_file
from remaster.logs import reported, step_logger
from remaster.probe import yuv_matrix
from remaster.shards import shard_bounds

log = step_logger("upscale_shard", snakemake.log[0])
with reported(log):
    probe = json.loads(Path(snakemake.input.probe).read_text())
    start, end = shard_bounds(probe["frame_count"], snakemake.params.shard_frames, int(snakemake.wildcards.shard))
    upscale_file(
        Path(snakemake.input.shard),
        Path(snakemake.output.shard),
        expected_frames=end - start,
        fps=probe["video"]["fps"],
        matrix=yuv_matrix(probe["video"]),
        settings=snakemake.params.settings,
        label=f"shard {snakemake.wildcards.shard}",
        log=log,
        threads=snakemake.threads,
    )
