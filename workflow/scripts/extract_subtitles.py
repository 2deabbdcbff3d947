"""Snakemake adapter: every subtitle stream (VobSub with its palette, forced tracks marked) and the closed
captions (as text) into one Matroska file."""

from pathlib import Path

from remaster.disc.probe import Probe
from remaster.disc.subtitles import extract_subtitles
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger

log = step_logger("extract_subtitles", snakemake.log[0])
with reported(log):
    title = Path(snakemake.input.title)
    probe = Probe.load(snakemake.input.probe)
    with atomic_output(Path(snakemake.output.subtitles)) as tmp:
        extract_subtitles(title, tmp, subtitles=probe.subtitles, log=log)
    log.info("wrote the subtitle tracks of %s into %s", title, snakemake.output.subtitles)
