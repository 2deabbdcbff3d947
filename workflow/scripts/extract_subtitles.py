"""Snakemake adapter: copy every subtitle stream (VobSub as is) into one Matroska file."""

from pathlib import Path

from remaster import media
from remaster.logs import reported, step_logger
from remaster.shards import atomic_output

log = step_logger("extract_subtitles", snakemake.log[0])
with reported(log):
    title = Path(snakemake.input.title)
    # -copyts keeps each track's own start time; the mux places it relative to the video
    with atomic_output(Path(snakemake.output.subtitles)) as tmp:
        cmd = media.ffmpeg_args(*media.PROBE_ARGS, "-copyts", "-i", media.input_path(title), "-map", "0:s", "-c", "copy",
                                "-f", "matroska", tmp)
        media.run(cmd, what=f"{title}: copying the subtitle streams")
    log.info("copied the subtitle streams of %s into %s", title, snakemake.output.subtitles)
