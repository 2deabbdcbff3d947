rule interpolate_shard:
    """RIFE between neighbouring upscaled frames (and into the next shard's first): factor × the frame rate."""
    input:
        shard=rules.upscale_shard.output.shard,
        following=following_upscaled_shard,
        facts=PREPARED,
        model=[str(SETTINGS.interpolate.model)] if SETTINGS.interpolate.enabled else [],
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
        interpolation=SETTINGS.interpolate.staleness_key(),
        # a dataclass, which Snakemake does not compare: device, precision or batch changes redo nothing
        settings=SETTINGS.interpolate,
        shard_frames=SETTINGS.shard_frames,
    script:
        "../scripts/interpolate_shard.py"
