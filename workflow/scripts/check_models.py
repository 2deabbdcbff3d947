"""Snakemake adapter: load every model of the chain once and record what it is, before any frame is decoded."""

from remaster.run.logs import reported, step_logger

log = step_logger("check_models", snakemake.log[0])
with reported(log):
    from remaster.models.check import check_chain

    settings = snakemake.params.settings
    # the run path's loader, each step proven on the CPU at the precisions a GPU would try (the GPU jobs
    # prove theirs again on their own device before their first frame)
    report = check_chain(list(settings.models), scale=settings.scale, precision=settings.precision,
                         tile=settings.tile, log=log)
    for number, step in enumerate(report.steps, start=1):
        log.info("step %d: %s: %s ×%d, %s parameters, claims %s, proven %s on %s", number, step.file,
                 step.architecture, step.scale, f"{step.parameters:,}", ", ".join(step.precisions),
                 step.proven_precision, step.proven_on)
    log.info("chain ×%d, output ×%g", report.chain_scale, report.scale)
    report.dump(snakemake.output.report)
