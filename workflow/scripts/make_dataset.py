"""Snakemake adapter: aligned lr/hr pairs from two releases of the same content."""

from pathlib import Path

from remaster.run.logs import reported, step_logger
from remaster.training.dataset import make_pairs

log = step_logger("dataset", snakemake.log[0])
with reported(log):
    params = snakemake.params
    make_pairs(Path(snakemake.input.lr), Path(snakemake.input.hr), Path(snakemake.output.pairs),
               scale=int(params.scale), pairs=int(params.pairs), val_fraction=float(params.val_fraction),
               max_offset=float(params.max_offset), search=int(params.search),
               min_correlation=float(params.min_correlation), log=log)
