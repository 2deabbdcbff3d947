"""Snakemake adapter: describe the title (probe.json), with the IFO facts of the title read_title chose."""

import json
from pathlib import Path

from remaster.disc.probe import disc_facts, probe_title
from remaster.disc.reader import Disc
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger

log = step_logger("probe_source", snakemake.log[0])
with reported(log):
    title = Path(snakemake.input.title)
    description, timestamps = probe_title(title)
    description["source_parts"] = list(snakemake.params.parts)
    # the disc record read_title wrote (none for a single video file): the title it chose, never chosen again
    description["disc"] = disc_facts(Disc.load(snakemake.input.disc) if snakemake.input.get("disc") else None)
    video = description["video"]
    log.info(
        "%s: %d frames, %dx%d %s, %s fps, SAR %s, DAR %s, field order flag %s, %d audio, %d subtitle, %d chapters",
        title, description["frame_count"], video["width"], video["height"], video["codec"], video["fps"],
        video["sar"], video["dar"], video["field_order"], len(description["audio"]), len(description["subtitles"]),
        len(description["chapters"]) or len(description["disc"].get("chapters", [])),
    )
    for track in description["audio"]:
        log.info("audio %s: %s, starts %+.3f s from the video", track["id"], track["codec"],
                 track["start_time"] - video["start_time"])
    with atomic_output(Path(snakemake.output.frames)) as tmp:
        tmp.write_text("".join(f"{t:.6f}\n" for t in timestamps))
    with atomic_output(Path(snakemake.output.probe)) as tmp:
        tmp.write_text(json.dumps(description, indent=2))
