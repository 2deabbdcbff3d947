rule encode_shard:
    """One upscaled shard in the delivery codec; shards join later by stream copy."""
    input:
        shard=rules.upscale_shard.output.shard,
        probe=PROBE,
    output:
        video=ensure(f"{RESULTS}/encode_shard/{{shard}}.mkv", non_empty=True),
    params:
        encoder=SETTINGS.encoder,
    log:
        f"{LOGS}/encode_shard/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/encode_shard/{{shard}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    script:
        "../scripts/encode_shard.py"
