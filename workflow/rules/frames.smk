rule extract_shard:
    """Frames [start, end) of the title, lossless (FFV1), ready for the models."""
    input:
        title=title_file(),
        probe=PROBE,
        frames=rules.probe_source.output.frames,
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
