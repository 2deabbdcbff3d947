"""Snakemake adapter: join the encoded shards, the audio and subtitle tracks and the chapters into the master."""

import logging
from pathlib import Path

from remaster.disc.probe import Probe
from remaster.frontend.cadence import frame_times
from remaster.frontend.plan import Plan
from remaster.output.mux import (
    chapters_metadata,
    concat_list,
    extra_subtitle_names,
    mux_command,
    retime_commands,
    timestamps_v2,
    track_offsets,
)
from remaster.run import media
from remaster.run.errors import RemasterError
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared

log = step_logger("mux_master", snakemake.params.log)
# the rule's own log too (named by the master's path), beside the disc's folder of logs
_handler = logging.FileHandler(snakemake.log[0], mode="w")
_handler.setFormatter(log.handlers[0].formatter)
log.addHandler(_handler)
with reported(log):
    probe = Probe.load(snakemake.input.probe)
    plan = Plan.load(snakemake.input.plan)
    prepared = Prepared.load(snakemake.input.facts)
    output = Path(snakemake.output.master)
    output.parent.mkdir(parents=True, exist_ok=True)
    list_file = output.with_name(f".{output.name}.shards.txt")
    list_file.write_text(concat_list([Path(p) for p in snakemake.input.shards]))
    chapters_file = output.with_name(f".{output.name}.chapters.txt")
    subtitle_start = None
    if snakemake.input.get("subtitles"):
        # extract_subtitles keeps the title's clock (-copyts): place the file by its own start
        try:
            subtitle_start = float(media.ffprobe_json(snakemake.input.subtitles)["format"]["start_time"])
        except (KeyError, TypeError, ValueError):  # ffprobe knows no start: the subpicture streams' then
            pass
    # keep the source's sync: every kind of track starts as late after the source's start as it did there
    offsets = track_offsets(probe, subtitle_start)
    video_offset = offsets["video"]
    if plan.chapters:
        chapters_file.write_text(chapters_metadata([c + video_offset for c in plan.chapters],
                                                   video_offset + prepared.duration))
    factor = snakemake.params.factor
    vfr = prepared.vfr
    retimed = output.with_name(f".{output.name}.video.mkv")
    joined = output.with_name(f".{output.name}.joined.mkv")
    times_file = output.with_name(f".{output.name}.timestamps.txt")
    try:
        if vfr:
            # a hybrid title: film at 23.976 and video at the field rate, each frame at its real time
            times_file.write_text(timestamps_v2(frame_times(prepared.timed, factor)))
            for cmd in retime_commands(list_file, joined, times_file, retimed):
                media.run(cmd, what=f"{output}: giving the video its frame times")
            log.info("variable rate: %d sections with real frame times (%s)", len(prepared.timed),
                     ", ".join(f"{s.kind} {s.frames * factor} frames" for s in prepared.timed))
        with atomic_output(output) as tmp:
            cmd = mux_command(
                list_file, tmp, plan=plan, offsets=offsets, video=retimed if vfr else None,
                audio=Path(snakemake.input.audio) if snakemake.input.get("audio") else None,
                subtitles=Path(snakemake.input.subtitles) if snakemake.input.get("subtitles") else None,
                chapters=chapters_file if plan.chapters else None,
            )
            if snakemake.input.get("subtitles"):
                # tracks extract_subtitles adds after the title's own (forced-only copies, closed captions) keep
                # the language and name it gave them; the plan names only the title's own
                streams = media.ffprobe_json(snakemake.input.subtitles).get("streams", [])
                named = extra_subtitle_names(streams, len(plan.subtitles))
                at = cmd.index("-map_metadata") + 2
                cmd[at:at] = named
            media.run(cmd, what=f"{output}: muxing")
            frames = media.count_packets(tmp)
            expected = prepared.frame_count * factor
            if frames != expected:
                raise RemasterError(f"{output}: the master holds {frames} frames, expected {expected} "
                                    f"(the prepared title's {prepared.frame_count} × interpolate.factor)")
    finally:
        for scratch in (list_file, chapters_file, retimed, joined, times_file):
            scratch.unlink(missing_ok=True)
    log.info("track offsets from the source's start: %s", offsets)
    log.info("wrote %s: %d frames at %s fps, %d audio, %d subtitle tracks, %d chapters, title %r", output, frames,
             "variable" if vfr else prepared.fps, len(plan.audio), len(plan.subtitles), len(plan.chapters), plan.title)
