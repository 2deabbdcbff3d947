"""Snakemake adapter: copy every audio track, bit for bit, into one Matroska audio file."""

from pathlib import Path

from remaster import media
from remaster.logs import reported, step_logger
from remaster.shards import atomic_output

log = step_logger("extract_audio", snakemake.log[0])
with reported(log):
    title = Path(snakemake.input.title)
    # -copyts keeps each track's own start time; the mux places it relative to the video
    with atomic_output(Path(snakemake.output.audio)) as tmp:
        cmd = media.ffmpeg_args(*media.PROBE_ARGS, "-copyts", "-i", media.input_path(title), "-map", "0:a", "-c", "copy", "-f", "matroska", tmp)
        media.run(cmd, what=f"{title}: copying the audio tracks")
    log.info("copied the audio tracks of %s into %s", title, snakemake.output.audio)
