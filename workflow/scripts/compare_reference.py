"""Snakemake adapter: score the master against the reference release, per shard, for the report."""

from pathlib import Path

import numpy as np
from PIL import Image

from remaster.output import reference
from remaster.run.errors import RemasterError
from remaster.run.files import atomic_output
from remaster.run.logs import reported, step_logger
from remaster.run.records import Prepared

log = step_logger("compare_reference", snakemake.log[0])
with reported(log):
    prepared = Prepared.load(snakemake.input.facts)
    work = Path(snakemake.output.tsv).parent
    found = reference.compare(
        Path(snakemake.input.master), Path(snakemake.input.prepared), prepared, Path(snakemake.input.reference),
        factor=snakemake.params.factor, crops=len(snakemake.output.crops), work=work, log=log)
    if not found.crops:
        raise RemasterError(f"{snakemake.input.reference}: no crop could be cut (no scored frame decoded in all three)")
    # as many crops as the rule declares: a title too short for them repeats its last one
    images = found.crops + found.crops[-1:] * (len(snakemake.output.crops) - len(found.crops))
    for path, image in zip(snakemake.output.crops, images):
        with atomic_output(Path(path)) as tmp:
            Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
    with atomic_output(Path(snakemake.output.tsv)) as tmp:
        tmp.write_text(reference.to_tsv(found.scores))
    with atomic_output(Path(snakemake.output.html)) as tmp:
        tmp.write_text(reference.reference_page(snakemake.wildcards.disc, Path(snakemake.input.reference), found.timing,
                                                found.scores, found.size, [Path(p).name for p in snakemake.output.crops],
                                                found.framing))
    total = reference.overall(found.scores)
    log.info("overall over %d frames: master VMAF %.2f PSNR %.2f dB; player VMAF %.2f PSNR %.2f dB",
             total["frames"], total["vmaf"], total["psnr"], total["player_vmaf"], total["player_psnr"])
