rule verify_master:
    """The master against the probe: frames, duration, audio bit for bit, languages, chapters, aspect, decode."""
    input:
        master=master_file,
        probe=PROBE,
        title=title_file,
        plan=PLAN,
        facts=PREPARED,
        prepared=rules.prepare_title.output.prepared,
    output:
        verify=f"{RESULTS}/verify_master/verify.json",
        html=report(
            f"{RESULTS}/verify_master/verify.html",
            caption="../report/verify.rst",
            category="{disc}",
            subcategory="3. Verification",
            labels={"page": "checks and flicker"},
        ),
        flicker=report(
            f"{RESULTS}/verify_master/flicker.tsv",
            caption="../report/flicker.rst",
            category="{disc}",
            subcategory="3. Verification",
            labels={"page": "flicker per shard (TSV)"},
        ),
    log:
        f"{LOGS}/verify_master.log",
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        retimed=per_disc(lambda s: s.frontend.fps != "auto"),
        interpolation_factor=per_disc(lambda s: s.interpolate.factor),
    script:
        "../scripts/verify_master.py"
