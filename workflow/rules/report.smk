rule summarize_run:
    """The report's pages: what the probe found, per-shard timings, and the disk used."""
    input:
        probe=PROBE,
        plan=PLAN,
        facts=PREPARED,
        master=MASTER,
        verify=rules.verify_master.output.verify,
        upscaled=upscaled_shards,
    output:
        probe=report(
            f"{RESULTS}/summarize_run/probe.html",
            caption="../report/probe.rst",
            category="1. Source",
            labels={"page": "probe"},
        ),
        timings=report(
            f"{RESULTS}/summarize_run/timings.html",
            caption="../report/timings.rst",
            category="4. Run",
            labels={"page": "timings"},
        ),
        timings_tsv=f"{RESULTS}/summarize_run/timings.tsv",
        disk=report(
            f"{RESULTS}/summarize_run/disk.html",
            caption="../report/disk.rst",
            category="4. Run",
            labels={"page": "disk"},
        ),
        disk_tsv=f"{RESULTS}/summarize_run/disk.tsv",
    log:
        f"{LOGS}/summarize_run.log",
    conda:
        ENV
    params:
        disc=DISC,
        shard_frames=SETTINGS.shard_frames,
        models=[str(step.path) for step in SETTINGS.upscale.models],
        scale=SETTINGS.upscale.scale,
        logs=LOGS,
        benchmarks=BENCHMARKS,
    script:
        "../scripts/summarize_run.py"
