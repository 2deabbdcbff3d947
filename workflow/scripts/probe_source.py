"""Snakemake adapter: describe the title (probe.json) and record every frame's timestamp."""

import json
from pathlib import Path

from remaster.logs import reported, step_logger
from remaster.probe import probe_title
from remaster.shards import atomic_output, shard_count

log = step_logger("probe_source", snakemake.log[0])
with reported(log):
    title = Path(snakemake.input.title)
    description, timestamps = probe_title(title)
    description["source_parts"] = list(snakemake.params.parts)
    video = description["video"]
    log.info(
        "%s: %d frames, %dx%d %s, %s fps, SAR %s, DAR %s, field order %s, %d audio, %d subtitle, %d chapters",
        title, description["frame_count"], video["width"], video["height"], video["codec"], video["fps"],
        video["sar"], video["dar"], video["field_order"], len(description["audio"]), len(description["subtitles"]),
        len(description["chapters"]),
    )
    log.info("%d shards of up to %d frames", shard_count(description["frame_count"], snakemake.params.shard_frames),
             snakemake.params.shard_frames)
    with atomic_output(Path(snakemake.output.frames)) as tmp:
        tmp.write_text("".join(f"{t:.6f}\n" for t in timestamps))
    with atomic_output(Path(snakemake.output.probe)) as tmp:
        tmp.write_text(json.dumps(description, indent=2))
