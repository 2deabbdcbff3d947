"""Snakemake adapter: check the master against the probe (a failure stops the workflow) and measure flicker."""

from pathlib import Path

from remaster.disc.probe import Probe
from remaster.frontend.plan import Plan
from remaster.output import flicker as remaster_flicker
from remaster.output.report import verify_page
from remaster.output.verify import verify_master
from remaster.run.errors import RemasterError
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared

log = step_logger("verify_master", snakemake.log[0])
with reported(log):
    probe = Probe.load(snakemake.input.probe)
    plan = Plan.load(snakemake.input.plan)
    prepared = Prepared.load(snakemake.input.facts)
    result = verify_master(Path(snakemake.input.master), probe, Path(snakemake.input.title), plan=plan,
                           prepared=prepared, prepared_file=Path(snakemake.input.prepared),
                           retimed=snakemake.params.retimed,
                           interpolation_factor=snakemake.params.interpolation_factor)
    overall = result.flicker.overall
    for check in result.checks:
        log.info("%-16s %s", check.name, "ok" if check.ok else f"FAILED: {check.message}")
    if result.source_damage:
        log.warning("%s", result.damage_line())
    log.info("flicker: motion ratio %s, static-region ratio %s (master ÷ source)", overall["motion_ratio"],
             overall["static_ratio"])
    if not result.ok:
        log.info("%s", result.as_text())
        raise RemasterError(result.failure_line())
    with atomic_output(Path(snakemake.output.flicker)) as tmp:
        tmp.write_text(remaster_flicker.to_tsv(result.flicker.shards))
    with atomic_output(Path(snakemake.output.html)) as tmp:
        tmp.write_text(verify_page(result))
    # the record the report and other tools read (`Verification.load`)
    result.dump(snakemake.output.verify)
    log.info("%s: every check passed", snakemake.input.master)
