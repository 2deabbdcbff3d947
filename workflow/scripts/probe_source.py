"""Snakemake adapter: describe the title (probe.json), with the IFO facts of the title read_title chose."""

import dataclasses
from pathlib import Path

from remaster.disc.probe import disc_facts, probe_title
from remaster.disc.reader import Disc
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger

log = step_logger("probe_source", snakemake.log[0])
with reported(log):
    title = Path(snakemake.input.title)
    probe, timestamps = probe_title(title)
    # the disc record read_title wrote (none for a single video file): the title it chose, never chosen again
    disc = disc_facts(Disc.load(snakemake.input.disc) if snakemake.input.get("disc") else None)
    probe = dataclasses.replace(probe, source_parts=tuple(snakemake.params.parts), disc=disc)
    video = probe.video
    log.info(
        "%s: %d frames, %dx%d %s, %s fps, SAR %s, DAR %s, field order flag %s, %d audio, %d subtitle, %d chapters",
        title, probe.frame_count, video.width, video.height, video.codec, video.fps, video.sar, video.dar,
        video.field_order, len(probe.audio), len(probe.subtitles),
        len(probe.chapters) or (len(disc.chapters) if disc else 0),
    )
    for track in probe.audio:
        log.info("audio %s: %s, starts %+.3f s from the video", track.id, track.codec,
                 track.start_time - video.start_time)
    with atomic_output(Path(snakemake.output.frames)) as tmp:
        tmp.write_text("".join(f"{t:.6f}\n" for t in timestamps))
    probe.dump(snakemake.output.probe)
