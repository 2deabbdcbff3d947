"""Snakemake adapter: before/after stills of a few frames spread over the title, and a flip animation."""

import json
from pathlib import Path

from remaster.disc.probe import Probe
from remaster.frontend.plan import Plan
from remaster.output.preview import make_preview
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger

log = step_logger("preview", snakemake.log[0])
with reported(log):
    probe = Probe.load(snakemake.input.probe)
    plan = Plan.load(snakemake.input.plan)
    timestamps = [float(line) for line in Path(snakemake.input.frames).read_text().split()]
    shown = make_preview(
        Path(snakemake.input.title), probe, timestamps, snakemake.params.settings,
        [Path(p) for p in snakemake.output.stills], Path(snakemake.output.flip), log, plan=plan,
        threads=snakemake.threads,
    )
    with atomic_output(Path(snakemake.output.frames)) as tmp:
        tmp.write_text(json.dumps(shown, indent=2) + "\n")
