# frames spread over the title: a few minutes on a CPU even with a heavy model
PREVIEW_STILLS = 6


rule preview:
    """`snakemake preview`: every master's before/after stills, long before its first shard is upscaled."""
    input:
        expand(
            f"results/{{disc}}/preview/still_{{n}}.png",
            disc=DISCS,
            n=range(1, PREVIEW_STILLS + 1),
        ),


rule preview_title:
    """Before/after stills of a few frames spread over one title: judge the model in minutes, not hours."""
    input:
        title=title_file,
        probe=PROBE,
        frames=rules.probe_source.output.frames,
        plan=PLAN,
        models=model_files,
    output:
        stills=report(
            expand(
                f"{RESULTS}/preview/still_{{n}}.png",
                n=range(1, PREVIEW_STILLS + 1),
                allow_missing=True,
            ),
            caption="../report/preview.rst",
            category="{disc}",
            subcategory="2. Preview",
            labels={"figure": "before | after"},
        ),
        flip=report(
            f"{RESULTS}/preview/flip.png",
            caption="../report/flip.rst",
            category="{disc}",
            subcategory="2. Preview",
            labels={"figure": "flip (animated)"},
        ),
        frames=f"{RESULTS}/preview/frames.json",
    log:
        f"{LOGS}/preview.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    params:
        # like upscale_shard: a different chain or scale redoes the preview, device or tile do not
        chain=per_disc(lambda s: s.upscale.staleness_key()),
        settings=per_disc(lambda s: s.upscale),
    script:
        "../scripts/preview.py"
