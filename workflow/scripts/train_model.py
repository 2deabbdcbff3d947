"""Snakemake adapter: train the model on the pairs and export it as .safetensors."""

from pathlib import Path

from remaster.run.logs import reported, step_logger

log = step_logger("train", snakemake.log[0])
with reported(log):
    import torch

    from remaster.run.settings import TrainSettings
    from remaster.training.train import train

    torch.set_num_threads(snakemake.threads)

    settings = TrainSettings.from_config({**snakemake.params.settings, "device": snakemake.params.device})
    train(Path(snakemake.input.pairs), Path(snakemake.output.model), Path(snakemake.output.metrics).parent, settings,
          log=log)
