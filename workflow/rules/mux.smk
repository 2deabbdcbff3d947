rule mux_master:
    """The master: the encoded shards, every audio track and the chapters in one MKV at the user's path."""
    input:
        unpack(mux_inputs),
    output:
        # the user's own path (one of the sheet's outputs); DISC_OF names its disc
        master="{master}",
    log:
        # by the master's path (a log may only use the output's wildcards); also in logs/<disc>/mux_master.log
        "logs/masters/{master}.log",
    conda:
        ENV
    params:
        disc=lambda wildcards: DISC_OF[wildcards.master],
        # the log lives with the disc's others (a log path may only use the output's wildcards)
        log=lambda wildcards: f"logs/{DISC_OF[wildcards.master]}/mux_master.log",
        # interpolate.factor: the master holds factor × the prepared title's frames
        factor=lambda wildcards: MASTERS[
            DISC_OF[wildcards.master]
        ].settings.interpolate.factor,
    script:
        "../scripts/mux_master.py"
