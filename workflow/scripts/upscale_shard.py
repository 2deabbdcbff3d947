"""Snakemake adapter: run the model chain over one shard."""

import os
import socket
from dataclasses import replace
from pathlib import Path

from remaster.frames.engine import upscale_file
from remaster.frames.shards import Cut
from remaster.frontend.plan import Plan
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared

log = step_logger("upscale_shard", snakemake.log[0])
if "SLURM_JOB_ID" in os.environ or "CUDA_VISIBLE_DEVICES" in os.environ:
    # where a cluster job ran: docs/cluster.md, tests/test_slurm.py
    log.info("host %s, SLURM job %s, CUDA_VISIBLE_DEVICES=%s", socket.gethostname(),
             os.environ.get("SLURM_JOB_ID", "-"), os.environ.get("CUDA_VISIBLE_DEVICES", "-"))
with reported(log):
    colour = Plan.load(snakemake.input.plan).colour
    prepared = Prepared.load(snakemake.input.facts)
    shard = prepared.shard(snakemake.wildcards.shard)
    # the shard's frames, read from the prepared title as extract_shard found they can be
    cut = Cut.load(snakemake.input.shard)
    result = upscale_file(
        Path(snakemake.input.prepared),
        Path(snakemake.output.shard),
        expected_frames=shard.frames,
        fps=prepared.fps,
        # the prepared frames hold the source's colour as the plan decided it
        matrix=colour.decoder_matrix,
        in_range=colour.range,
        settings=snakemake.params.settings,
        label=f"shard {snakemake.wildcards.shard}",
        log=log,
        threads=snakemake.threads,
        cut=cut,
        # compiled kernels shared by the title's shards (each a new process): compiled once, loaded after
        compile_cache_dir=Path(snakemake.output.shard).parent / "compile_cache",
    )
    # the report's timings come from this record, not from the log's text
    replace(result, shard=shard.name, host=socket.gethostname()).dump(snakemake.output.result)
