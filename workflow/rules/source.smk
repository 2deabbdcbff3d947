rule concat_vobs:
    """Join VTS_xx_1..N.VOB in play order (never the menu VOB VTS_xx_0)."""
    input:
        vobs=[str(part) for part in SOURCE.parts],
    output:
        title=f"{RESULTS}/concat_vobs/title.vob",
    log:
        f"{LOGS}/concat_vobs.log",
    conda:
        ENV
    script:
        "../scripts/concat_vobs.py"


checkpoint probe_source:
    """Streams, frame count and times, geometry, languages, chapters: what every later step relies on."""
    input:
        title=title_file(),
    output:
        probe=PROBE,
        frames=f"{RESULTS}/probe_source/frames.txt",
    log:
        f"{LOGS}/probe_source.log",
    conda:
        ENV
    params:
        parts=[str(part) for part in SOURCE.parts],
        shard_frames=SETTINGS.shard_frames,
    script:
        "../scripts/probe_source.py"


rule extract_audio:
    """Every audio track, stream-copied (never re-encoded), into one Matroska audio file."""
    input:
        title=title_file(),
    output:
        audio=f"{RESULTS}/extract_audio/audio.mka",
    log:
        f"{LOGS}/extract_audio.log",
    conda:
        ENV
    script:
        "../scripts/extract_audio.py"
