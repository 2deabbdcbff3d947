"""Snakemake adapter: decide scan, rate, geometry, crop, colour, languages and chapters; say why."""

from pathlib import Path

from remaster.disc.probe import Probe
from remaster.frontend.plan import plan_title, summary
from remaster.run import media
from remaster.run.logs import reported, step_logger
from remaster.run.settings import FrontEndSettings

log = step_logger("plan_disc", snakemake.log[0])
with reported(log):
    # the settings travel as a mapping (a rule parameter: a change makes the plan stale)
    frontend = FrontEndSettings(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in snakemake.params.frontend.items()})
    plan = plan_title(Path(snakemake.input.title), Probe.load(snakemake.input.probe), frontend,
                      ffmpeg=media.tool("ffmpeg"), scale=snakemake.params.scale or 2,
                      fallback_title=snakemake.params.disc, log=log)
    for line in summary(plan):
        log.info("%s", line)
    plan.dump(snakemake.output.plan)
