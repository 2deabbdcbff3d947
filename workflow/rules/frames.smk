rule extract_shard:
    """How frames [start, end) of the prepared title (its shard table) are read: a checked seek, no copy.

    A copy of each shard's frames, made ahead of its upscale by idle cores, was a second prepared title on
    disk; the upscale job reads its frames from the prepared title itself."""
    input:
        prepared=rules.prepare_title.output.prepared,
        facts=PREPARED,
    output:
        shard=temp(f"{RESULTS}/extract_shard/{{shard}}.json"),
    log:
        f"{LOGS}/extract_shard/{{shard}}.log",
    conda:
        ENV
    params:
        # frames read beyond each edge for the temporal stage, so shards join seamlessly (0: it is off)
        context=per_disc(lambda s: s.upscale.temporal.context),
    script:
        "../scripts/extract_shard.py"
