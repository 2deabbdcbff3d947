"""Snakemake adapter: every audio track into one Matroska audio file, bit for bit (LPCM losslessly as FLAC)."""

from pathlib import Path

from remaster.disc.probe import Probe
from remaster.disc.reader import audio_codec_args
from remaster.run import media
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger

# a packet whose time does not pass the one before it (a PAL disc's duplicated audio PTS) moves one tick on:
# every stream of the master has strictly increasing timestamps
STRICTLY_INCREASING = "setts=ts='if(gt(N,0)*lte(PTS,PREV_OUTPTS),PREV_OUTPTS+1,PTS)'"

log = step_logger("extract_audio", snakemake.log[0])
with reported(log):
    title = Path(snakemake.input.title)
    probe = Probe.load(snakemake.input.probe)
    codecs = audio_codec_args([track.codec for track in probe.audio])
    # -copyts keeps each track's own start time; the mux places it relative to the video
    with atomic_output(Path(snakemake.output.audio)) as tmp:
        cmd = media.ffmpeg_args(*media.PROBE_ARGS, "-copyts", "-i", media.input_path(title), "-map", "0:a",
                                "-c", "copy", *codecs, "-bsf:a", STRICTLY_INCREASING, "-f", "matroska", tmp)
        media.run(cmd, what=f"{title}: copying the audio tracks")
    for n, track in enumerate(probe.audio):
        kept = "copied" if codecs[2 * n + 1] == "copy" else "converted losslessly to FLAC"
        log.info("audio %d: %s %s", n, track.codec, kept)
    log.info("wrote the audio tracks of %s into %s", title, snakemake.output.audio)
