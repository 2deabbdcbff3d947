"""Snakemake adapter: join the encoded shards, the audio tracks and the chapters into the master."""

import json
from pathlib import Path

from remaster import media
from remaster.encode import concat_list, mux_command
from remaster.errors import RemasterError
from remaster.logs import reported, step_logger
from remaster.shards import atomic_output

log = step_logger("mux_master", snakemake.log[0])
with reported(log):
    probe = json.loads(Path(snakemake.input.probe).read_text())
    output = Path(snakemake.output.master)
    output.parent.mkdir(parents=True, exist_ok=True)
    list_file = Path(snakemake.output.master).with_name(f".{output.name}.shards.txt")
    list_file.write_text(concat_list([Path(p) for p in snakemake.input.shards]))
    # keep the source's sync: the video starts as late after the file's start as it did on the disc
    video_offset = probe["video"]["start_time"] - probe["format"]["start_time"]
    try:
        with atomic_output(output) as tmp:
            cmd = mux_command(
                list_file, tmp, video_offset=max(video_offset, 0.0),
                audio=Path(snakemake.input.audio) if snakemake.input.get("audio") else None,
                probe=probe, chapters_from=Path(probe["title_file"]) if probe["chapters"] else None,
                title=probe["format"].get("title") or snakemake.params.disc,
            )
            media.run(cmd, what=f"{output}: muxing")
            frames = media.count_packets(tmp)
            if frames != probe["frame_count"]:
                raise RemasterError(f"{output}: the master holds {frames} frames, the source {probe['frame_count']}")
    finally:
        list_file.unlink(missing_ok=True)
    log.info("wrote %s: %d frames, %d audio tracks, %d chapters", output, frames, len(probe["audio"]),
             len(probe["chapters"]))
