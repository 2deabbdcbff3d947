rule extract_shard:
    """Frames [start, end) of the prepared title (from its shard table), cut by stream copy, ready for the models."""
    input:
        prepared=rules.prepare_title.output.prepared,
        facts=PREPARED,
    output:
        shard=temp(f"{RESULTS}/extract_shard/{{shard}}.mkv"),
    log:
        f"{LOGS}/extract_shard/{{shard}}.log",
    conda:
        ENV
    script:
        "../scripts/extract_shard.py"
