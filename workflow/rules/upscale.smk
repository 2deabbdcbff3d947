rule upscale_shard:
    """The model chain over one shard, on the GPU (CPU when there is none); the costly step."""
    input:
        shard=rules.extract_shard.output.shard,
        prepared=rules.prepare_title.output.prepared,
        # its colour decision: how the prepared frames are read
        plan=PLAN,
        facts=PREPARED,
        models=model_files,
        # the temporal stage's weights, when it is on
        temporal=lambda wildcards: settings(wildcards).upscale.temporal.files(),
    output:
        shard=upscaled_output(f"{RESULTS}/upscale_shard/{{shard}}.mkv"),
        # what the job did (frames, seconds, device), for the report; kept when the shard itself is not
        result=f"{RESULTS}/upscale_shard/{{shard}}.json",
    log:
        f"{LOGS}/upscale_shard/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/upscale_shard/{{shard}}.tsv"
    # before any further extract_shard (a small record each; the frames are read from the prepared title)
    priority: 10
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    params:
        # what changes the pixels: a different chain or scale makes every upscaled shard stale
        chain=per_disc(lambda s: s.upscale.staleness_key()),
        # a dataclass, which Snakemake does not compare: device, batch or tile changes redo nothing
        # (tests/test_sheet.py pins this)
        settings=per_disc(lambda s: s.upscale),
    script:
        "../scripts/upscale_shard.py"
