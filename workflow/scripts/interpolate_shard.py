"""Snakemake adapter: interpolate one upscaled shard to factor × its frame rate."""

from pathlib import Path

from remaster.frames.interpolate import interpolate_file
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared

log = step_logger("interpolate_shard", snakemake.log[0])
with reported(log):
    prepared = Prepared.load(snakemake.input.facts)
    shard = prepared.shard(snakemake.wildcards.shard)
    interpolate_file(
        Path(snakemake.input.shard),
        Path(snakemake.output.shard),
        following=Path(snakemake.input.following) if snakemake.input.get("following") else None,
        expected_frames=shard.frames,
        fps=prepared.fps,
        settings=snakemake.params.settings,
        label=f"shard {snakemake.wildcards.shard}",
        log=log,
        threads=snakemake.threads,
    )
