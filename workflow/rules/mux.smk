rule mux_master:
    """The master: the encoded shards, every audio track and the chapters in one MKV."""
    input:
        shards=encoded_shards,
        audio=audio_tracks,
        subtitles=subtitle_tracks,
        probe=PROBE,
        plan=PLAN,
        facts=PREPARED,
    output:
        master=MASTER,
    log:
        f"{LOGS}/mux_master.log",
    conda:
        ENV
    params:
        disc=DISC,
        # interpolate.factor: the master holds factor × the prepared title's frames
        factor=SETTINGS.interpolate.factor,
    script:
        "../scripts/mux_master.py"
