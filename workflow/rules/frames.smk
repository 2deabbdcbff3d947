rule extract_shard:
    """Frames [start, end) of the prepared title, cut by stream copy, ready for the models."""
    input:
        prepared=rules.prepare_title.output.prepared,
        facts=PREPARED,
    output:
        shard=temp(f"{RESULTS}/extract_shard/{{shard}}.mkv"),
    log:
        f"{LOGS}/extract_shard/{{shard}}.log",
    conda:
        ENV
    params:
        shard_frames=SETTINGS.shard_frames,
    script:
        "../scripts/extract_shard.py"
