rule interpolate_shard:
    """RIFE between neighbouring upscaled frames (and into the next shard's first): factor × the frame rate."""
    input:
        shard=rules.upscale_shard.output.shard,
        following=following_upscaled_shard,
        facts=PREPARED,
        model=lambda wildcards: (
            [str(settings(wildcards).interpolate.model)]
            if settings(wildcards).interpolate.enabled
            else []
        ),
    output:
        shard=f"{RESULTS}/interpolate_shard/{{shard}}.mkv",
    log:
        f"{LOGS}/interpolate_shard/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/interpolate_shard/{{shard}}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    params:
        # what changes the frames (factor, model, thresholds): a change redoes every interpolated shard
        interpolation=per_disc(lambda s: s.interpolate.staleness_key()),
        # a dataclass, which Snakemake does not compare: device, precision or batch changes redo nothing
        settings=per_disc(lambda s: s.interpolate),
    script:
        "../scripts/interpolate_shard.py"
