"""Snakemake adapter: make the prepared title (progressive, square pixels, constant rate) once."""

from fractions import Fraction
from pathlib import Path

from remaster.disc.probe import Probe
from remaster.frontend.plan import Plan
from remaster.frontend.prepare import damaged_ranges, prepare_title
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared

log = step_logger("prepare_title", snakemake.log[0])
with reported(log):
    probe = Probe.load(snakemake.input.probe)
    plan = Plan.load(snakemake.input.plan)
    log.info("filters: %s → %s fps", plan.filters or "(none)", plan.fps)
    if plan.hybrid:
        log.info("hybrid title: film chain %s; video chain %s; %s", plan.cadence.film, plan.cadence.video,
                 "variable rate" if plan.vfr else f"constant {plan.fps} fps (vfr: false)")
    facts = prepare_title(Path(snakemake.input.title), plan, Path(snakemake.output.prepared),
                          expected_seconds=probe.video.duration, log=log, retime=snakemake.params.retime)
    # the probe writes every frame's time next to probe.json: gaps in it are frames the disc lost
    timestamps = [float(t) for t in Path(snakemake.input.frames).read_text().split()]
    # the shard table is fixed here, once: every later step reads it from this record
    record = Prepared.from_facts({**facts, "damaged": damaged_ranges(timestamps)}, int(snakemake.params.shard_frames))
    for start, end in record.damaged:
        log.warning("damaged: %.2f-%.2f s: frames missing from the source, the last good one repeated", start, end)
    if record.repeated_frames or record.dropped_frames:
        log.warning("timestamps had gaps or overlaps (a damaged disc?): %d frames repeated, %d dropped to keep sync",
                    record.repeated_frames, record.dropped_frames)
    log.info("prepared %d frames at %s fps (%dx%d) in %.1f s", record.frame_count, record.fps, record.width,
             record.height, record.seconds)
    for section in record.timed:
        log.info("%s: %d frames from %.3f s, %.2f ms apart", section.kind, section.frames,
                 float(Fraction(section.start)), float(Fraction(section.step)) * 1000)
    record.dump(snakemake.output.facts)
    log.info("%d shards of at most %d frames", len(record.shards), snakemake.params.shard_frames)
