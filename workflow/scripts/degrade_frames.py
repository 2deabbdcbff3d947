"""Snakemake adapter: clean frames and their synthetically degraded copies."""

from pathlib import Path

from remaster.run.logs import reported, step_logger
from remaster.training.degrade import degrade_folder

log = step_logger("degrade", snakemake.log[0])
with reported(log):
    summary = degrade_folder(Path(snakemake.input.clean), Path(snakemake.output.pairs), snakemake.params.degradations,
                             seed=int(snakemake.params.seed), val_fraction=float(snakemake.params.val_fraction), log=log)
    log.info("%d images (%d for validation), ×%d, effects: %s", summary["images"], summary["val"], summary["scale"],
             ", ".join(summary["effects"]))
