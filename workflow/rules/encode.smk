rule encode_shard:
    """One upscaled shard in the delivery codec; shards join later by stream copy."""
    input:
        shard=shard_to_encode,
        plan=PLAN,
    output:
        video=ensure(f"{RESULTS}/encode_shard/{{shard}}.mkv", non_empty=True),
    log:
        f"{LOGS}/encode_shard/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/encode_shard/{{shard}}.tsv"
    # first of all ready jobs: its upscaled shard (HD, temp by default) is deleted once it is done
    priority: 20
    conda:
        ENV
    threads: 2  # remaster.output.encode.ENCODER_THREADS
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        # a plain dict, which Snakemake compares between runs: a change re-encodes (and re-upscales only
        # when keep_upscaled is false and the upscaled shard is gone)
        encoder=per_disc(lambda s: asdict(s.encoder)),
    script:
        "../scripts/encode_shard.py"
