"""Snakemake adapter: join the encoded shards, the audio and subtitle tracks and the chapters into the master."""

import json
import logging
from pathlib import Path

from remaster import media
from remaster.encode import chapters_metadata, concat_list, mux_command
from remaster.errors import RemasterError
from remaster.logs import reported, step_logger
from remaster.shards import atomic_output

log = step_logger("mux_master", snakemake.params.log)
# the rule's own log too (named by the master's path), beside the disc's folder of logs
_handler = logging.FileHandler(snakemake.log[0], mode="w")
_handler.setFormatter(log.handlers[0].formatter)
log.addHandler(_handler)
with reported(log):
    probe = json.loads(Path(snakemake.input.probe).read_text())
    plan = json.loads(Path(snakemake.input.plan).read_text())
    facts = json.loads(Path(snakemake.input.facts).read_text())
    output = Path(snakemake.output.master)
    output.parent.mkdir(parents=True, exist_ok=True)
    list_file = output.with_name(f".{output.name}.shards.txt")
    list_file.write_text(concat_list([Path(p) for p in snakemake.input.shards]))
    chapters_file = output.with_name(f".{output.name}.chapters.txt")
    # keep the source's sync: every kind of track starts as late after the source's start as it did there
    zero = probe["format"]["start_time"]
    offsets = {
        "video": max(probe["video"]["start_time"] - zero, 0.0),
        "audio": max(min((a["start_time"] for a in probe["audio"]), default=zero) - zero, 0.0),
        "subtitles": max(min((s.get("start_time", zero) for s in probe["subtitles"]), default=zero) - zero, 0.0),
    }
    video_offset = offsets["video"]
    if plan["chapters"]:
        chapters_file.write_text(chapters_metadata([c + video_offset for c in plan["chapters"]],
                                                   video_offset + facts["duration"]))
    try:
        with atomic_output(output) as tmp:
            cmd = mux_command(
                list_file, tmp, plan=plan, offsets=offsets,
                audio=Path(snakemake.input.audio) if snakemake.input.get("audio") else None,
                subtitles=Path(snakemake.input.subtitles) if snakemake.input.get("subtitles") else None,
                chapters=chapters_file if plan["chapters"] else None,
            )
            media.run(cmd, what=f"{output}: muxing")
            frames = media.count_packets(tmp)
            expected = facts["frame_count"] * snakemake.params.get("factor", 1)
            if frames != expected:
                raise RemasterError(f"{output}: the master holds {frames} frames, expected {expected} "
                                    f"(the prepared title's {facts['frame_count']} × interpolate.factor)")
    finally:
        list_file.unlink(missing_ok=True)
        chapters_file.unlink(missing_ok=True)
    log.info("track offsets from the source's start: %s", offsets)
    log.info("wrote %s: %d frames at %s fps, %d audio, %d subtitle tracks, %d chapters, title %r", output, frames,
             facts["fps"], len(plan["audio"]), len(plan["subtitles"]), len(plan["chapters"]), plan["title"])
