"""Snakemake adapter: join the title's VOBs in play order."""

from pathlib import Path

from remaster.logs import reported, step_logger
from remaster.shards import concat_files

log = step_logger("concat_vobs", snakemake.log[0])
with reported(log):
    parts = [Path(p) for p in snakemake.input.vobs]
    log.info("joining %d VOBs: %s", len(parts), ", ".join(p.name for p in parts))
    concat_files(parts, Path(snakemake.output.title))
    log.info("wrote %s (%d bytes)", snakemake.output.title, Path(snakemake.output.title).stat().st_size)
