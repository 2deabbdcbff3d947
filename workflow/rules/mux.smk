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
        disc=disc_of,
        # the log lives with the disc's others (a log path may only use the output's wildcards)
        log=lambda wildcards: f"logs/{disc_of(wildcards)}/mux_master.log",
        # interpolate.factor: the master holds factor × the prepared title's frames
        factor=lambda wildcards: MASTERS[disc_of(wildcards)].settings.interpolate.factor,
    script:
        "../scripts/mux_master.py"


use rule mux_master as mux_master_absolute with:
    output:
        # a master at an absolute path: the wildcard holds it without its leading slash (common.smk)
        master=f"{ROOT}{{master}}",
    log:
        "logs/masters/{master}.log",
