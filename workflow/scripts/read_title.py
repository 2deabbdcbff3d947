"""Snakemake adapter: read the title every later step works on (a DVD title as a player plays it, or VOBs joined)."""

from pathlib import Path

from remaster.logs import reported, step_logger
from remaster.reader import read_title
from remaster.source import resolve_source

log = step_logger("read_title", snakemake.log[0])
with reported(log):
    read_title(resolve_source(snakemake.params.source), Path(snakemake.output.title),
               title_number=snakemake.params.title_number, angle=snakemake.params.angle, log=log)
