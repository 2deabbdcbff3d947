"""Snakemake adapter: encode one upscaled shard with the delivery codec."""

from pathlib import Path

from remaster.frontend.plan import Plan
from remaster.output.encode import encode_command
from remaster.run import media
from remaster.run.errors import RemasterError
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger
from remaster.run.settings import EncoderSettings

log = step_logger("encode_shard", snakemake.log[0])
with reported(log):
    plan = Plan.load(snakemake.input.plan)
    upscaled = Path(snakemake.input.shard)
    encoder = EncoderSettings(**snakemake.params.encoder)
    with atomic_output(Path(snakemake.output.video)) as tmp:
        cmd = encode_command(upscaled, tmp, encoder, plan.colour)
        media.run(cmd, what=f"{upscaled}: encoding")
        expected, stored = media.count_packets(upscaled), media.count_packets(tmp)
        if stored != expected:
            raise RemasterError(f"{upscaled}: the encode holds {stored} frames, not {expected}")
    log.info("encoded %s: %d frames with %s", snakemake.output.video, stored, encoder.codec)
