rule summarize_run:
    """The report's pages: what the probe found, per-shard timings, and the disk used."""
    input:
        probe=PROBE,
        plan=PLAN,
        facts=PREPARED,
        master=master_file,
        verify=rules.verify_master.output.verify,
        results=shard_results,
    output:
        probe=report(
            f"{RESULTS}/summarize_run/probe.html",
            caption="../report/probe.rst",
            category="{disc}",
            subcategory="1. Source",
            labels={"page": "probe"},
        ),
        timings=report(
            f"{RESULTS}/summarize_run/timings.html",
            caption="../report/timings.rst",
            category="{disc}",
            subcategory="4. Run",
            labels={"page": "timings"},
        ),
        timings_tsv=f"{RESULTS}/summarize_run/timings.tsv",
        disk=report(
            f"{RESULTS}/summarize_run/disk.html",
            caption="../report/disk.rst",
            category="{disc}",
            subcategory="4. Run",
            labels={"page": "disk"},
        ),
        disk_tsv=f"{RESULTS}/summarize_run/disk.tsv",
    log:
        f"{LOGS}/summarize_run.log",
    conda:
        ENV
    params:
        disc=lambda wildcards: wildcards.disc,
        shard_frames=SHARD_FRAMES,
        models=model_files,
        scale=per_disc(lambda s: s.upscale.scale),
        results=lambda wildcards: f"results/{wildcards.disc}",
        logs=lambda wildcards: f"logs/{wildcards.disc}",
        benchmarks=lambda wildcards: f"benchmarks/{wildcards.disc}",
    script:
        "../scripts/summarize_run.py"
