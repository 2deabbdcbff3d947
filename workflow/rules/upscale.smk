rule upscale_shard:
    """The model chain over one shard, on the GPU (CPU when there is none); the costly step."""
    input:
        shard=rules.extract_shard.output.shard,
        probe=PROBE,
        facts=PREPARED,
        models=[str(step.path) for step in SETTINGS.upscale.models],
    output:
        shard=f"{RESULTS}/upscale_shard/{{shard}}.mkv",
    log:
        f"{LOGS}/upscale_shard/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/upscale_shard/{{shard}}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    params:
        # what changes the pixels: a different chain or scale makes every upscaled shard stale
        chain=SETTINGS.upscale.staleness_key(),
        # a dataclass, which Snakemake does not compare: device, batch or tile changes redo nothing
        settings=SETTINGS.upscale,
        shard_frames=SETTINGS.shard_frames,
    script:
        "../scripts/upscale_shard.py"
