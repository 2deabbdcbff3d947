"""Snakemake adapter: decide scan, rate, geometry, crop, colour, languages and chapters; say why."""

from pathlib import Path

from remaster.frontend.geometry import detect_crop
from remaster.frontend.measure import duration, sample_windows
from remaster.frontend.plan import make_plan, summary
from remaster.frontend.scan import PULLDOWN_MIN_FRACTION, detect_scan, hybrid_decision, pulldown_fraction
from remaster.run import media
from remaster.run.logs import reported, step_logger
from remaster.run.records import read_json
from remaster.run.settings import FrontEndSettings

log = step_logger("plan_disc", snakemake.log[0])
with reported(log):
    probe = read_json(snakemake.input.probe)
    frontend = FrontEndSettings(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in snakemake.params.frontend.items()})
    title = Path(snakemake.input.title)
    ffmpeg = media.tool("ffmpeg")
    detected = pulldown = None
    if frontend.scan == "auto":
        log.info("measuring fields with idet over the title …")
        detected = detect_scan(title, ffmpeg=ffmpeg)
    elif frontend.scan == "hybrid":
        log.info("scan: hybrid: mapping film and video frames over the whole title …")
        detected = hybrid_decision(
            title, ffmpeg=ffmpeg, order=None if frontend.field_order == "auto" else frontend.field_order)
    else:
        # a scan named in the config still needs the pulldown flags honoured (soft telecine)
        spans = sample_windows(duration(title, ffmpeg=ffmpeg), windows=6, seconds=20.0)
        pulldown = pulldown_fraction(title, ffmpeg=ffmpeg, spans=spans) > PULLDOWN_MIN_FRACTION
    crop_found = detect_crop(title, ffmpeg=ffmpeg) if frontend.crop in ("auto", "none") else None
    plan = make_plan(probe, frontend, title=title, disc_info=probe.get("disc"), detected=detected,
                     crop_found=crop_found, scale=snakemake.params.scale or 2, fallback_title=snakemake.params.disc,
                     pulldown=pulldown)
    for line in summary(plan):
        log.info("%s", line)
    plan.dump(snakemake.output.plan)
