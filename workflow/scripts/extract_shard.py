"""Snakemake adapter: how the upscale job reads one shard's frames of the prepared title (no copy of them)."""

from pathlib import Path

from remaster.frames.shards import plan_cut
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared

log = step_logger("extract_shard", snakemake.log[0])
with reported(log):
    prepared = Prepared.load(snakemake.input.facts)
    shard = prepared.shard(snakemake.wildcards.shard)
    # the temporal stage's neighbours beyond the shard's edges (0 when it is off)
    cut = plan_cut(Path(snakemake.input.prepared), shard.start, shard.end, prepared.fps, log,
                   context=snakemake.params.context, total=prepared.frame_count)
    cut.dump(snakemake.output.shard)
