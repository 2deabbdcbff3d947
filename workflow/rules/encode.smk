rule encode_shard:
    """One upscaled shard in the delivery codec; shards join later by stream copy."""
    input:
        # the interpolated shard when interpolate.factor > 1, else the upscaled one
        shard=branch(
            SETTINGS.interpolate.enabled,
            then=rules.interpolate_shard.output.shard,
            otherwise=rules.upscale_shard.output.shard,
        ),
        plan=PLAN,
    output:
        video=ensure(f"{RESULTS}/encode_shard/{{shard}}.mkv", non_empty=True),
    log:
        f"{LOGS}/encode_shard/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/encode_shard/{{shard}}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        # a plain dict, which Snakemake compares between runs: a change re-encodes (and never re-upscales)
        encoder=asdict(SETTINGS.encoder),
    script:
        "../scripts/encode_shard.py"
