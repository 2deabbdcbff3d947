# Training an upscaler for one's own footage (docs/training.md): not part of `all`, run as
# `snakemake dataset`, `snakemake degrade`, `snakemake train`. The config's `train:` mapping drives them.
# Their helpers are in train_inputs.smk, not common.smk: they serve these three rules only.


include: "train_inputs.smk"


rule dataset:
    """Aligned lr/hr frame pairs from a low- and a high-quality release of the same content."""
    input:
        unpack(release_pair),
    output:
        # a folder of hundreds of PNG pairs is the dataset's natural form (and what other trainers read)
        pairs=directory(f"{TRAIN_RESULTS}/dataset"),
    log:
        f"{TRAIN_LOGS}/dataset.log",
    conda:
        ENV
    params:
        scale=TRAIN["scale"],
        pairs=TRAIN["pairs"],
        val_fraction=TRAIN["val_fraction"],
        max_offset=TRAIN["max_offset"],
        search=TRAIN["search"],
        min_correlation=TRAIN["min_correlation"],
    script:
        "../scripts/make_dataset.py"


rule degrade:
    """Clean frames and their synthetically degraded copies, reproducible from the seed."""
    input:
        clean=TRAIN["clean_frames"] or DEMO_PHOTOS,
    output:
        pairs=directory(f"{TRAIN_RESULTS}/degrade"),
    log:
        f"{TRAIN_LOGS}/degrade.log",
    conda:
        ENV
    params:
        degradations=TRAIN["degradations"],
        seed=TRAIN["seed"],
        val_fraction=TRAIN["val_fraction"],
    script:
        "../scripts/degrade_frames.py"


rule train:
    """A spandrel-loadable model trained on the pairs, checkpointed and resumable, validated per checkpoint."""
    input:
        pairs=training_pairs,
    output:
        model=TRAIN["output"],
        metrics=f"{TRAIN_RESULTS}/train/metrics.tsv",
    log:
        f"{TRAIN_LOGS}/train.log",
    benchmark:
        f"{TRAIN_RESULTS}/train/benchmark.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=1440,
    params:
        # what the weights depend on: a change retrains (checkpoints of other settings are set aside)
        settings={key: TRAIN[key] for key in TrainSettings.weights_keys()},
        device=config["device"],
    script:
        "../scripts/train_model.py"
