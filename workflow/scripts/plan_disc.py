"""Snakemake adapter: decide scan, rate, geometry, crop, colour, languages and chapters; say why."""

import json
from pathlib import Path

from remaster import analyse, media
from remaster.logs import reported, step_logger
from remaster.plan import make_plan, summary
from remaster.settings import FrontEndSettings
from remaster.shards import atomic_output

log = step_logger("plan_disc", snakemake.log[0])
with reported(log):
    probe = json.loads(Path(snakemake.input.probe).read_text())
    frontend = FrontEndSettings(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in snakemake.params.frontend.items()})
    title = Path(snakemake.input.title)
    ffmpeg = media.tool("ffmpeg")
    detected = pulldown = None
    if frontend.scan == "auto":
        log.info("measuring fields with idet over the title …")
        detected = analyse.detect_scan(title, ffmpeg=ffmpeg)
    elif frontend.scan == "hybrid":
        log.info("scan: hybrid: mapping film and video frames over the whole title …")
        detected = analyse.hybrid_decision(
            title, ffmpeg=ffmpeg, order=None if frontend.field_order == "auto" else frontend.field_order)
    else:
        # a scan named in the config still needs the pulldown flags honoured (soft telecine)
        spans = analyse.sample_windows(analyse.duration(title, ffmpeg=ffmpeg), windows=6, seconds=20.0)
        pulldown = analyse.pulldown_fraction(title, ffmpeg=ffmpeg, spans=spans) > analyse.PULLDOWN_MIN_FRACTION
    crop_found = analyse.detect_crop(title, ffmpeg=ffmpeg) if frontend.crop in ("auto", "none") else None
    plan = make_plan(probe, frontend, title=title, disc_info=probe.get("disc"), detected=detected,
                     crop_found=crop_found, scale=snakemake.params.scale or 2, fallback_title=snakemake.params.disc,
                     pulldown=pulldown)
    for line in summary(plan):
        log.info("%s", line)
    with atomic_output(Path(snakemake.output.plan)) as tmp:
        tmp.write_text(json.dumps(plan, indent=2, default=str))
