"""Snakemake adapter: one master's summary pages for the report (probe, per-shard timings, disk used)."""

from pathlib import Path

from remaster.disc.probe import Probe
from remaster.frontend.plan import Plan
from remaster.output import report
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared, ShardResult

log = step_logger("summarize_run", snakemake.log[0])
with reported(log):
    probe = Probe.load(snakemake.input.probe)
    params = snakemake.params
    plan = Plan.load(snakemake.input.plan)
    prepared = Prepared.load(snakemake.input.facts)
    disc = params.disc
    results = Path(params.results)

    def write(path, text):
        with atomic_output(Path(path)) as tmp:
            tmp.write_text(text)

    write(snakemake.output.probe, report.probe_page(probe, disc=disc, shard_frames=params.shard_frames,
                                                    shards=len(prepared.shards), models=params.models,
                                                    scale=params.scale, plan=plan, facts=prepared.facts()))

    # what each upscale job recorded beside its shard (ShardResult), not what its log says
    timings = report.shard_timings([ShardResult.load(path) for path in snakemake.input.results],
                                   Path(params.benchmarks))
    write(snakemake.output.timings_tsv, report.tsv(report.TIMING_COLUMNS, timings))
    frames = sum(row[1] or 0 for row in timings)
    seconds = sum(row[2] or 0 for row in timings)
    overall = f"<p>{frames:,} frames upscaled in {seconds:,.0f} s of shard time"
    overall += f" ({frames / seconds:.2f} fps overall).</p>" if seconds else ".</p>"
    write(snakemake.output.timings, report.page(f"{disc}: per-shard timings",
                                                ("Upscale and encode", overall
                                                 + report.table(report.TIMING_COLUMNS, timings))))

    disk = report.disk_usage(results, Path(snakemake.input.master))
    write(snakemake.output.disk_tsv, report.tsv(report.DISK_COLUMNS, disk))
    write(snakemake.output.disk, report.page(f"{disc}: disk used", ("Folders", report.table(report.DISK_COLUMNS,
                                                                                             disk))))
    log.info("summarised %d shards (%d frames, %.0f s); %s bytes under %s", len(prepared.shards), frames, seconds,
             f"{next(row[2] for row in disk if row[0] == 'total'):,}", results)
