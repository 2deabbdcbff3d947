"""Snakemake adapter: read the title every later step works on (a DVD title as a player plays it, or VOBs joined)
and write the disc record that says which title it is."""

from pathlib import Path

from remaster.disc.reader import read_title
from remaster.disc.source import Source
from remaster.run.logs import reported, step_logger

log = step_logger("read_title", snakemake.log[0])
with reported(log):
    parts = tuple(Path(p) for p in snakemake.input.vobs)
    # a VIDEO_TS title is read through the folder's IFOs, next to its VOBs; VOB files are joined in order (a
    # rip's folder without IFOs named for the disc record)
    folder = Path(snakemake.params.folder) if snakemake.params.folder else None
    source = Source(parts, snakemake.params.kind, folder)
    disc = read_title(source, Path(snakemake.output.title), title_number=snakemake.params.title_number,
                      angle=snakemake.params.angle, log=log)
    disc.dump(snakemake.output.disc)
